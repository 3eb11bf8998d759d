/* agent.c - jgsched-agent, the barrier and in-place restarts inside a pod.
 *
 * Usage: jgsched-agent                 (the main container's command)
 *        jgsched-agent install DIR [--hosts-writable]
 *                                      (the init container's command)
 *
 * A Kubernetes pod runs any image; all jgsched may assume of it is /bin/sh.
 * So the agent image (FROM scratch, this one static binary) runs as an init
 * container that copies the agent into an emptyDir (`install`), and the main
 * container of the user's image runs the copy.  The agent then does inside
 * the pod what jgsched-shim does for a local node:
 *
 *   setup (bash -c, /bin/sh -c without bash) -> phase "waiting" -> POST /release -> run
 *   -> phase "exited" (exit code, signal) -> POST /finish, /restart or /stop
 *
 * and the daemon drives it over plain HTTP/1.1 on port 7411, reached through
 * the API server's pods/proxy subresource, so no API access and no service
 * account token are needed inside the pod.  Every request must carry the
 * group's token (from the group's Secret, mounted as a file) either as
 * `Authorization: Bearer <token>` or as `X-Jgsched-Token: <token>`; the second
 * exists because the API server removes the Authorization header of a request
 * it authenticated before proxying it.  The API:
 *
 *   GET  /state?after=S&wait=W   long-poll: answers once the serial passes S
 *                                or after W seconds (at most 60)
 *   POST /hosts                  body: "IP name..." lines; they replace the
 *                                agent's block in /etc/hosts (idempotent)
 *   POST /env?name=K             body: a value for K in the environment of
 *                                every child started from now on (what the
 *                                pod spec could not know: SKYPILOT_NODE_IPS
 *                                holds the pods' IPs, known only once they run)
 *   POST /release                lets run start (idempotent; remembered if it
 *                                comes during setup)
 *   POST /kill?grace_ms=G        stops the current setup/run (TERM, KILL after
 *                                G) and stays: phase "exited"; what stop() of
 *                                a node that is to be restarted in place uses
 *   POST /restart?attempt=A[&grace_ms=G]  as /kill, then setup and run again
 *                                as attempt A (JGSCHED_ATTEMPT and
 *                                SKYPILOT_TASK_ID updated), waiting for a new
 *                                /release; /tmp (an emptyDir) is untouched
 *   POST /finish?code=C          the agent exits with C (after /kill if needed)
 *   POST /stop?grace_ms=G        TERM, KILL after G, then exit 128+signal
 *
 * SIGTERM or SIGINT (the kubelet deleting the pod) is /stop with the
 * configured grace; once the node has ended (phase "exited", nothing
 * running) the agent exits at once with the node's exit code, so the
 * container's terminated state carries it.  The children inherit the agent's stdout and stderr, so
 * their output reaches the pod's log as they write it, with nothing buffered
 * in between; the agent writes there only its own few error lines, prefixed
 * "jgsched-agent:".  As the container's PID 1 it also reaps every orphan.
 *
 * Single-threaded, one poll loop, libc only (so it links statically), every
 * request bounded in size and time, the token compared in constant time.
 * Configuration comes from the environment (JGSCHED_AGENT_*, removed from
 * what the children see):
 *   JGSCHED_AGENT_PORT        7411
 *   JGSCHED_AGENT_ADDRESS     "" = every address (IPv6 and IPv4)
 *   JGSCHED_AGENT_TOKEN_FILE  /.jgsched/secret/token
 *   JGSCHED_AGENT_SETUP_FILE  /.jgsched/job/setup  (absent: no setup)
 *   JGSCHED_AGENT_RUN_FILE    /.jgsched/job/run    (absent: run succeeds at once)
 *   JGSCHED_AGENT_HOSTS_FILE  /etc/hosts
 *   JGSCHED_AGENT_GRACE_MS    10000 (SIGTERM, and /kill etc. without grace_ms)
 * A configuration the agent cannot use ends it with exit code 125 and a line
 * saying why, before anything of the job ran.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_EXIT_CONFIG 125
#define DEFAULT_PORT 7411
#define DEFAULT_GRACE_MS 10000
#define MAX_CLIENTS 64
#define MAX_HEADER 8192             /* request line + headers */
#define MAX_BODY (512 * 1024)       /* a hosts table of 1024 nodes fits with room */
#define MAX_SCRIPT (4 * 1024 * 1024)
#define MAX_TOKEN 4096
#define MAX_HOSTS_FILE (8 * 1024 * 1024)
#define MAX_HOSTS_LINE 1024
#define MAX_WAIT_S 60
#define REQUEST_DEADLINE_MS 10000   /* a client has this long to send its request */
#define WRITE_DEADLINE_MS 10000     /* and to read the answer */
#define MAX_GRACE_MS (3600 * 1000)
#define MAX_ENV_OVERRIDES 16
#define MAX_ENV_NAME 128

#define HOSTS_BEGIN "# jgsched-agent: group hosts begin"
#define HOSTS_END "# jgsched-agent: group hosts end"

extern char **environ;

typedef enum { PHASE_SETUP, PHASE_WAITING, PHASE_RUNNING, PHASE_EXITED } phase_t;

static const char *const phase_names[] = {"setup", "waiting", "running", "exited"};

/* What happens once the child that is being killed is gone. */
typedef enum { THEN_EXITED, THEN_RESTART, THEN_EXIT_CODE, THEN_EXIT_SIGNAL } then_t;

typedef enum { CLIENT_FREE, CLIENT_READING, CLIENT_POLLING, CLIENT_WRITING } client_state_t;

