/* server.c - jgschedd's socket server: the listening socket and connections.
 *
 * A client line is decoded (proto) and handed to the handler table
 * (handlers.c); the reply is queued on the connection's output buffer and
 * flushed when the socket is writable.  Identity comes from SO_PEERCRED at
 * accept time; the request never says who it is.
 *
 * No client can hold up the others (docs/security.md): each connection gets a
 * bounded share of every loop turn (requests served, bytes read) and asks the
 * loop for another turn when it has more; every byte the daemon holds for a
 * client is bounded per connection, per user and overall; an unfinished
 * request times out; connections are capped per user; and when accept() runs
 * out of descriptors the listening socket rests instead of spinning.
 */
#include <errno.h>
#include <malloc.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon_int.h"

/* What one client may hold of the daemon (docs/security.md).  A connection
 * gets REQUESTS_PER_TURN requests (a submit of N copies counts N) and one
 * READ_CHUNK read per loop turn, and
 * reads nothing more while it holds complete requests not yet served or
 * replies over OUTPUT_HIGH_WATER not yet taken: so its input buffer never
 * exceeds one message plus one chunk, and a client that does not read its
 * replies stops being served instead of growing the daemon.  The byte totals
 * bound what all of one user's connections, and all connections, may hold. */
#define REQUESTS_PER_TURN 16
#define READ_CHUNK 65536
#define ACCEPTS_PER_TURN 64
#define OUTPUT_HIGH_WATER (256 * 1024)
#define MAX_OUTPUT_BUFFER (16 * 1024 * 1024)        /* one connection's unsent replies */
#define USER_INPUT_LIMIT (8 * 1024 * 1024)          /* one uid's unfinished requests */
#define TOTAL_INPUT_LIMIT (64 * 1024 * 1024)
#define USER_OUTPUT_LIMIT (32 * 1024 * 1024)        /* one uid's unsent replies */
#define TOTAL_OUTPUT_LIMIT (256 * 1024 * 1024)
/* At the descriptor limit, accept() fails until a descriptor is freed; the
 * listening socket stays readable meanwhile, so it is set aside until a
 * connection closes or this long has passed. */
#define ACCEPT_PAUSE_MS 250

/* One local user as a client: their connections and the bytes these hold. */
struct jgd_peer {
    uid_t uid;
    char user[64];
    bool unlimited;             /* root, the daemon's owner, an admin: no connection cap */
    int conns;
    size_t in_bytes, out_bytes;
    jgd_peer_t *next;
};

/* ----------------------------------------------------------- connections */

static jgd_peer_t *peer_get(jg_daemon_t *d, uid_t uid, gid_t gid)
{
    for (jgd_peer_t *p = d->peers; p; p = p->next)
        if (p->uid == uid)
            return p;
    jgd_peer_t *p = jg_xcalloc(1, sizeof *p);
    p->uid = uid;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(p->user, sizeof p->user, "%s", res->pw_name);
    else
        snprintf(p->user, sizeof p->user, "%u", (unsigned)uid);
    p->unlimited = uid == 0 || uid == getuid() ||
                   jg_config_is_admin(d->config, p->user, uid, gid);
    p->next = d->peers;
    d->peers = p;
    return p;
}

