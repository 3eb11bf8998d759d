/* shim.c - jgsched-shim, the supervisor of one node of the local backend.
 *
 * Usage: jgsched-shim <nodedir> <attempt> [net]
 *
 * The backend starts one shim per node, in a session of its own, so the shim
 * outlives a daemon that crashes or restarts.  The shim runs as the node's
 * user (the backend's child switched before exec), so nothing it writes is
 * more trusted than the user: it runs the node's steps and writes what
 * happened to <nodedir>/status, which the backend reads for what to report,
 * never for which process to signal (see shim_protocol.h for the files and
 * the line format):
 *
 *   copy workdir -> run setup.sh -> `setup_done` -> wait on the release FIFO
 *   -> `running` -> run run.sh -> `exit run <code> <signal>`
 *
 * Every user process stays in the shim's process group (the shim leads its
 * session), so the backend stops a whole node with kill(-pgid).  SIGTERM (or
 * SIGINT) sent to the shim alone is forwarded once to the group; the shim
 * itself lives on until its child has exited, records that exit, and ends.
 * When the node ends, the shim kills what is left of its group (a background
 * process the script did not wait for) with its own last breath: nothing a
 * node started outlives it.  With `net` the node has a network namespace of
 * its own (netns.h), and the shim also kills every process left in it, so a
 * process that left the group with setsid() goes too.
 *
 * Plain libc only: the shim links nothing of jgsched, so it stays small and
 * has nothing to go wrong between a fork and an exec.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jgsched/proc.h"
#include "shim_node.h"
#include "shim_protocol.h"

static volatile sig_atomic_t got_term;
static volatile sig_atomic_t forwarded;

static char nodedir[PATH_MAX];
static int attempt;
static bool own_net;                /* the node has its own network namespace */
static int status_fd = -1;
static char **node_env;
static sigset_t blocked_mask;       /* SIGTERM, SIGINT: delivered only while waiting */
static sigset_t wait_mask;          /* the mask while waiting: nothing blocked */

static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
    if (!forwarded) {
        forwarded = 1;
        if (getpgrp() == getpid())
            kill(0, SIGTERM);      /* the whole node; our own handler sees it once more */
    }
}

/* A message for the user, into output.log (our stderr). */
static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    if (write(STDERR_FILENO, "jgsched-shim: ", 14) < 0 || write(STDERR_FILENO, buf, (size_t)n) < 0)
        return;
}

/* Appends one status line in a single write() (O_APPEND keeps lines whole). */
static void record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record(const char *fmt, ...)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%d ", attempt);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    while (write(status_fd, buf, (size_t)n) < 0 && errno == EINTR)
        ;
}

/* Kills every other process in our network namespace (we may signal only
 * our own user's, which every process of a node is). */
static void kill_net_members(void)
{
    struct stat self;
    if (stat("/proc/self/ns/net", &self) < 0)
        return;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid())
            continue;
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
        if (stat(path, &st) == 0 && st.st_ino == self.st_ino && st.st_dev == self.st_dev)
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

/* The end of the node: everything still in our process group (and, with its
 * own network, in our namespace) goes, us last. */
static void finish(int code)
{
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    if (own_net)
        kill_net_members();
    if (getpgrp() == getpid())
        kill(0, SIGKILL);
    exit(code);
}

/* Reads a whole small file; NULL if it does not exist or cannot be read. */
static char *slurp(const char *path, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (buf) {
        buf[len] = '\0';
        if (len_out)
            *len_out = len;
    }
    return buf;
}

/* The env file: NUL-separated KEY=VALUE entries -> a NULL-terminated array
 * pointing into one buffer (kept for the shim's lifetime). */
static char **load_env(void)
{
    size_t len = 0;
    char *buf = slurp(JG_SHIM_ENV, &len);
    if (!buf)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\0')
            n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t l = strnlen(buf + i, len - i);
        if (l > 0 && memchr(buf + i, '=', l))
            env[k++] = buf + i;
        i += l + 1;
    }
    env[k] = NULL;
    return env;
}

/* Runs argv in work/ with the node's environment and waits for it.  Returns
 * the exit code (128+signal when signaled), and the signal in *sig. */
static int run_child(char *const argv[], int *sig)
{
    *sig = 0;
    pid_t pid = fork();
    if (pid < 0) {
        logmsg("cannot fork: %s", strerror(errno));
        return JG_SHIM_INTERNAL_ERROR;
    }
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (chdir(JG_SHIM_WORK) < 0) {
            logmsg("cannot enter %s/%s: %s", nodedir, JG_SHIM_WORK, strerror(errno));
            _exit(JG_SHIM_INTERNAL_ERROR);
        }
        syscall(SYS_close_range, 3u, ~0u, 0u);
        execve(argv[0], argv, node_env);
        logmsg("cannot execute %s: %s", argv[0], strerror(errno));
        _exit(127);
    }
    /* Signals are delivered while we wait, so a SIGTERM sent to the shim alone
     * reaches the node; waitpid returns when the child ends in any case. */
    sigprocmask(SIG_SETMASK, &wait_mask, NULL);
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    sigprocmask(SIG_SETMASK, &blocked_mask, NULL);
    if (r < 0) {
        logmsg("waitpid: %s", strerror(errno));
        return JG_SHIM_INTERNAL_ERROR;
    }
    if (WIFSIGNALED(st)) {
        *sig = WTERMSIG(st);
        return 128 + *sig;
    }
    return WEXITSTATUS(st);
}

