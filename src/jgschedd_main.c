/* jgschedd_main.c - the daemon's entry point: arguments, daemonizing, the
 * readiness hand-off, the pid file and the instance lock.
 *
 * Without --foreground the process forks; the parent waits on a pipe until the
 * child has bound its socket (or failed), then exits 0 (or 1 with the child's
 * message).  That lets `jgsched` start a daemon and connect right after, with
 * no sleep-and-retry.  An flock on <home>/jgschedd.lock held for the daemon's
 * lifetime makes two daemons on one instance impossible.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jg_config.h"
#include "jgsched/daemon.h"
#include "jgsched/paths.h"

static void usage(FILE *out)
{
    fputs("usage: jgschedd [--foreground] [--system] [--help] [--version]\n"
          "\n"
          "Serves one jgsched instance: its socket, store and nodes.  The instance lives\n"
          "under $JGSCHED_HOME when set; else root serves the machine (socket\n"
          "/run/jgsched/jgsched.sock, state /var/lib/jgsched, config /etc/jgsched/config.yaml)\n"
          "and a plain user serves themselves (state under ~/.local/state/jgsched).\n"
          "Without --foreground it detaches once its socket is ready.\n"
          "\n"
          "  --system      serve every local user from this instance even under\n"
          "                $JGSCHED_HOME (socket open to all; identity from SO_PEERCRED)\n",
          out);
}

/* The instance lock.  Its holder writes its socket path into the lock file,
 * so that a second daemon (started by hand, or through a JGSCHED_SOCKET that
 * differs from the first one's) can say where the running one answers.  The
 * file is in the instance's own home, written only by its daemons; what is
 * read back is bounded and only quoted in a message. */
static int take_lock(const jg_paths_t *paths, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/jgschedd.lock", paths->home);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        jg_errprintf(err, "cannot open %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char holder[256] = "";
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (holder[0] && strcmp(holder, paths->socket) != 0)
            jg_errprintf(err, "another jgschedd already serves the instance %s, on socket %s "
                              "(lock %s is held): talk to it with JGSCHED_SOCKET=%s, or stop it "
                              "first", paths->home, holder, path, holder);
        else
            jg_errprintf(err, "another jgschedd already serves the instance %s%s%s (lock %s is "
                              "held)", paths->home, holder[0] ? ", on socket " : "", holder, path);
        free(path);
        close(fd);
        return -1;
    }
    char *line = jg_xasprintf("%s\n", paths->socket);
    if (ftruncate(fd, 0) < 0 || pwrite(fd, line, strlen(line), 0) < 0)
        fprintf(stderr, "jgschedd: cannot note the socket in %s: %s\n", path, strerror(errno));
    free(line);
    free(path);
    return fd;      /* kept open (and locked) until exit */
}

static void write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
}

static void tell_parent(int fd, const char *msg)
{
    if (fd < 0)
        return;
    size_t n = strlen(msg);
    if (write(fd, msg, n) != (ssize_t)n)
        return;
    close(fd);
}

/* Parent side of the readiness pipe: exits with the child's verdict. */
static int wait_for_child(int fd)
{
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    if (strcmp(buf, "ready") == 0)
        return 0;
    fprintf(stderr, "jgschedd: %s\n", len ? buf : "the daemon died during start-up");
    return 1;
}

static int redirect_output(const char *log_path)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (null < 0 || log < 0)
        return -1;
    dup2(null, STDIN_FILENO);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    close(null);
    close(log);
    return 0;
}

int main(int argc, char **argv)
{
    int foreground = 0, system_mode = 0;
    static const struct option opts[] = {{"foreground", no_argument, NULL, 'f'},
                                         {"system", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "fshV", opts, NULL)) != -1) {
        switch (o) {
        case 'f':
            foreground = 1;
            break;
        case 's':
            system_mode = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("jgschedd %s\n", JG_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "jgschedd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    jg_error_t err;
    jg_paths_t paths;
    if (jg_paths_resolve(&paths, &err) == 0 && system_mode)
        paths.system = 1;
    if (paths.home == NULL || jg_paths_create_dirs(&paths, &err) < 0) {
        fprintf(stderr, "jgschedd: %s\n", err.text);
        jg_paths_free(&paths);
        return 1;
    }

    int ready_fd = -1;
    if (!foreground) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
            fprintf(stderr, "jgschedd: pipe: %s\n", strerror(errno));
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "jgschedd: fork: %s\n", strerror(errno));
            return 1;
        }
        if (pid > 0) {
            close(pipefd[1]);
            int rc = wait_for_child(pipefd[0]);
            jg_paths_free(&paths);
            return rc;
        }
        close(pipefd[0]);
        ready_fd = pipefd[1];
        setsid();
        /* Keep nothing the caller gave us: a daemon holding the write end of
         * someone's $(...) pipe would hang that shell forever. */
        if (ready_fd > 3)
            close_range(3, (unsigned)ready_fd - 1, 0);
        close_range((unsigned)ready_fd + 1, ~0U, 0);
        if (redirect_output(paths.daemon_log) < 0) {
            tell_parent(ready_fd, "cannot open the daemon log");
            return 1;
        }
    }

    int rc = 1;
    jg_daemon_t *d = NULL;
    int lock_fd = take_lock(&paths, &err);
    if (lock_fd < 0)
        goto fail;
    d = jg_daemon_create(&paths, &err);
    if (!d)
        goto fail;
    write_pid_file(paths.pid_file);
    tell_parent(ready_fd, "ready");
    ready_fd = -1;
    rc = jg_daemon_run(d, &err) < 0 ? 1 : 0;
    if (rc)
        jg_log("error", "%s", err.text);
    jg_log("info", "jgschedd stopped");
    unlink(paths.pid_file);
    jg_daemon_destroy(d);
    close(lock_fd);
    jg_paths_free(&paths);
    return rc;
fail:
    jg_log("error", "cannot start: %s", err.text);
    if (ready_fd >= 0)
        tell_parent(ready_fd, err.text);
    else
        fprintf(stderr, "jgschedd: %s\n", err.text);
    if (lock_fd >= 0)
        close(lock_fd);
    jg_paths_free(&paths);
    return rc;
}