static void peer_put(jg_daemon_t *d, jgd_peer_t *p)
{
    if (--p->conns > 0)
        return;
    for (jgd_peer_t **pp = &d->peers; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    free(p);
}

/* Brings the peer's and the daemon's byte totals up to date with c. */
static void conn_count(jgd_conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    size_t in = jg_linebuf_pending(&c->in), out = c->out_len - c->out_off;
    c->peer->in_bytes = c->peer->in_bytes - c->counted_in + in;
    d->in_bytes = d->in_bytes - c->counted_in + in;
    c->peer->out_bytes = c->peer->out_bytes - c->counted_out + out;
    d->out_bytes = d->out_bytes - c->counted_out + out;
    c->counted_in = in;
    c->counted_out = out;
}

static void resume_accepting(jg_daemon_t *d);

static void conn_close(jgd_conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    jg_loop_del_fd(d->loop, c->fd);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    jgd_watch_stop(c);
    jg_linebuf_clear(&c->in);
    c->out_len = c->out_off = 0;
    conn_count(c);
    peer_put(d, c->peer);
    free(c->out);
    free(c);
    if (d->accept_paused)
        resume_accepting(d);        /* a descriptor is free again */
}

/* The epoll interest that fits c's state: output to flush; input unless the
 * client shut down its side or has replies over the high-water mark waiting
 * (level-triggered epoll would otherwise report input we refuse to read). */
static void conn_update_events(jgd_conn_t *c)
{
    size_t out = c->out_len - c->out_off;
    uint32_t ev = 0;
    if (out)
        ev |= EPOLLOUT;
    if (!c->read_eof && out <= OUTPUT_HIGH_WATER)
        ev |= EPOLLIN;
    if (ev != c->events && jg_loop_mod_fd(c->daemon->loop, c->fd, ev, NULL) == 0)
        c->events = ev;
}

/* Returns -1 if the connection was closed. */
static int conn_flush(jgd_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c);
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->close_after_flush) {
            conn_close(c);
            return -1;
        }
    }
    conn_count(c);
    if (c->held_back && c->out_len - c->out_off <= OUTPUT_HIGH_WATER) {
        /* Its buffered requests get their turn again, input or not. */
        c->held_back = false;
        jg_loop_defer_fd(c->daemon->loop, c->fd);
    }
    conn_update_events(c);
    return 0;
}

/* Appends line[len] to c's output, or closes c when that would exceed a
 * bound on unsent replies.  Returns -1 if the connection was closed. */
static int conn_queue(jgd_conn_t *c, const char *line, size_t len)
{
    jg_daemon_t *d = c->daemon;
    const char *over = c->out_len - c->out_off + len > MAX_OUTPUT_BUFFER ? "its connection's"
                       : c->peer->out_bytes + len > USER_OUTPUT_LIMIT    ? "its user's"
                       : d->out_bytes + len > TOTAL_OUTPUT_LIMIT         ? "the daemon's"
                                                                         : NULL;
    if (over) {
        jg_log_limited(&d->log_overflow, "warn",
                       "client pid %d (user %s) does not read its replies: %s bound on unsent "
                       "replies reached; closing it", (int)c->pid, c->user, over);
        conn_close(c);
        return -1;
    }
    /* Compact only when the bytes moved are at most those already sent: a
     * client taking its replies a few bytes at a time must not make each new
     * reply move the whole backlog. */
    if (c->out_len + len > c->out_cap && c->out_off > 0 &&
        c->out_off >= c->out_len - c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        /* Geometric growth: a slow reader costs amortised O(1) per byte. */
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len)
            cap *= 2;
        c->out = jg_xrealloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    conn_count(c);
    return 0;
}

/* Queues a reply (steals msg).  Returns -1 if the connection was closed. */
int jgd_conn_send(jgd_conn_t *c, json_t *msg)
{
    size_t len;
    char *line = jg_proto_encode(msg, &len);
    json_decref(msg);
    int rc = conn_queue(c, line, len);
    free(line);
    return rc < 0 ? -1 : conn_flush(c);
}

int jgd_conn_send_text(jgd_conn_t *c, jg_jsonw_t *text)
{
    /* The newline goes in the buffer's spare byte (its NUL) for one append. */
    text->data[text->len] = '\n';
    int rc = conn_queue(c, text->data, text->len + 1);
    text->data[text->len] = '\0';
    return rc < 0 ? -1 : conn_flush(c);
}

/* Ends a connection that broke a rule, telling the client which: the error
 * goes after whatever replies are queued, as much as the socket takes now,
 * and the connection closes at once (a client that does not read could
 * otherwise keep it).  Always returns -1 (the connection is gone). */
static int conn_fail(jgd_conn_t *c, json_t *error)
{
    size_t len;
    char *line = jg_proto_encode(error, &len);
    json_decref(error);
    int rc = conn_queue(c, line, len);
    free(line);
    if (rc < 0)
        return -1;
    if (c->out_off < c->out_len)
        (void)send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    conn_close(c);
    return -1;
}