static int run_script(const char *name, int *sig)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", nodedir, name);
    char *argv[] = {"/bin/bash", path, NULL};
    return run_child(argv, sig);
}

/* Copies the contents of the job's workdir into work/ (as `cp -a src/. work/`). */
static int copy_workdir(int *sig)
{
    *sig = 0;
    char *src = slurp(JG_SHIM_WORKDIR, NULL);
    if (!src)
        return 0;
    size_t l = strlen(src);
    while (l > 0 && src[l - 1] == '\n')
        src[--l] = '\0';
    char from[PATH_MAX + 8], to[PATH_MAX + 16];
    snprintf(from, sizeof from, "%s/.", src);
    snprintf(to, sizeof to, "%s/%s/", nodedir, JG_SHIM_WORK);
    free(src);
    char *argv[] = {"/bin/cp", "-a", "--", from, to, NULL};
    int code = run_child(argv, sig);
    if (code != 0)
        logmsg("cannot copy workdir %s into %s (exit %d)", from, to, code);
    return code;
}

/* Blocks until the backend writes to the release FIFO or we are told to stop.
 * Returns true to run, false to cancel. */
static bool wait_release(int fifo)
{
    for (;;) {
        if (got_term)
            return false;
        struct pollfd pfd = {.fd = fifo, .events = POLLIN};
        int r = ppoll(&pfd, 1, NULL, &wait_mask);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            logmsg("waiting at the barrier: %s", strerror(errno));
            return false;
        }
        char c;
        ssize_t n = read(fifo, &c, 1);
        if (n == 1 && c == JG_SHIM_RELEASE_RUN)
            return true;
        if (n == 1 && c == JG_SHIM_RELEASE_CANCEL)
            return false;
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], JG_SHIM_NODE_ARG) == 0)
        return jg_shim_node_main(argc, argv);
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "net") == 0)) {
        fprintf(stderr, "usage: jgsched-shim NODEDIR ATTEMPT [net]\n");
        return 2;
    }
    own_net = argc == 4;
    char *end;
    long a = strtol(argv[2], &end, 10);
    if (*end || a < 1 || a > INT_MAX || !realpath(argv[1], nodedir) || chdir(nodedir) < 0) {
        fprintf(stderr, "jgsched-shim: bad node directory or attempt: %s %s\n", argv[1], argv[2]);
        return 2;
    }
    attempt = (int)a;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigemptyset(&blocked_mask);
    sigaddset(&blocked_mask, SIGTERM);
    sigaddset(&blocked_mask, SIGINT);
    sigemptyset(&wait_mask);
    sigprocmask(SIG_SETMASK, &blocked_mask, NULL);

    int devnull = open("/dev/null", O_RDONLY);
    int log = open(JG_SHIM_LOG, O_WRONLY | O_APPEND | O_CREAT, 0644);
    status_fd = open(JG_SHIM_STATUS, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (devnull < 0 || log < 0 || status_fd < 0) {
        fprintf(stderr, "jgsched-shim: %s: cannot open node files: %s\n", nodedir, strerror(errno));
        return 2;
    }
    dup2(devnull, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    if (devnull > STDERR_FILENO)
        close(devnull);
    if (log > STDERR_FILENO)
        close(log);

    unsigned long long start = 0;
    (void)jg_proc_starttime(getpid(), &start);     /* 0: unknown, never matched */
    record("started %d %llu", (int)getpid(), start);

    /* Opened now, read-write (so it never sees EOF), before anything can make
     * the backend replace it for a later attempt. */
    int fifo = open(JG_SHIM_RELEASE, O_RDWR | O_CLOEXEC);
    node_env = load_env();
    if (fifo < 0 || !node_env) {
        logmsg("cannot open %s/%s: %s", nodedir, fifo < 0 ? JG_SHIM_RELEASE : JG_SHIM_ENV,
               strerror(errno));
        record("exit setup %d 0", JG_SHIM_INTERNAL_ERROR);
        finish(1);
    }

    int sig = 0;
    int code = copy_workdir(&sig);
    if (code == 0 && access(JG_SHIM_SETUP, F_OK) == 0)
        code = run_script(JG_SHIM_SETUP, &sig);
    if (code != 0) {
        record("exit setup %d %d", code, sig);
        finish(0);
    }
    if (got_term) {
        record("cancelled");
        finish(0);
    }
    record("setup_done");

    if (!wait_release(fifo)) {
        record("cancelled");
        finish(0);
    }
    record("running");
    code = 0;
    sig = 0;
    if (access(JG_SHIM_RUN, F_OK) == 0)
        code = run_script(JG_SHIM_RUN, &sig);
    record("exit run %d %d", code, sig);
    finish(0);
}
