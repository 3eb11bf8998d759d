/* proto.c - line-delimited JSON framing shared by jgschedd and jgsched.
 * Why lines: trivially debuggable with socat, and a reader never needs to
 * know a length in advance; the 1 MiB cap bounds what one client can make the
 * daemon buffer. */
#include "jgsched/proto.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void jg_linebuf_init(jg_linebuf_t *lb)
{
    memset(lb, 0, sizeof *lb);
}

void jg_linebuf_clear(jg_linebuf_t *lb)
{
    free(lb->data);
    memset(lb, 0, sizeof *lb);
}

void jg_linebuf_append(jg_linebuf_t *lb, const char *data, size_t n)
{
    size_t pending = lb->len - lb->start;
    /* Compact when the bytes moved are at most the bytes already consumed:
     * each byte is moved O(1) times on average, however it arrives. */
    if (lb->start > 0 && (lb->len + n + 1 > lb->cap || lb->start >= pending)) {
        memmove(lb->data, lb->data + lb->start, pending);
        lb->scanned -= lb->start;
        lb->len = pending;
        lb->start = 0;
    }
    if (lb->len + n + 1 > lb->cap) {
        size_t cap = lb->cap ? lb->cap : 4096;
        while (cap < lb->len + n + 1)
            cap *= 2;
        lb->data = jg_xrealloc(lb->data, cap);
        lb->cap = cap;
    }
    memcpy(lb->data + lb->len, data, n);
    lb->len += n;
}

size_t jg_linebuf_pending(const jg_linebuf_t *lb)
{
    return lb->len - lb->start;
}

char *jg_linebuf_next(jg_linebuf_t *lb, int *too_long)
{
    *too_long = 0;
    if (lb->scanned < lb->start)
        lb->scanned = lb->start;
    char *nl = lb->len > lb->scanned ? memchr(lb->data + lb->scanned, '\n', lb->len - lb->scanned)
                                     : NULL;
    if (!nl) {
        lb->scanned = lb->len;
        if (lb->len - lb->start > JG_PROTO_MAX_MESSAGE)
            *too_long = 1;
        return NULL;
    }
    size_t n = (size_t)(nl - (lb->data + lb->start));
    if (n > JG_PROTO_MAX_MESSAGE) {
        *too_long = 1;
        return NULL;
    }
    char *line = jg_xstrndup(lb->data + lb->start, n);
    lb->start += n + 1;
    lb->scanned = lb->start;
    if (lb->start == lb->len)
        lb->start = lb->len = lb->scanned = 0;
    return line;
}

char *jg_proto_encode(const json_t *msg, size_t *len)
{
    char *body = json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!body)
        body = jg_xstrdup("{\"ok\":false,\"error\":\"internal error: cannot encode reply\"}");
    size_t n = strlen(body);
    char *line = jg_xmalloc(n + 2);
    memcpy(line, body, n);
    line[n] = '\n';
    line[n + 1] = '\0';
    free(body);
    if (len)
        *len = n + 1;
    return line;
}

json_t *jg_proto_decode(const char *line, jg_error_t *err)
{
    json_error_t jerr;
    json_t *msg = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    if (!msg) {
        jg_errprintf(err, "malformed JSON at column %d: %s", jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(msg)) {
        json_decref(msg);
        jg_errprintf(err, "a message must be a JSON object");
        return NULL;
    }
    return msg;
}

/* The daemon answers a connection it will not serve with one error line and
 * closes it, possibly before the client has sent anything: that line is the
 * explanation a user needs, not "broken pipe".  True (err filled) if found. */
static bool refusal(int fd, jg_error_t *err)
{
    char said[2048];
    ssize_t r = recv(fd, said, sizeof said - 1, MSG_DONTWAIT | MSG_PEEK);
    if (r <= 0)
        return false;
    said[r] = '\0';
    char *nl = strchr(said, '\n');
    if (!nl)
        return false;
    *nl = '\0';
    json_t *msg = json_loads(said, 0, NULL);
    const char *text = json_string_value(json_object_get(msg, "error"));
    if (text)
        jg_errprintf(err, "%s", text);
    json_decref(msg);
    return text != NULL;
}

int jg_proto_send(int fd, const json_t *msg, jg_error_t *err)
{
    size_t len;
    char *line = jg_proto_encode(msg, &len);
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(line);
            if ((e == EPIPE || e == ECONNRESET) && refusal(fd, err))
                return -1;
            return jg_errprintf(err, "cannot send to jgschedd: %s", strerror(e));
        }
        off += (size_t)w;
    }
    free(line);
    return 0;
}

json_t *jg_proto_recv(int fd, jg_linebuf_t *lb, jg_error_t *err)
{
    for (;;) {
        int too_long;
        char *line = jg_linebuf_next(lb, &too_long);
        if (too_long) {
            jg_errprintf(err, "reply from jgschedd exceeds %d bytes", JG_PROTO_MAX_MESSAGE);
            return NULL;
        }
        if (line) {
            json_t *msg = jg_proto_decode(line, err);
            free(line);
            return msg;
        }
        char buf[65536];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            jg_errprintf(err, "cannot read from jgschedd: %s", strerror(errno));
            return NULL;
        }
        if (r == 0) {
            jg_errprintf(err, "jgschedd closed the connection");
            return NULL;
        }
        jg_linebuf_append(lb, buf, (size_t)r);
    }
}

json_t *jg_proto_error(const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", text);
}

json_t *jg_proto_failure(const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", text, "code", JG_PROTO_DAEMON_FAILED);
}

json_t *jg_proto_ok(void)
{
    return json_pack("{s:b}", "ok", 1);
}

json_t *jg_proto_time(long long us)
{
    return json_real((double)us / 1e6);
}
