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
#include <stdbool.h>
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


/* ---- JSON text without a tree (proto_json.c) ----
 *
 * A listing of 100,000 groups built as jansson values costs a few allocations
 * per field on each side of the socket; these write and read the same JSON
 * text directly, in time linear in its bytes. */

/* Appends JSON text to a growable buffer (data, len; NUL-terminated).  The
 * caller writes the punctuation; strings, numbers and times are encoded as
 * jg_proto_encode's jansson would (ASCII only: other characters as \uXXXX,
 * invalid UTF-8 as \uFFFD). */
typedef struct {
    char *data;
    size_t len, cap;
} jg_jsonw_t;

void jg_jsonw_reset(jg_jsonw_t *w);        /* empties it, keeping the memory */
void jg_jsonw_free(jg_jsonw_t *w);
void jg_jsonw_raw(jg_jsonw_t *w, const char *text, size_t n);
void jg_jsonw_lit(jg_jsonw_t *w, const char *text); /* a literal the caller spells right */
void jg_jsonw_str(jg_jsonw_t *w, const char *s);    /* NULL writes "" */
void jg_jsonw_int(jg_jsonw_t *w, long long v);
void jg_jsonw_bool(jg_jsonw_t *w, bool v);
/* A real as jansson writes it ("%.17g", ".0" added to whole numbers), so text
 * passed through verbatim matches what jansson prints for the value. */
void jg_jsonw_real(jg_jsonw_t *w, double v);
/* jg_proto_time(us)'s value. */
void jg_jsonw_time(jg_jsonw_t *w, long long us);

/* A JSON text as a flat array of tokens, parsed in place: strings are decoded
 * into the text itself and NUL-terminated there, so the text must stay alive
 * (and is modified).  Strict JSON, nesting at most JG_JSON_MAX_DEPTH deep, no
 * NUL in strings, valid UTF-8 only; one value, nothing after it but spaces. */
#define JG_JSON_MAX_DEPTH 32

typedef enum {
    JG_JTOK_OBJECT, JG_JTOK_ARRAY, JG_JTOK_STRING, JG_JTOK_NUMBER, JG_JTOK_TRUE,
    JG_JTOK_FALSE, JG_JTOK_NULL,
} jg_jtok_type_t;

typedef struct {
    jg_jtok_type_t type;
    bool is_real;           /* a number with a fraction or exponent */
    size_t count;           /* members of an object, elements of an array */
    size_t next;            /* index of the first token after this value */
    const char *text;       /* a string's decoded bytes (NUL-terminated); a number's or
                             * literal's own text (not terminated) */
    size_t len;
} jg_jtok_t;

/* An object's members are its key's token then the value's tokens, in turn. */
typedef struct {
    jg_jtok_t *tok;
    size_t n, cap;
} jg_jtoks_t;

/* Tokenizes text[0..len), which text[len] == '\0' ends (a protocol line does),
 * keeping toks' memory between calls; -1 + err. */
int jg_json_tokenize(char *text, size_t len, jg_jtoks_t *toks, jg_error_t *err);
void jg_jtoks_free(jg_jtoks_t *toks);
/* The value of key in the object at index obj: its index, or 0 when the key
 * is missing or obj is no object (token 0 is never a member's value). */
size_t jg_json_get(const jg_jtoks_t *toks, size_t obj, const char *key);
/* Readers of a value by index (0: missing): a string's text or "", a
 * number as an integer (reals truncated) or def, a number or 0, true. */
const char *jg_json_str(const jg_jtoks_t *toks, size_t i);
long long jg_json_int(const jg_jtoks_t *toks, size_t i, long long def);
double jg_json_num(const jg_jtoks_t *toks, size_t i);
bool jg_json_true(const jg_jtoks_t *toks, size_t i);

#endif