typedef struct {
    client_state_t state;
    int fd;
    char *in;               /* in_cap bytes: MAX_HEADER until the head is accepted */
    size_t in_len, in_cap;
    size_t header_len;      /* 0 until "\r\n\r\n" was seen */
    size_t body_len;
    char *out;
    size_t out_len, out_off;
    int64_t deadline_ms;
    uint64_t after;         /* CLIENT_POLLING: answer once serial > after */
} client_t;

static struct {
    /* configuration */
    char token[MAX_TOKEN + 1];
    size_t token_len;
    char *setup;            /* NULL: none */
    char *run;              /* NULL: none */
    const char *hosts_path;
    int grace_ms;
    char *task_id_base;     /* SKYPILOT_TASK_ID without the -<attempt> suffix; may be NULL */
    char *env_override[MAX_ENV_OVERRIDES];  /* "KEY=value" from POST /env */
    size_t n_env_override;

    /* the node */
    phase_t phase;
    int attempt;
    uint64_t serial;
    int exit_code;
    int signal;
    bool in_setup;
    bool released;

    /* the current child: setup or run, leader of its own session */
    pid_t child;
    bool child_is_setup;

    /* a kill in progress */
    bool killing;
    int64_t kill_deadline_ms;   /* when TERM turns into KILL; 0: KILL sent */
    then_t then;
    int then_value;             /* THEN_RESTART: attempt; THEN_EXIT_*: code / signal */

    int listen_fd;
    int signal_fd;
    client_t clients[MAX_CLIENTS];
} A;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    dprintf(STDERR_FILENO, "jgsched-agent: %.*s", n, line);
}

static _Noreturn void die_config(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die_config(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    say("%s", line);
    _exit(AGENT_EXIT_CONFIG);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        say("out of memory");
        _exit(AGENT_EXIT_CONFIG);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* Parses a decimal number in [lo, hi]; the whole string must be digits. */
static bool parse_int(const char *s, size_t len, long lo, long hi, long *out)
{
    if (len == 0 || len > 10)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Reads a whole file of at most max bytes; NULL with errno ENOENT when absent,
 * and dies on any other failure (the pod spec is wrong; nothing can run). */
static char *read_config_file(const char *path, size_t max, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;
        die_config("cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        die_config("%s is not a regular file", path);
    if ((size_t)st.st_size > max)
        die_config("%s is larger than %zu bytes", path, max);
    char *buf = xmalloc((size_t)st.st_size + 1);
    size_t len = 0;
    for (;;) {
        if (len > (size_t)st.st_size)
            break;
        ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die_config("cannot read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > (size_t)st.st_size)
        die_config("%s grew while it was read", path);
    close(fd);
    buf[len] = '\0';
    if (len_out)
        *len_out = len;
    return buf;
}

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

/* ------------------------------------------------------------- children */

/* The children's environment: the agent's own without JGSCHED_AGENT_*, with
 * JGSCHED_ATTEMPT and SKYPILOT_TASK_ID of the current attempt (the task id
 * takes "-<attempt>" from the second attempt on, as nodeenv.c forms it). */
static bool overridden(const char *entry)
{
    for (size_t i = 0; i < A.n_env_override; i++) {
        const char *eq = strchr(A.env_override[i], '=');
        size_t klen = (size_t)(eq - A.env_override[i]);
        if (strncmp(entry, A.env_override[i], klen) == 0 && entry[klen] == '=')
            return true;
    }
    return false;
}

static char **child_environment(void)
{
    size_t n = 0;
    for (char **e = environ; *e; e++)
        n++;
    char **env = xmalloc((n + A.n_env_override + 3) * sizeof *env);
    size_t k = 0;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "JGSCHED_AGENT_", 14) == 0 || strncmp(*e, "JGSCHED_ATTEMPT=", 16) == 0 ||
            strncmp(*e, "SKYPILOT_TASK_ID=", 17) == 0 || overridden(*e))
            continue;
        env[k++] = *e;
    }
    for (size_t i = 0; i < A.n_env_override; i++)
        env[k++] = A.env_override[i];
    char *attempt = xmalloc(40);
    snprintf(attempt, 40, "JGSCHED_ATTEMPT=%d", A.attempt);
    env[k++] = attempt;
    if (A.task_id_base) {
        size_t len = strlen(A.task_id_base) + 40;
        char *id = xmalloc(len);
        if (A.attempt > 1)
            snprintf(id, len, "SKYPILOT_TASK_ID=%s-%d", A.task_id_base, A.attempt);
        else
            snprintf(id, len, "SKYPILOT_TASK_ID=%s", A.task_id_base);
        env[k++] = id;
    }
    env[k] = NULL;
    return env;
}

static void changed(void)
{
    A.serial++;
}

static void set_exited(bool in_setup, int code, int sig)
{
    A.phase = PHASE_EXITED;
    A.in_setup = in_setup;
    A.exit_code = code;
    A.signal = sig;
    changed();
}

/* Starts script as the current child, in a session of its own so that a kill
 * reaches everything it started.  False (with the node marked exited 127)
 * when it cannot be started. */
static bool start_child(const char *script, bool is_setup)
{
    char **env = child_environment();
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0 && null != STDIN_FILENO) {
            dup2(null, STDIN_FILENO);
            close(null);
        }
        /* bash where the image has it, as SkyPilot and the local backend run
         * `setup` and `run` (brace expansion, arrays); /bin/sh otherwise. */
        const char *shell = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
        char *argv[] = {(char *)(shell[5] == 'b' ? "bash" : "sh"), "-c", (char *)script, NULL};
        execve(shell, argv, env);
        dprintf(STDERR_FILENO, "jgsched-agent: cannot run %s: %s\n", shell, strerror(errno));
        _exit(127);
    }
    int fork_errno = errno;
    /* Only the two strings made for this environment are ours to free. */
    for (char **e = env; *e; e++)
        if (strncmp(*e, "JGSCHED_ATTEMPT=", 16) == 0 || strncmp(*e, "SKYPILOT_TASK_ID=", 17) == 0)
            free(*e);
    free(env);
    if (pid < 0) {
        say("cannot fork: %s", strerror(fork_errno));
        set_exited(is_setup, 127, 0);
        return false;
    }
    A.child = pid;
    A.child_is_setup = is_setup;
    return true;
}

static void start_run(void)
{
    A.phase = PHASE_RUNNING;
    changed();
    if (!A.run) {
        set_exited(false, 0, 0);
        return;
    }
    start_child(A.run, false);
}

static void setup_passed(void)
{
    A.phase = PHASE_WAITING;
    changed();
    if (A.released)
        start_run();
}

/* Begins attempt `attempt`: setup, then the barrier. */
static void start_attempt(int attempt)
{
    A.attempt = attempt;
    A.released = false;
    A.in_setup = false;
    A.exit_code = 0;
    A.signal = 0;
    A.phase = PHASE_SETUP;
    changed();
    if (A.setup)
        start_child(A.setup, true);
    else
        setup_passed();
}

static _Noreturn void agent_exit(int code);

/* Signals the child's whole session; a child that has not reached its
 * setsid() yet is signalled alone (the signal stays pending under the mask it
 * inherited until it unblocks, so it is not lost). */
static void signal_child(int sig)
{
    if (kill(-A.child, sig) < 0 && errno == ESRCH)
        kill(A.child, sig);
}

/* Does what a kill was for, once no child is left. */
static void kill_done(void)
{
    A.killing = false;
    switch (A.then) {
    case THEN_EXITED:
        break;
    case THEN_RESTART:
        start_attempt(A.then_value);
        break;
    case THEN_EXIT_CODE:
        agent_exit(A.then_value);
    case THEN_EXIT_SIGNAL:
        agent_exit(128 + A.then_value);
    }
}

/* Stops the current child (TERM to its session now, KILL after grace_ms) and
 * then does `then`.  A second kill while one is under way only changes what
 * follows, and may shorten the grace, never lengthen it. */
static void start_kill(int grace_ms, then_t then, int value)
{
    /* An exit asked for wins over a restart or a plain kill. */
    if (!A.killing || then == THEN_EXIT_CODE || then == THEN_EXIT_SIGNAL ||
        A.then == THEN_EXITED) {
        A.then = then;
        A.then_value = value;
    }
    if (A.child <= 0) {
        /* Nothing runs (waiting at the barrier, or already exited): a node
         * stopped while it waited ends as if TERM had ended it. */
        if (A.phase != PHASE_EXITED && A.then != THEN_RESTART)
            set_exited(A.phase == PHASE_SETUP, 128 + SIGTERM, SIGTERM);
        kill_done();
        return;
    }
    int64_t deadline = now_ms() + grace_ms;
    if (!A.killing) {
        A.killing = true;
        signal_child(SIGTERM);
        A.kill_deadline_ms = deadline;
    } else if (A.kill_deadline_ms && deadline < A.kill_deadline_ms) {
        A.kill_deadline_ms = deadline;
    }
    if (grace_ms == 0) {
        signal_child(SIGKILL);
        A.kill_deadline_ms = 0;
    }
}

/* A stop ends with the signal that ended the child, or TERM if it chose to
 * exit on its own when asked. */
static void child_ended(int status)
{
    pid_t pgid = A.child;
    bool was_setup = A.child_is_setup;
    A.child = 0;
    /* Nothing the node started outlives it (as with the local shim). */
    kill(-pgid, SIGKILL);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (A.killing) {
        if (A.then == THEN_EXIT_SIGNAL)
            A.then_value = sig ? sig : SIGTERM;
        if (A.then != THEN_RESTART)
            set_exited(was_setup, code, sig);
        kill_done();
        return;
    }
    if (was_setup && code == 0)
        setup_passed();
    else
        set_exited(was_setup, code, sig);
}

static void reap(void)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        if (pid == A.child)
            child_ended(status);
    }
}

