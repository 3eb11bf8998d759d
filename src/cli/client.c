/* client.c - the CLI's side of the connection to jgschedd, and `jgsched daemon`.
 *
 * A plain user needs no set-up: when nothing answers on the instance's socket
 * (no socket file, or a stale one), a command that needs the daemon starts
 * one.  Never for JGSCHED_SOCKET: it names a daemon to talk to, and a
 * mistyped path would otherwise quietly get a second daemon of its own (for
 * the same instance directory, whose lock it then holds).  It runs the jgschedd found in $JGSCHEDD, next to this executable, or in
 * PATH, with no arguments; that process daemonizes and exits 0 once its socket
 * accepts connections, or exits non-zero after saying why on stderr, which we
 * relay.  Two CLIs starting at once serialise on flock(<run_dir>/autostart.lock)
 * and the second one finds the first one's daemon when it retries the socket.
 *
 * Messages are read through poll() so that a command following a group can
 * redraw on a timer and notice Ctrl-C (docs/protocol.md has the messages).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000  /* how long a starting daemon may take to listen */
#define STOP_TIMEOUT_MS 15000   /* how long `daemon stop` waits for the socket to go quiet */
#define START_OUTPUT_MAX 4096   /* what we keep of a failing daemon's output */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Connects to a Unix socket.  Returns the fd, or -1 with errno set. */
static int connect_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == EINTR)
            continue;
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static bool nobody_home(int e)
{
    return e == ENOENT || e == ECONNREFUSED;
}

/* Which jgschedd to start: $JGSCHEDD, the sibling of this executable, or the
 * one in PATH.  Caller frees. */
static char *daemon_executable(void)
{
    const char *env = getenv("JGSCHEDD");
    if (env && *env)
        return jg_xstrdup(env);
    char *sibling = jg_sibling_executable("jgschedd");
    if (sibling && access(sibling, X_OK) == 0)
        return sibling;
    free(sibling);
    return jg_xstrdup("jgschedd");
}

/* Runs jgschedd and waits until it has daemonized (its first process exits).
 * Its output is collected through a pipe that we stop reading once it exits,
 * so a daemon that kept the pipe open cannot hang us; on failure the output
 * is relayed to our stderr. */
static int start_daemon(jg_error_t *err)
{
    char *exe = daemon_executable();
    int rc = -1;
    int pfd[2] = {-1, -1};
    pid_t pid = -1;
    jg_cli_buf_t out = {0};

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        jg_errprintf(err, "cannot start %s: pipe: %s", exe, strerror(errno));
        goto done;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        jg_errprintf(err, "cannot start %s: fork: %s", exe, strerror(errno));
        goto done;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        dup2(pfd[1], STDOUT_FILENO);
        dup2(pfd[1], STDERR_FILENO);
        signal(SIGPIPE, SIG_DFL);
        execlp(exe, exe, (char *)NULL);
        dprintf(STDERR_FILENO, "jgsched: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    pfd[1] = -1;
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);

    long long deadline = mono_ms() + START_TIMEOUT_MS;
    int status = 0;
    bool exited = false, pipe_open = true;
    while (!exited) {
        if (pipe_open) {
            struct pollfd p = {.fd = pfd[0], .events = POLLIN};
            poll(&p, 1, 50);
        } else {
            sleep_ms(50);
        }
        char buf[1024];
        ssize_t r = -1;
        while (pipe_open && (r = read(pfd[0], buf, sizeof buf)) != 0) {
            if (r < 0) {
                if (errno != EINTR)
                    break;
                continue;
            }
            if (out.len < START_OUTPUT_MAX)
                jg_cli_buf_printf(&out, "%.*s", (int)r, buf);
        }
        if (r == 0)
            pipe_open = false;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = true;
        } else if (mono_ms() > deadline) {
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            jg_errprintf(err, "%s did not get ready within %d s", exe, START_TIMEOUT_MS / 1000);
            goto done;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fputs(jg_cli_buf_str(&out), stderr);
        if (out.len && out.s[out.len - 1] != '\n')
            fputc('\n', stderr);
        if (WIFEXITED(status))
            jg_errprintf(err, "could not start %s (exit status %d)", exe, WEXITSTATUS(status));
        else
            jg_errprintf(err, "could not start %s (killed by signal %d)", exe,
                         WTERMSIG(status));
        goto done;
    }
    rc = 0;
done:
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    jg_cli_buf_free(&out);
    free(exe);
    return rc;
}