static void sweep_unfinished(jg_loop_t *loop, void *arg);

static int64_t request_timeout_ms(const jg_daemon_t *d)
{
    return (int64_t)(d->config->clients.request_timeout_s * 1000);
}

/* An unfinished request started on c now: make sure someone checks on it. */
static void note_unfinished(jgd_conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    if (c->partial_since_ms)
        return;
    c->partial_since_ms = jg_now_mono_ms();
    if (!d->sweep_timer) {
        int64_t every = request_timeout_ms(d) / 4;
        d->sweep_timer = jg_loop_add_timer(d->loop, every < 100 ? 100 : every > 1000 ? 1000 : every,
                                           sweep_unfinished, d);
    }
}

/* Closes the connections whose unfinished request is older than the request
 * timeout: a client that starts a request must finish it, or it could hold
 * its buffer (up to 1 MiB) forever. */
static void sweep_unfinished(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_daemon_t *d = arg;
    d->sweep_timer = 0;
    int64_t now = jg_now_mono_ms(), limit = request_timeout_ms(d);
    bool waiting = false;
    jgd_conn_t *next;
    for (jgd_conn_t *c = d->conns; c; c = next) {
        next = c->next;
        if (!c->partial_since_ms)
            continue;
        if (now - c->partial_since_ms < limit) {
            waiting = true;
            continue;
        }
        conn_fail(c, jg_proto_error("request not completed within %g s (clients.request_timeout): "
                                    "a request is one line ending in a newline; closing the "
                                    "connection", d->config->clients.request_timeout_s));
    }
    if (waiting) {
        int64_t every = limit / 4;
        d->sweep_timer = jg_loop_add_timer(d->loop, every < 100 ? 100 : every > 1000 ? 1000 : every,
                                           sweep_unfinished, d);
    }
}

/* Reads at most one chunk into c's buffer, within the per-user and overall
 * bounds on unfinished requests.  Returns -1 if the connection was closed. */
static int conn_read(jgd_conn_t *c)
{
    jg_daemon_t *d = c->daemon;
    size_t user_room = USER_INPUT_LIMIT - c->peer->in_bytes;
    size_t all_room = TOTAL_INPUT_LIMIT - d->in_bytes;
    size_t room = user_room < all_room ? user_room : all_room;
    if (room > READ_CHUNK)
        room = READ_CHUNK;
    if (room == 0) {
        bool user = user_room == 0;
        jg_log_limited(&d->log_overflow, "warn",
                       "client pid %d (user %s): %s unfinished requests reach %d MiB; closing it",
                       (int)c->pid, c->user, user ? "the user's" : "all clients'",
                       (user ? USER_INPUT_LIMIT : TOTAL_INPUT_LIMIT) >> 20);
        return conn_fail(c, user ? jg_proto_error("jgschedd holds %d MiB of unfinished requests from "
                                                  "user %s, its limit per user; closing this "
                                                  "connection", USER_INPUT_LIMIT >> 20, c->user)
                                 : jg_proto_error("jgschedd holds %d MiB of unfinished requests, its "
                                                  "limit; closing this connection",
                                                  TOTAL_INPUT_LIMIT >> 20));
    }
    char buf[READ_CHUNK];
    ssize_t r;
    do
        r = recv(c->fd, buf, room, MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        conn_close(c);
        return -1;
    }
    if (r == 0) {
        c->read_eof = true;
        return 0;
    }
    jg_linebuf_append(&c->in, buf, (size_t)r);
    conn_count(c);
    return 0;
}

/* Serves c's fair share of this turn: buffered requests first, then one read,
 * at most REQUESTS_PER_TURN requests in all; with requests left over it asks
 * the loop for another turn.  Nothing more is read while complete requests
 * wait, nor served while the replies over OUTPUT_HIGH_WATER are not taken
 * (conn_flush resumes it once they are). */