/* ------------------------------------------------------------- /etc/hosts */

static bool valid_host_name(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
            return false;
    return true;
}

/* Each line: an IP address, then one or more names, separated by blanks. */
static bool valid_hosts_line(const char *line, size_t len, char *why, size_t why_len)
{
    if (len > MAX_HOSTS_LINE) {
        snprintf(why, why_len, "a hosts line is longer than %d bytes", MAX_HOSTS_LINE);
        return false;
    }
    size_t i = 0, field = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t')
            i++;
        if (i == start)
            break;
        if (field == 0) {
            char ip[INET6_ADDRSTRLEN + 1];
            unsigned char bin[sizeof(struct in6_addr)];
            if (i - start >= sizeof ip) {
                snprintf(why, why_len, "a hosts line does not start with an IP address");
                return false;
            }
            memcpy(ip, line + start, i - start);
            ip[i - start] = '\0';
            if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1) {
                snprintf(why, why_len, "a hosts line does not start with an IP address");
                return false;
            }
        } else if (!valid_host_name(line + start, i - start)) {
            snprintf(why, why_len, "a hosts line has a name with characters other than "
                                   "letters, digits, '-', '.' and '_'");
            return false;
        }
        field++;
    }
    if (field < 2) {
        snprintf(why, why_len, "a hosts line needs an IP address and at least one name");
        return false;
    }
    return true;
}

/* Replaces the agent's block in the hosts file with the lines of body.  The
 * file is rewritten in place, not renamed over: in a pod /etc/hosts is a bind
 * mount, which cannot be replaced.  Returns an HTTP status, why filled when
 * not 200. */