/* Starts a daemon under the autostart lock, unless another CLI got there
 * first; returns the connected fd or -1 + err. */
static int autostart(const jg_paths_t *paths, jg_error_t *err)
{
    int fd = -1;
    char *lock_path = jg_xasprintf("%s/autostart.lock", paths->run_dir);
    int lock = -1;
    if (jg_mkdir_p(paths->run_dir, 0700, err) < 0)
        goto done;
    lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0) {
        jg_errprintf(err, "cannot open %s: %s", lock_path, strerror(errno));
        goto done;
    }
    while (flock(lock, LOCK_EX) < 0) {
        if (errno != EINTR) {
            jg_errprintf(err, "cannot lock %s: %s", lock_path, strerror(errno));
            goto done;
        }
    }
    fd = connect_socket(paths->socket);         /* someone else may have started it */
    if (fd >= 0 || !nobody_home(errno))
        goto connected;
    if (start_daemon(err) < 0)
        goto done;
    long long deadline = mono_ms() + 2000;
    while ((fd = connect_socket(paths->socket)) < 0 && nobody_home(errno) &&
           mono_ms() < deadline)
        sleep_ms(20);
connected:
    if (fd < 0)
        jg_errprintf(err, "cannot connect to jgschedd at %s: %s", paths->socket,
                     strerror(errno));
done:
    if (lock >= 0)
        close(lock);        /* releases the flock */
    free(lock_path);
    return fd;
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

/* A plain user who names no instance (no JGSCHED_HOME, no JGSCHED_SOCKET)
 * shares the machine's system daemon when its socket exists, instead of
 * starting one of their own.  Decided here and not in jg_paths_resolve, so
 * that jgschedd run by such a user still gets the per-user instance. */
static void prefer_system_daemon(jg_paths_t *p)
{
    struct stat st;
    if (p->system || env_set("JGSCHED_HOME") || env_set("JGSCHED_SOCKET") ||
        stat(JG_SYSTEM_SOCKET, &st) < 0 || !S_ISSOCK(st.st_mode))
        return;
    free(p->socket);
    p->socket = jg_xstrdup(JG_SYSTEM_SOCKET);
    p->system = 1;
}

int jg_cli_connect(jg_cli_client_t *c, bool start, jg_error_t *err)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    jg_linebuf_init(&c->lb);
    if (jg_paths_resolve(&c->paths, err) < 0)
        return -1;
    prefer_system_daemon(&c->paths);
    c->fd = connect_socket(c->paths.socket);
    if (c->fd >= 0)
        return 0;
    int e = errno;
    bool others_daemon = c->paths.system && geteuid() != 0;
    bool named_socket = env_set("JGSCHED_SOCKET");
    if (nobody_home(e) && named_socket)
        jg_errprintf(err, "no jgschedd answers at %s, the socket JGSCHED_SOCKET names (it "
                          "names a running daemon and never starts one): check the path, or "
                          "unset JGSCHED_SOCKET to use %s", c->paths.socket,
                     env_set("JGSCHED_HOME") ? "the instance of JGSCHED_HOME" : "your own daemon");
    else if (nobody_home(e) && start && !others_daemon)
        c->fd = autostart(&c->paths, err);
    else if (nobody_home(e) && others_daemon)
        jg_errprintf(err, "the system jgschedd at %s does not answer (is the jgsched service "
                          "running?)", c->paths.socket);
    else if (nobody_home(e))
        jg_errprintf(err, "no daemon running at %s", c->paths.socket);
    else
        jg_errprintf(err, "cannot connect to jgschedd at %s: %s", c->paths.socket, strerror(e));
    if (c->fd < 0) {
        jg_cli_close(c);
        return -1;
    }
    return 0;
}