static void conn_serve(jgd_conn_t *c)
{
    int budget = REQUESTS_PER_TURN;
    bool have_read = false, starved = false;
    for (;;) {
        if (c->out_len - c->out_off > OUTPUT_HIGH_WATER) {
            c->held_back = true;
            break;
        }
        int too_long;
        char *line = jg_linebuf_next(&c->in, &too_long);
        if (too_long) {
            conn_fail(c, jg_proto_error("request exceeds %d bytes (1 MiB), the protocol's limit; "
                                        "closing the connection", JG_PROTO_MAX_MESSAGE));
            return;
        }
        if (!line) {
            if (have_read || c->read_eof) {
                starved = true;
                break;
            }
            have_read = true;
            if (conn_read(c) < 0)
                return;
            continue;
        }
        c->partial_since_ms = 0;
        jg_error_t err;
        json_t *req = jg_proto_decode(line, &err);
        free(line);
        jg_jsonw_t *text = &c->daemon->reply_text;
        json_t *reply = req ? jgd_dispatch(c, req, text) : jg_proto_error("%s", err.text);
        json_decref(req);
        if ((reply ? jgd_conn_send(c, reply) : jgd_conn_send_text(c, text)) < 0 ||
            c->close_after_flush)
            return;
        budget -= 1 + c->extra_cost;
        c->extra_cost = 0;
        if (budget <= 0) {
            jg_loop_defer_fd(c->daemon->loop, c->fd);
            break;
        }
    }
    conn_count(c);
    if (starved && c->read_eof) {
        /* Every complete request is answered and no more can come: what is
         * left, if anything, is a request cut off by the close. */
        c->close_after_flush = true;
        conn_flush(c);
        return;
    }
    if (starved && jg_linebuf_pending(&c->in) > 0)
        note_unfinished(c);
    conn_update_events(c);
}

static void on_conn_io(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    jgd_conn_t *c = arg;
    if (revents & EPOLLERR) {
        conn_close(c);
        return;
    }
    /* EPOLLHUP: the client closed its socket.  Flushing then fails and
     * closes ours; requests it sent before closing are still served. */
    if ((revents & (EPOLLOUT | EPOLLHUP)) && c->out_off < c->out_len && conn_flush(c) < 0)
        return;
    conn_serve(c);
}

/* ---------------------------------------------------------- accepting */

static void on_accept(jg_loop_t *loop, int fd, uint32_t revents, void *arg);

static void resume_accepting(jg_daemon_t *d)
{
    if (d->accept_timer)
        jg_loop_cancel_timer(d->loop, d->accept_timer);
    d->accept_timer = 0;
    d->accept_paused = false;
    jg_loop_mod_fd(d->loop, d->listen_fd, EPOLLIN, NULL);
}

static void on_accept_pause_over(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_daemon_t *d = arg;
    d->accept_timer = 0;
    resume_accepting(d);
}

/* accept() failed for want of descriptors or memory: the pending connection
 * stays in the backlog and the listening socket stays readable, so polling it
 * now would spin.  Stop until a connection closes or the pause ends. */
static void pause_accepting(jg_daemon_t *d, int error)
{
    int open = 0;
    for (jgd_conn_t *c = d->conns; c; c = c->next)
        open++;
    jg_log_limited(&d->log_accept, "warn",
                   "cannot accept clients: %s (%d connections open); not accepting until one "
                   "closes (at most %d ms)", strerror(error), open, ACCEPT_PAUSE_MS);
    jg_loop_mod_fd(d->loop, d->listen_fd, 0, NULL);
    d->accept_paused = true;
    if (!d->accept_timer)
        d->accept_timer = jg_loop_add_timer(d->loop, ACCEPT_PAUSE_MS, on_accept_pause_over, d);
}

/* Tells a connection we will not serve why, and closes it.  A fresh socket's
 * buffer is empty, so the one line fits without blocking. */