static int write_hosts(const char *body, size_t body_len, char *why, size_t why_len)
{
    /* Validate everything before touching the file. */
    size_t block_len = strlen(HOSTS_BEGIN) + strlen(HOSTS_END) + 2;
    for (size_t i = 0; i < body_len;) {
        const char *nl = memchr(body + i, '\n', body_len - i);
        size_t end = nl ? (size_t)(nl - body) : body_len;
        size_t len = end - i;
        if (len && body[i + len - 1] == '\r')
            len--;
        for (size_t k = 0; k < len; k++) {
            unsigned char c = (unsigned char)body[i + k];
            if (c < 0x20 && c != '\t') {
                snprintf(why, why_len, "the hosts lines hold a control character");
                return 400;
            }
        }
        if (len && !valid_hosts_line(body + i, len, why, why_len))
            return 400;
        block_len += len + 1;
        i = end + 1;
    }

    int fd = open(A.hosts_path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, why_len, "cannot open %s for writing as uid %u: %s%s", A.hosts_path,
                 (unsigned)geteuid(), strerror(errno),
                 errno == EACCES || errno == EPERM || errno == EROFS
                     ? " (the image runs as a user that may not write it; see "
                       "docs/kubernetes.md, non-root images)"
                     : "");
        return 500;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_HOSTS_FILE) {
        close(fd);
        snprintf(why, why_len, "%s is not a regular file of at most %d bytes", A.hosts_path,
                 MAX_HOSTS_FILE);
        return 500;
    }
    size_t old_len = (size_t)st.st_size;
    char *text = xmalloc(old_len + block_len + 2);
    size_t got = 0;
    while (got < old_len) {
        ssize_t n = pread(fd, text + got, old_len - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    /* Keep every line but our old block. */
    size_t kept = 0;
    bool in_block = false;
    for (size_t i = 0; i < got;) {
        const char *nl = memchr(text + i, '\n', got - i);
        size_t end = nl ? (size_t)(nl - text) + 1 : got;
        size_t len = end - i;
        size_t bare = len - (nl ? 1 : 0);
        if (bare == strlen(HOSTS_BEGIN) && memcmp(text + i, HOSTS_BEGIN, bare) == 0) {
            in_block = true;
        } else if (bare == strlen(HOSTS_END) && memcmp(text + i, HOSTS_END, bare) == 0) {
            in_block = false;
        } else if (!in_block) {
            memmove(text + kept, text + i, len);
            kept += len;
            if (!nl)
                text[kept++] = '\n';
        }
        i = end;
    }
    size_t len = kept;
    len += (size_t)sprintf(text + len, "%s\n", HOSTS_BEGIN);
    for (size_t i = 0; i < body_len;) {
        const char *nl = memchr(body + i, '\n', body_len - i);
        size_t end = nl ? (size_t)(nl - body) : body_len;
        size_t l = end - i;
        if (l && body[i + l - 1] == '\r')
            l--;
        if (l) {
            memcpy(text + len, body + i, l);
            len += l;
            text[len++] = '\n';
        }
        i = end + 1;
    }
    len += (size_t)sprintf(text + len, "%s\n", HOSTS_END);

    int status = 200;
    size_t off = 0;
    while (off < len) {
        ssize_t n = pwrite(fd, text + off, len - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(why, why_len, "cannot write %s: %s", A.hosts_path,
                     n < 0 ? strerror(errno) : "short write");
            status = 500;
            break;
        }
        off += (size_t)n;
    }
    if (status == 200 && ftruncate(fd, (off_t)len) < 0) {
        snprintf(why, why_len, "cannot truncate %s: %s", A.hosts_path, strerror(errno));
        status = 500;
    }
    free(text);
    close(fd);
    return status;
}

/* ------------------------------------------------------------------ HTTP */

static void client_close(client_t *c)
{
    if (c->state == CLIENT_FREE)
        return;
    close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* Queues a complete answer (the connection closes once it is sent). */
static void respond(client_t *c, int status, const char *json)
{
    size_t body_len = strlen(json);
    size_t cap = body_len + 256;
    free(c->out);
    c->out = xmalloc(cap);
    int n = snprintf(c->out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n%s",
                     status, status_text(status), body_len + 1, json);
    c->out_len = (size_t)n < cap - 1 ? (size_t)n : cap - 2;
    c->out[c->out_len++] = '\n';
    c->out_off = 0;
    c->state = CLIENT_WRITING;
    c->deadline_ms = now_ms() + WRITE_DEADLINE_MS;
}

/* Error answers carry one line of text a person can act on; it never holds
 * anything the client sent but the agent's own words, so no escaping needed
 * beyond the quotes and backslashes a path may hold. */
static void respond_error(client_t *c, int status, const char *why)
{
    char json[768];
    size_t k = (size_t)snprintf(json, sizeof json, "{\"error\":\"");
    for (const char *p = why; *p && k < sizeof json - 8; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\')
            json[k++] = '\\';
        json[k++] = ch < 0x20 ? ' ' : (char)ch;
    }
    snprintf(json + k, sizeof json - k, "\"}");
    respond(c, status, json);
}

static void respond_state(client_t *c)
{
    char json[256];
    snprintf(json, sizeof json,
             "{\"serial\":%llu,\"phase\":\"%s\",\"attempt\":%d,\"exit_code\":%d,"
             "\"in_setup\":%s,\"signal\":%d,\"released\":%s,\"stopping\":%s}",
             (unsigned long long)A.serial, phase_names[A.phase], A.attempt, A.exit_code,
             A.in_setup ? "true" : "false", A.signal, A.released ? "true" : "false",
             A.killing ? "true" : "false");
    respond(c, 200, json);
}

/* Equal in time whatever the bytes: a wrong guess learns nothing about how
 * much of it was right.  The length is public (the token's size is fixed by
 * the backend), so only the comparison of the bytes must be constant. */
static bool token_matches(const char *given, size_t len)
{
    if (A.token_len == 0)
        return false;
    volatile unsigned char diff = (unsigned char)(len != A.token_len);
    for (size_t i = 0; i < A.token_len; i++) {
        unsigned char g = i < len ? (unsigned char)given[i] : 0;
        diff |= g ^ (unsigned char)A.token[i];
    }
    return diff == 0;
}

/* Looks up key in a query string "a=1&b=2"; *val/len point into it. */
static bool query_get(const char *q, size_t qlen, const char *key, const char **val,
                      size_t *len)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < qlen;) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t end = amp ? (size_t)(amp - q) : qlen;
        if (end - i > klen && memcmp(q + i, key, klen) == 0 && q[i + klen] == '=') {
            *val = q + i + klen + 1;
            *len = end - i - klen - 1;
            return true;
        }
        i = end + 1;
    }
    return false;
}

