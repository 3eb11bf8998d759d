/* proto.h - framing of the daemon protocol: one JSON object per line, at most
 * JG_PROTO_MAX_MESSAGE bytes (docs/protocol.md lists the messages).
 *
 * Shared by the daemon (non-blocking, through jg_linebuf_t) and the CLI
 * (blocking helpers).  JSON values follow jansson's reference rules: functions
 * named *_take steal the reference they are given, even on failure.
 */
#ifndef JGSCHED_PROTO_H
#define JGSCHED_PROTO_H

#include <jansson.h>
#include <stddef.h>

#include "jgsched/error.h"

#define JG_PROTO_MAX_MESSAGE (1024 * 1024)

/* Accumulates bytes and yields complete lines, in time linear in the bytes
 * given: consumed lines are skipped by an offset, not moved, and the buffer is
 * compacted only when the moved bytes are paid for by as many consumed ones. */
typedef struct {
    char *data;
    size_t start;           /* first byte not yet returned */
    size_t len, cap;
    size_t scanned;         /* bytes before this (from start on) hold no '\n' */
} jg_linebuf_t;

void jg_linebuf_init(jg_linebuf_t *lb);
void jg_linebuf_clear(jg_linebuf_t *lb);     /* frees the buffer */
void jg_linebuf_append(jg_linebuf_t *lb, const char *data, size_t n);
/* Next complete line (without '\n'), NUL-terminated, malloc'd (caller frees);
 * NULL if none yet.  Sets *too_long when the pending line exceeds the maximum:
 * the connection should then be answered with an error and closed. */
char *jg_linebuf_next(jg_linebuf_t *lb, int *too_long);
/* Bytes held that jg_linebuf_next has not returned yet. */
size_t jg_linebuf_pending(const jg_linebuf_t *lb);

/* Serialises msg as one line (compact, '\n' added).  Returns malloc'd text. */
char *jg_proto_encode(const json_t *msg, size_t *len);

/* Parses one line into a JSON object; NULL + err if it is not a JSON object. */
json_t *jg_proto_decode(const char *line, jg_error_t *err);

/* Blocking send / receive on a socket (CLI side).  recv returns a new
 * reference, or NULL + err on EOF, I/O error or a malformed message.  When the
 * daemon has refused the connection (too many connections, say) and closed
 * it, send fails with the daemon's own error message rather than EPIPE. */
int jg_proto_send(int fd, const json_t *msg, jg_error_t *err);
json_t *jg_proto_recv(int fd, jg_linebuf_t *lb, jg_error_t *err);

/* Response helpers: {"ok":false,"error":text} and {"ok":true}. New references. */
json_t *jg_proto_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_t *jg_proto_ok(void);

/* {"ok":false,"error":text,"code":"daemon_failed"}: the request was fine but
 * the daemon could not carry it out (its store failed, the disk is full); the
 * CLI exits JG_PROTO_DAEMON_FAILED's code 4 for it instead of blaming the
 * user's input.  New reference. */
#define JG_PROTO_DAEMON_FAILED "daemon_failed"
json_t *jg_proto_failure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall-clock microseconds as the protocol's seconds-with-fraction number. */
json_t *jg_proto_time(long long us);

#endif
