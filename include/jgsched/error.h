/* error.h - the one error convention of jgsched.
 *
 * A function that can fail returns 0 on success and -1 on failure, and fills a
 * caller-owned jg_error_t with a message a user can act on (what was wrong, where,
 * which value).  A failed call has no side effects.  jg_errprintf() always returns
 * -1, so the idiom is `return jg_errprintf(err, "cannot open %s: %s", path, ...);`.
 * A NULL err is allowed everywhere: the message is then dropped.
 */
#ifndef JGSCHED_ERROR_H
#define JGSCHED_ERROR_H

#include <stddef.h>

typedef struct {
    char text[512];
} jg_error_t;

/* Formats into err->text (truncating if needed); returns -1. */
int jg_errprintf(jg_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message; returns -1. */
int jg_errprefix(jg_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Aborts with a message on allocation failure: out of memory is the one error
 * the scheduler does not try to survive (as SQLite's and Redis's zmalloc do). */
void *jg_xmalloc(size_t n);
void *jg_xcalloc(size_t n, size_t size);
void *jg_xrealloc(void *p, size_t n);
char *jg_xstrdup(const char *s);           /* NULL in, NULL out */
char *jg_xstrndup(const char *s, size_t n);
char *jg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst[size], truncating (reasons and messages are bounded on
 * purpose); always NUL-terminates when size > 0. Returns dst. */
char *jg_strlcpy(char *dst, const char *src, size_t size);


/* Daemon log: one line "2026-11-28T10:00:00.123Z LEVEL message" to stderr,
 * which the daemon points at its log file.  level: "info", "warn", "error".
 * The formatted message goes through jg_log_escape, so text a user controls
 * (a policy's print, an error quoting a request) can never start a line of
 * its own or send terminal escapes to whoever reads the log. */
void jg_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies n bytes of src into dst[size] so that the result is one line of
 * printable text: '\n' and '\r' become two-character escapes, other control
 * characters but the tab (C0, DEL, C1, NUL included) and bytes that are not valid UTF-8
 * become \xHH.  A backslash stays as it is, so escaping twice changes nothing
 * (text escaped where it was made, such as a policy's print, passes jg_log
 * unchanged); a literal "\n" a user wrote reads like an escape, but can never
 * start a line.  Truncates between escapes, never inside one; always
 * NUL-terminates when size > 0.  Returns dst.  For any other place that shows
 * user text to an administrator (jg_log already applies it). */
char *jg_log_escape(char *dst, size_t size, const char *src, size_t n);

/* A log line that an attacker could trigger at will (a refused connection,
 * accept failing at the descriptor limit) goes through a limiter: at most one
 * line per JG_LOG_LIMIT_MS per limiter; the next line that passes says how
 * many were suppressed.  A zero-initialised jg_log_limit_t is ready to use. */
#define JG_LOG_LIMIT_MS 10000
typedef struct {
    long long next_ms;          /* monotonic; 0: the next line passes */
    unsigned long suppressed;
} jg_log_limit_t;

void jg_log_limited(jg_log_limit_t *lim, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