static bool query_int(client_t *c, const char *q, size_t qlen, const char *key, long lo,
                      long hi, long dflt, bool required, long *out)
{
    const char *v;
    size_t vlen;
    if (!query_get(q, qlen, key, &v, &vlen)) {
        if (required) {
            char why[128];
            snprintf(why, sizeof why, "missing query parameter %s", key);
            respond_error(c, 400, why);
            return false;
        }
        *out = dflt;
        return true;
    }
    if (!parse_int(v, vlen, lo, hi, out)) {
        char why[160];
        snprintf(why, sizeof why, "query parameter %s must be a whole number from %ld to %ld",
                 key, lo, hi);
        respond_error(c, 400, why);
        return false;
    }
    return true;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    size_t i = n + 1;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
        end--;
    *value = line + i;
    *vlen = end - i;
    return true;
}

typedef struct {
    char method[8];
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    long content_length;    /* -1: none given */
    bool authorized;
    bool chunked;
} request_t;

/* Parses the request line and headers (c->in[0..header_len)); answers and
 * returns false on anything malformed. */
static bool parse_head(client_t *c, request_t *r)
{
    const char *p = c->in;
    size_t len = c->header_len;
    memset(r, 0, sizeof *r);
    r->content_length = -1;

    const char *eol = memchr(p, '\r', len);
    size_t line_len = eol ? (size_t)(eol - p) : len;
    const char *sp1 = memchr(p, ' ', line_len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', line_len - (size_t)(sp1 + 1 - p)) : NULL;
    if (!sp1 || !sp2 || (size_t)(sp1 - p) >= sizeof r->method ||
        (size_t)(p + line_len - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        respond_error(c, 400, "malformed request line");
        return false;
    }
    memcpy(r->method, p, (size_t)(sp1 - p));
    const char *target = sp1 + 1;
    size_t target_len = (size_t)(sp2 - target);
    const char *qm = memchr(target, '?', target_len);
    r->path = target;
    r->path_len = qm ? (size_t)(qm - target) : target_len;
    r->query = qm ? qm + 1 : "";
    r->query_len = qm ? target_len - r->path_len - 1 : 0;

    size_t i = line_len + 2;
    while (i + 2 <= len) {
        const char *h = p + i;
        const char *e = memchr(h, '\r', len - i);
        size_t hl = e ? (size_t)(e - h) : len - i;
        if (hl == 0)
            break;
        const char *v;
        size_t vl;
        if (header_is(h, hl, "Content-Length", &v, &vl)) {
            long cl;
            if (!parse_int(v, vl, 0, 1000000000L, &cl) ||
                (r->content_length >= 0 && r->content_length != cl)) {
                respond_error(c, 400, "malformed Content-Length");
                return false;
            }
            r->content_length = cl;
        } else if (header_is(h, hl, "Transfer-Encoding", &v, &vl)) {
            r->chunked = true;
        } else if (header_is(h, hl, "Authorization", &v, &vl)) {
            if (vl > 7 && strncasecmp(v, "Bearer ", 7) == 0 && token_matches(v + 7, vl - 7))
                r->authorized = true;
        } else if (header_is(h, hl, "X-Jgsched-Token", &v, &vl)) {
            if (token_matches(v, vl))
                r->authorized = true;
        }
        i += hl + 2;
    }
    return true;
}

static bool path_is(const request_t *r, const char *path)
{
    return r->path_len == strlen(path) && memcmp(r->path, path, r->path_len) == 0;
}

static bool method_is(client_t *c, const request_t *r, const char *method)
{
    if (strcmp(r->method, method) == 0)
        return true;
    char why[64];
    snprintf(why, sizeof why, "use %s", method);
    respond_error(c, 405, why);
    return false;
}

static void handle(client_t *c, const request_t *r, const char *body, size_t body_len)
{
    long v, grace;
    if (path_is(r, "/state")) {
        if (!method_is(c, r, "GET"))
            return;
        long after, wait;
        if (!query_int(c, r->query, r->query_len, "after", 0, LONG_MAX, -1, false, &after) ||
            !query_int(c, r->query, r->query_len, "wait", 0, MAX_WAIT_S, 0, false, &wait))
            return;
        if (after < 0 || (uint64_t)after < A.serial || wait == 0) {
            respond_state(c);
            return;
        }
        c->state = CLIENT_POLLING;
        c->after = (uint64_t)after;
        c->deadline_ms = now_ms() + wait * 1000;
        return;
    }
    if (!method_is(c, r, "POST"))
        return;
    if (path_is(r, "/hosts")) {
        char why[512];
        int status = write_hosts(body, body_len, why, sizeof why);
        if (status == 200)
            respond(c, 200, "{\"ok\":true}");
        else
            respond_error(c, status, why);
    } else if (path_is(r, "/env")) {
        const char *name;
        size_t name_len;
        if (!query_get(r->query, r->query_len, "name", &name, &name_len) || name_len == 0 ||
            name_len > MAX_ENV_NAME) {
            respond_error(c, 400, "missing or overlong query parameter name");
            return;
        }
        for (size_t i = 0; i < name_len; i++) {
            if (!isalnum((unsigned char)name[i]) && name[i] != '_') {
                respond_error(c, 400, "an environment variable name is letters, digits and '_'");
                return;
            }
        }
        if ((name_len >= 14 && memcmp(name, "JGSCHED_AGENT_", 14) == 0) ||
            (name_len == 15 && memcmp(name, "JGSCHED_ATTEMPT", 15) == 0) ||
            (name_len == 16 && memcmp(name, "SKYPILOT_TASK_ID", 16) == 0)) {
            respond_error(c, 400, "that variable is the agent's own");
            return;
        }
        if (memchr(body, '\0', body_len)) {
            respond_error(c, 400, "an environment value cannot hold a NUL byte");
            return;
        }
        char *entry = xmalloc(name_len + body_len + 2);
        memcpy(entry, name, name_len);
        entry[name_len] = '=';
        memcpy(entry + name_len + 1, body, body_len);
        entry[name_len + 1 + body_len] = '\0';
        size_t slot = A.n_env_override;
        for (size_t i = 0; i < A.n_env_override; i++)
            if (strncmp(A.env_override[i], entry, name_len + 1) == 0)
                slot = i;
        if (slot == MAX_ENV_OVERRIDES) {
            free(entry);
            respond_error(c, 409, "too many environment variables set through /env");
            return;
        }
        if (slot < A.n_env_override)
            free(A.env_override[slot]);
        else
            A.n_env_override++;
        A.env_override[slot] = entry;
        respond(c, 200, "{\"ok\":true}");
    } else if (path_is(r, "/release")) {
        if (!A.released) {
            A.released = true;
            changed();
            if (A.phase == PHASE_WAITING && !A.killing)
                start_run();
        }
        respond_state(c);
    } else if (path_is(r, "/kill")) {
        if (!query_int(c, r->query, r->query_len, "grace_ms", 0, MAX_GRACE_MS, A.grace_ms,
                       false, &grace))
            return;
        start_kill((int)grace, THEN_EXITED, 0);
        respond_state(c);
    } else if (path_is(r, "/restart")) {
        if (!query_int(c, r->query, r->query_len, "attempt", 1, INT_MAX, 0, true, &v) ||
            !query_int(c, r->query, r->query_len, "grace_ms", 0, MAX_GRACE_MS, A.grace_ms,
                       false, &grace))
            return;
        int target = A.killing && A.then == THEN_RESTART ? A.then_value : A.attempt;
        if (v == target) {          /* a retried request: already under way */
            respond_state(c);
            return;
        }
        if (v < target) {
            respond_error(c, 409, "attempt is older than the agent's current attempt");
            return;
        }
        start_kill((int)grace, THEN_RESTART, (int)v);
        respond_state(c);
    } else if (path_is(r, "/finish")) {
        if (!query_int(c, r->query, r->query_len, "code", 0, 255, 0, true, &v))
            return;
        respond(c, 202, "{\"finishing\":true}");
        start_kill(A.grace_ms, THEN_EXIT_CODE, (int)v);
    } else if (path_is(r, "/stop")) {
        if (!query_int(c, r->query, r->query_len, "grace_ms", 0, MAX_GRACE_MS, A.grace_ms,
                       false, &grace))
            return;
        respond(c, 202, "{\"stopping\":true}");
        start_kill((int)grace, THEN_EXIT_SIGNAL, SIGTERM);
    } else {
        respond_error(c, 404, "no such endpoint");
    }
}

/* Acts on what a client sent so far: nothing until the head is complete, then
 * refuses early (auth, size) or handles the whole request. */
static void client_progress(client_t *c)
{
    if (!c->header_len) {
        size_t scan = c->in_len < MAX_HEADER ? c->in_len : MAX_HEADER;
        char *end = memmem(c->in, scan, "\r\n\r\n", 4);
        if (!end) {
            if (c->in_len >= MAX_HEADER)
                respond_error(c, 431, "request head larger than 8192 bytes");
            return;
        }
        c->header_len = (size_t)(end - c->in) + 4;
    }
    request_t r;
    if (!parse_head(c, &r))
        return;
    if (!r.authorized) {
        respond_error(c, 401, "missing or wrong token");
        return;
    }
    if (r.chunked) {
        respond_error(c, 501, "chunked request bodies are not supported: send Content-Length");
        return;
    }
    size_t body_len = r.content_length > 0 ? (size_t)r.content_length : 0;
    if (body_len > MAX_BODY) {
        respond_error(c, 413, "request body larger than 524288 bytes");
        return;
    }
    /* Only an authenticated request gets a buffer for its body: anyone who
     * can reach the port could otherwise make the agent (whose memory counts
     * against the job's limit) hold 64 large buffers. */
    size_t need = c->header_len + body_len;
    if (c->in_len < need) {
        /* (r points into c->in, so it is not used after this) */
        if (c->in_cap < need) {
            char *grown = realloc(c->in, need);
            if (!grown) {
                respond_error(c, 503, "out of memory");
                return;
            }
            c->in = grown;
            c->in_cap = need;
        }
        return;
    }
    handle(c, &r, c->in + c->header_len, body_len);
}

static void client_read(client_t *c)
{
    for (;;) {
        if (c->in_len == c->in_cap) {
            /* Only possible before the head is complete (a full head, or a
             * body, is taken as soon as it is there). */
            respond_error(c, 431, "request head larger than 8192 bytes");
            return;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            client_close(c);
            return;
        }
        c->in_len += (size_t)n;
        /* One buffer's worth per turn: every client gets its share of the loop. */
        break;
    }
    client_progress(c);
}

static void client_write(client_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0)
            break;
        c->out_off += (size_t)n;
    }
    client_close(c);
}