static void refuse(int fd, json_t *error)
{
    size_t len;
    char *line = jg_proto_encode(error, &len);
    json_decref(error);
    (void)send(fd, line, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    free(line);
    close(fd);
}

static void on_accept(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    jg_daemon_t *d = arg;
    /* A fair share here too: a burst of connects waits for the next turn. */
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(d, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                     errno != ECONNABORTED)
                jg_log_limited(&d->log_accept, "warn", "accept: %s", strerror(errno));
            return;
        }
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            jg_log_limited(&d->log_accept, "warn", "SO_PEERCRED: %s; dropping the client",
                           strerror(errno));
            close(cfd);
            continue;
        }
        jgd_peer_t *p = peer_get(d, cred.uid, cred.gid);
        int cap = d->config->clients.max_connections_per_user;
        if (!p->unlimited && cap != JG_CONFIG_UNLIMITED && p->conns >= cap) {
            jg_log_limited(&d->log_refused, "warn",
                           "refused a connection of user %s (pid %d): %d connections open, the "
                           "limit (clients.max_connections_per_user)", p->user, (int)cred.pid, cap);
            refuse(cfd, jg_proto_error("too many connections: user %s has %d connections open to "
                                       "jgschedd, the limit per user "
                                       "(clients.max_connections_per_user)", p->user, cap));
            continue;
        }
        jgd_conn_t *c = jg_xcalloc(1, sizeof *c);
        c->daemon = d;
        c->peer = p;
        p->conns++;
        c->fd = cfd;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
        snprintf(c->user, sizeof c->user, "%s", p->user);
        c->events = EPOLLIN;
        jg_linebuf_init(&c->in);
        jg_error_t err;
        if (jg_loop_add_fd(loop, cfd, EPOLLIN, on_conn_io, c, &err) < 0) {
            jg_log_limited(&d->log_accept, "warn", "%s", err.text);
            close(cfd);
            peer_put(d, p);
            free(c);
            continue;
        }
        c->next = d->conns;
        if (d->conns)
            d->conns->prev = c;
        d->conns = c;
    }
}

/* ------------------------------------------------------ listening socket */

static int socket_answers(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

static int bind_socket(jg_daemon_t *d, jg_error_t *err)
{
    const char *path = d->paths.socket;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return jg_errprintf(err, "socket path %s is too long (max %zu bytes); set JGSCHED_HOME to a "
                                 "shorter directory",
                            path, sizeof addr.sun_path - 1);
    if (socket_answers(path))
        return jg_errprintf(err, "another jgschedd already answers at %s", path);
    unlink(path);       /* stale socket of a dead daemon */
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return jg_errprintf(err, "socket: %s", strerror(errno));
    /* Per-user: only the owner may connect.  System mode: everyone may, and
     * SO_PEERCRED tells who is asking. */
    mode_t old = umask(d->paths.system ? 0111 : 0077);
    int rc = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return jg_errprintf(err, "cannot listen on %s: %s", path, strerror(e));
    }
    d->listen_fd = fd;
    return 0;
}


/* A queue page reads some 8,000 strings of store rows and frees them at once
 * (its JSON text goes into a buffer kept for the next page); a group's
 * details and the replies of other ops are trees of JSON values built and
 * freed the same way.  glibc's defaults give the freed heap top back to the
 * kernel after each (trim above 128 KiB) and mmap large blocks, so every
 * page faulted its memory in again (when pages were JSON trees, two thirds
 * of a page's CPU).  Keeping a few MiB makes a reply cost its work alone;
 * the daemon's resident size grows by at most the trim threshold. */
#define HEAP_TRIM_THRESHOLD (8 * 1024 * 1024)
#define HEAP_MMAP_THRESHOLD (4 * 1024 * 1024)

int jgd_server_listen(jg_daemon_t *d, jg_error_t *err)
{
    mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);
    mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD);
    if (bind_socket(d, err) < 0)
        return -1;
    return jg_loop_add_fd(d->loop, d->listen_fd, EPOLLIN, on_accept, d, err);
}

void jgd_server_close(jg_daemon_t *d)
{
    while (d->conns)
        conn_close(d->conns);
    jg_jsonw_free(&d->reply_text);
    if (d->listen_fd >= 0) {
        close(d->listen_fd);
        unlink(d->paths.socket);
        d->listen_fd = -1;
    }
}

void jgd_server_flush_all(jg_daemon_t *d)
{
    for (jgd_conn_t *c = d->conns; c; c = c->next)
        if (c->out_len > c->out_off)
            (void)send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
}