void jg_cli_close(jg_cli_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    jg_linebuf_clear(&c->lb);
    jg_paths_free(&c->paths);
}

int jg_cli_send(jg_cli_client_t *c, json_t *req, jg_error_t *err)
{
    int rc = jg_proto_send(c->fd, req, err);
    json_decref(req);
    return rc;
}

int jg_cli_recv(jg_cli_client_t *c, int timeout_ms, json_t **msg, jg_error_t *err)
{
    char *line;
    *msg = NULL;
    int r = jg_cli_recv_line(c, timeout_ms, &line, err);
    if (r <= 0)
        return r;
    *msg = jg_proto_decode(line, err);
    free(line);
    if (!*msg)
        return jg_errprefix(err, "bad reply from jgschedd");
    return 1;
}

int jg_cli_recv_line(jg_cli_client_t *c, int timeout_ms, char **line, jg_error_t *err)
{
    long long deadline = timeout_ms >= 0 ? mono_ms() + timeout_ms : -1;
    *line = NULL;
    c->lost = false;
    for (;;) {
        int too_long;
        *line = jg_linebuf_next(&c->lb, &too_long);
        if (too_long)
            return jg_errprintf(err, "reply from jgschedd exceeds %d bytes",
                                JG_PROTO_MAX_MESSAGE);
        if (*line)
            return 1;
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - mono_ms();
            wait = left > 0 ? (int)left : 0;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, wait);
        if (n < 0) {
            if (errno == EINTR)
                return 0;
            c->lost = true;
            return jg_errprintf(err, "cannot wait for jgschedd: %s", strerror(errno));
        }
        if (n == 0)
            return 0;
        char buf[65536];
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR)
                return 0;
            c->lost = true;
            return jg_errprintf(err, "cannot read from jgschedd: %s", strerror(errno));
        }
        if (r == 0) {
            c->lost = true;
            return jg_errprintf(err, "jgschedd closed the connection");
        }
        jg_linebuf_append(&c->lb, buf, (size_t)r);
    }
}

json_t *jg_cli_call(jg_cli_client_t *c, json_t *req, jg_error_t *err)
{
    if (jg_cli_send(c, req, err) < 0) {
        c->lost = true;
        return NULL;
    }
    json_t *reply = NULL;
    int r;
    while ((r = jg_cli_recv(c, -1, &reply, err)) == 0)
        ;
    return r > 0 ? reply : NULL;
}

int jg_cli_failure_code(const json_t *reply, int refused)
{
    return strcmp(jg_cli_jstr(reply, "code"), JG_PROTO_DAEMON_FAILED) == 0
               ? JG_EXIT_DAEMON_FAILED
               : refused;
}

int jg_cli_call_failure_code(const jg_cli_client_t *c)
{
    return c->lost ? JG_EXIT_NO_DAEMON : JG_EXIT_DAEMON_FAILED;
}

int jg_cli_request(jg_cli_client_t *c, json_t *req, json_t **reply)
{
    jg_error_t err;
    *reply = NULL;
    if (c->fd < 0 && jg_cli_connect(c, true, &err) < 0) {
        json_decref(req);
        jg_cli_errorf("%s", err.text);
        return JG_EXIT_NO_DAEMON;
    }
    json_t *r = jg_cli_call(c, req, &err);
    if (!r) {
        jg_cli_errorf("%s", err.text);
        return jg_cli_call_failure_code(c);
    }
    if (!jg_cli_jbool(r, "ok")) {
        const char *e = jg_cli_jstr(r, "error");
        jg_cli_errorf("%s", *e ? e : "jgschedd refused the request");
        int rc = jg_cli_failure_code(r, JG_EXIT_FAIL);
        json_decref(r);
        return rc;
    }
    *reply = r;
    return JG_EXIT_OK;
}