static void accept_clients(void)
{
    for (int k = 0; k < 16; k++) {
        int fd = accept4(A.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        client_t *c = NULL;
        for (int i = 0; i < MAX_CLIENTS && !c; i++)
            if (A.clients[i].state == CLIENT_FREE)
                c = &A.clients[i];
        /* All taken: the oldest connection that has not even sent a complete
         * head makes room, so clients that connect and send nothing cannot
         * lock the daemon out for long. */
        for (int i = 0; i < MAX_CLIENTS && !c; i++) {
            client_t *x = &A.clients[i];
            if (x->state == CLIENT_READING && !x->header_len &&
                (!c || x->deadline_ms < c->deadline_ms))
                c = x;
        }
        if (c && c->state != CLIENT_FREE)
            client_close(c);
        if (!c) {
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0"
                                       "\r\nConnection: close\r\n\r\n";
            (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->state = CLIENT_READING;
        c->in_cap = MAX_HEADER;
        c->in = xmalloc(c->in_cap);
        c->deadline_ms = now_ms() + REQUEST_DEADLINE_MS;
    }
}

/* Answers every long-poll that has news, and every one whose wait is over. */
static void answer_polls(int64_t now)
{
    for (int i = 0; i < MAX_CLIENTS; i++) {
        client_t *c = &A.clients[i];
        if (c->state == CLIENT_POLLING && (A.serial > c->after || now >= c->deadline_ms))
            respond_state(c);
    }
}

static _Noreturn void agent_exit(int code)
{
    /* Best effort: what is queued for clients (a /finish's answer) goes out. */
    for (int i = 0; i < MAX_CLIENTS; i++) {
        client_t *c = &A.clients[i];
        if (c->state == CLIENT_POLLING)
            respond_state(c);
        if (c->state == CLIENT_WRITING)
            client_write(c);
    }
    _exit(code);
}

/* ------------------------------------------------------------------ main */

/* A listening socket on addr (len bytes), or -1 with errno set. */
static int try_listen(const struct sockaddr *addr, socklen_t len)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (bind(fd, addr, len) < 0 || listen(fd, 64) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* "" listens on every address: IPv6 and IPv4 on one dual-stack socket, or
 * IPv4 alone in a pod without IPv6 (disabled at boot or by sysctl). */
static int listen_on(const char *address, int port)
{
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd;
    if (!*address) {
        s6.sin6_addr = in6addr_any;
        fd = try_listen((struct sockaddr *)&s6, sizeof s6);
        if (fd < 0 && errno != EADDRINUSE) {
            s4.sin_addr.s_addr = htonl(INADDR_ANY);
            fd = try_listen((struct sockaddr *)&s4, sizeof s4);
        }
    } else if (inet_pton(AF_INET6, address, &s6.sin6_addr) == 1) {
        fd = try_listen((struct sockaddr *)&s6, sizeof s6);
    } else if (inet_pton(AF_INET, address, &s4.sin_addr) == 1) {
        fd = try_listen((struct sockaddr *)&s4, sizeof s4);
    } else {
        die_config("JGSCHED_AGENT_ADDRESS %s is not an IP address", address);
    }
    if (fd < 0)
        die_config("cannot listen on port %d: %s", port, strerror(errno));
    return fd;
}

static void load_config(void)
{
    long port;
    const char *port_s = env_or("JGSCHED_AGENT_PORT", "7411");
    if (!parse_int(port_s, strlen(port_s), 1, 65535, &port))
        die_config("JGSCHED_AGENT_PORT %s is not a port number", port_s);
    long grace;
    const char *grace_s = env_or("JGSCHED_AGENT_GRACE_MS", "10000");
    if (!parse_int(grace_s, strlen(grace_s), 0, MAX_GRACE_MS, &grace))
        die_config("JGSCHED_AGENT_GRACE_MS %s is not a number of milliseconds", grace_s);
    A.grace_ms = (int)grace;
    A.hosts_path = env_or("JGSCHED_AGENT_HOSTS_FILE", "/etc/hosts");

    const char *token_path = env_or("JGSCHED_AGENT_TOKEN_FILE", "/.jgsched/secret/token");
    size_t token_len;
    char *token = read_config_file(token_path, MAX_TOKEN, &token_len);
    if (!token)
        die_config("no token file %s: the agent accepts no request without one", token_path);
    while (token_len && (token[token_len - 1] == '\n' || token[token_len - 1] == '\r'))
        token_len--;
    if (token_len < 16)
        die_config("the token in %s is shorter than 16 bytes", token_path);
    memcpy(A.token, token, token_len);
    A.token_len = token_len;
    free(token);

    A.setup = read_config_file(env_or("JGSCHED_AGENT_SETUP_FILE", "/.jgsched/job/setup"),
                               MAX_SCRIPT, NULL);
    A.run = read_config_file(env_or("JGSCHED_AGENT_RUN_FILE", "/.jgsched/job/run"), MAX_SCRIPT,
                             NULL);

    long attempt = 1;
    const char *attempt_s = getenv("JGSCHED_ATTEMPT");
    if (attempt_s && !parse_int(attempt_s, strlen(attempt_s), 1, INT_MAX, &attempt))
        die_config("JGSCHED_ATTEMPT %s is not a positive number", attempt_s);
    A.attempt = (int)attempt;
    const char *task_id = getenv("SKYPILOT_TASK_ID");
    if (task_id) {
        A.task_id_base = xstrdup(task_id);
        char suffix[24];
        snprintf(suffix, sizeof suffix, "-%ld", attempt);
        size_t tl = strlen(A.task_id_base), sl = strlen(suffix);
        if (attempt > 1 && tl > sl && strcmp(A.task_id_base + tl - sl, suffix) == 0)
            A.task_id_base[tl - sl] = '\0';
    }

    A.listen_fd = listen_on(env_or("JGSCHED_AGENT_ADDRESS", ""), (int)port);
}

/* `install DIR [--hosts-writable]`: the init container's whole job.  Copies
 * this binary to DIR/jgsched-agent (the image has no cp: it is FROM scratch).
 * With --hosts-writable (the init container runs as root) it also lets the
 * main container write the pod's /etc/hosts, which kubelet makes once per pod
 * and mounts into every container: an image that runs as a non-root user
 * could not add the group's names otherwise. */
static int install(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--hosts-writable") != 0)) {
        say("usage: jgsched-agent install DIR [--hosts-writable]");
        return 2;
    }
    int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (src < 0) {
        say("cannot open /proc/self/exe: %s", strerror(errno));
        return 1;
    }
    int dir = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        say("cannot open %s: %s", argv[2], strerror(errno));
        return 1;
    }
    int dst = openat(dir, "jgsched-agent.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
                     O_NOFOLLOW, 0755);
    if (dst < 0) {
        say("cannot create %s/jgsched-agent.tmp: %s", argv[2], strerror(errno));
        return 1;
    }
    char buf[65536];
    for (;;) {
        ssize_t n = read(src, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            say("cannot read /proc/self/exe: %s", strerror(errno));
            return 1;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(dst, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                say("cannot write %s/jgsched-agent.tmp: %s", argv[2], strerror(errno));
                return 1;
            }
            off += w;
        }
    }
    if (fchmod(dst, 0755) < 0 || fsync(dst) < 0 || close(dst) < 0 ||
        renameat(dir, "jgsched-agent.tmp", dir, "jgsched-agent") < 0) {
        say("cannot install %s/jgsched-agent: %s", argv[2], strerror(errno));
        return 1;
    }
    if (argc == 4) {
        const char *hosts = env_or("JGSCHED_AGENT_HOSTS_FILE", "/etc/hosts");
        if (chmod(hosts, 0666) < 0) {
            say("cannot make %s writable: %s", hosts, strerror(errno));
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "install") == 0)
        return install(argc, argv);
    if (argc > 1) {
        say("usage: jgsched-agent [install DIR [--hosts-writable]]");
        return 2;
    }

    /* Signals arrive through a descriptor, so the loop sees them in order with
     * everything else and nothing runs inside a handler. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    A.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (A.signal_fd < 0)
        die_config("signalfd: %s", strerror(errno));
    for (int i = 0; i < MAX_CLIENTS; i++)
        A.clients[i].fd = -1;

    load_config();
    start_attempt(A.attempt);

    struct pollfd pfd[MAX_CLIENTS + 2];
    client_t *owner[MAX_CLIENTS + 2];
    for (;;) {
        int64_t now = now_ms();
        answer_polls(now);
        int64_t next = now + 60000;
        if (A.killing && A.kill_deadline_ms) {
            if (now >= A.kill_deadline_ms) {
                if (A.child > 0)
                    signal_child(SIGKILL);
                A.kill_deadline_ms = 0;
            } else if (A.kill_deadline_ms < next) {
                next = A.kill_deadline_ms;
            }
        }
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = A.signal_fd, .events = POLLIN};
        owner[n++] = NULL;
        pfd[n] = (struct pollfd){.fd = A.listen_fd, .events = POLLIN};
        owner[n++] = NULL;
        for (int i = 0; i < MAX_CLIENTS; i++) {
            client_t *c = &A.clients[i];
            if (c->state == CLIENT_FREE)
                continue;
            if (now >= c->deadline_ms) {
                if (c->state == CLIENT_READING)
                    respond_error(c, 408, "request not received in time");
                else if (c->state == CLIENT_WRITING)
                    client_close(c);
                if (c->state == CLIENT_FREE)
                    continue;
            }
            if (c->deadline_ms < next)
                next = c->deadline_ms;
            short ev = c->state == CLIENT_READING   ? POLLIN
                       : c->state == CLIENT_WRITING ? POLLOUT
                                                    : POLLIN; /* a polling client that hangs up */
            pfd[n] = (struct pollfd){.fd = c->fd, .events = ev};
            owner[n++] = c;
        }
        int timeout = (int)(next > now ? next - now : 0);
        int ready = poll(pfd, n, timeout);
        if (ready < 0 && errno != EINTR) {
            say("poll: %s", strerror(errno));
            agent_exit(AGENT_EXIT_CONFIG);
        }
        if (ready <= 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(A.signal_fd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    reap();
                else if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) &&
                         A.phase == PHASE_EXITED && A.child <= 0 && !A.killing)
                    /* The node already ended and waits for its group's end:
                     * the pod's deletion makes the container end with the
                     * node's own code, so its terminated state tells it. */
                    agent_exit(A.exit_code);
                else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                    /* Ends with the number of the signal the agent got (143
                     * for the kubelet's TERM), whatever ended the child. */
                    start_kill(A.grace_ms, THEN_EXIT_CODE, 128 + (int)si.ssi_signo);
            }
        }
        for (nfds_t i = 2; i < n; i++) {
            client_t *c = owner[i];
            if (!pfd[i].revents || c->state == CLIENT_FREE)
                continue;
            if (c->state == CLIENT_READING)
                client_read(c);
            else if (c->state == CLIENT_WRITING)
                client_write(c);
            else if (c->state == CLIENT_POLLING && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                client_close(c);    /* the poller went away (or sent more: not allowed) */
            if (c->state == CLIENT_WRITING)
                client_write(c);
        }
        if (pfd[1].revents & POLLIN)
            accept_clients();
    }
}