int jg_cli_request_get(jg_cli_client_t *c, json_t *req, const char *key, json_type type,
                       json_t **reply, json_t **field)
{
    *field = NULL;
    int rc = jg_cli_request(c, req, reply);
    if (rc != JG_EXIT_OK)
        return rc;
    json_t *v = json_object_get(*reply, key);
    if (!v || json_typeof(v) != type) {
        jg_cli_errorf("bad reply from jgschedd: no %s %s", key,
                      type == JSON_ARRAY ? "array" : "object");
        return JG_EXIT_DAEMON_FAILED;
    }
    *field = v;
    return JG_EXIT_OK;
}

/* ---- jgsched daemon status|stop ---- */

static const char daemon_usage[] =
    "usage: jgsched daemon status|stop\n"
    "\n"
    "  status   show the running jgschedd (pid, home, socket, version); exit 3 if none\n"
    "  stop     ask jgschedd to stop and wait until its socket stops answering\n"
    "           (running nodes keep running and are picked up by the next daemon)\n";

/* Pings without starting anything; fills *c and *reply, or prints why not. */
static int ping(jg_cli_client_t *c, json_t **reply)
{
    jg_error_t err;
    if (jg_cli_connect(c, false, &err) < 0) {
        jg_cli_errorf("%s", err.text);
        return JG_EXIT_NO_DAEMON;
    }
    return jg_cli_request(c, json_pack("{s:s}", "op", "ping"), reply);
}

static int daemon_status(void)
{
    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL;
    int rc = ping(&c, &reply);
    if (rc == JG_EXIT_OK) {
        printf("jgschedd %s is running\n", jg_cli_jstr(reply, "version"));
        printf("  pid:     %lld\n", jg_cli_jint(reply, "pid", 0));
        printf("  home:    %s\n", jg_cli_jstr(reply, "home"));
        printf("  socket:  %s\n", c.paths.socket);
    }
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}

static int daemon_stop(void)
{
    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL;
    jg_error_t err;
    char *socket_path = NULL;
    int rc = ping(&c, &reply);
    if (rc != JG_EXIT_OK)
        goto done;
    long long pid = jg_cli_jint(reply, "pid", 0);
    json_decref(reply);
    reply = NULL;
    rc = jg_cli_request(&c, json_pack("{s:s}", "op", "shutdown"), &reply);
    if (rc != JG_EXIT_OK)
        goto done;
    socket_path = jg_xstrdup(c.paths.socket);
    long long deadline = mono_ms() + STOP_TIMEOUT_MS;
    json_t *extra = NULL;
    while (mono_ms() < deadline) {      /* first the daemon closes our connection */
        int r = jg_cli_recv(&c, 100, &extra, &err);
        json_decref(extra);
        if (r < 0)
            break;
    }
    jg_cli_close(&c);
    for (;;) {                          /* then nothing answers on its socket */
        int fd = connect_socket(socket_path);
        if (fd < 0 && nobody_home(errno))
            break;
        if (fd >= 0)
            close(fd);
        if (mono_ms() > deadline) {
            jg_cli_errorf("jgschedd (pid %lld) still answers at %s after %d s", pid,
                          socket_path, STOP_TIMEOUT_MS / 1000);
            rc = JG_EXIT_FAIL;
            goto done;
        }
        sleep_ms(50);
    }
    printf("jgschedd stopped (pid %lld)\n", pid);
done:
    json_decref(reply);
    jg_cli_close(&c);
    free(socket_path);
    return rc;
}

int jg_cli_cmd_daemon(int argc, char **argv)
{
    int rc = jg_cli_getopt_simple(argc, argv, daemon_usage, NULL, 1, 1, "'status' or 'stop'");
    if (rc >= 0)
        return rc;
    if (strcmp(argv[optind], "status") == 0)
        return daemon_status();
    if (strcmp(argv[optind], "stop") == 0)
        return daemon_stop();
    return jg_cli_usage_error(argv[0], "unknown subcommand '%s'", argv[optind]);
}
