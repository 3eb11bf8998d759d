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

/* Copies the n bytes at src into dst[size] with every control character but
 * the tab (0x00-0x1f, 0x7f: newline, carriage return, ESC, NUL...) written as
 * \n, \r or \xHH, truncating (never inside an escape); always NUL-terminates
 * when size > 0.  Text that came from a user goes through it before it
 * reaches a log, so it can neither start a line of its own nor drive the
 * reader's terminal.  Returns dst. */
char *jg_escape_controls(char *dst, size_t size, const char *src, size_t n);

/* Daemon log: one line "2026-11-28T10:00:00.123Z LEVEL message" to stderr,
 * which the daemon points at its log file.  level: "info", "warn", "error".
 * The message is passed through jg_escape_controls, so whatever user text it
 * holds (a policy's print, an error message, a group name) stays on its line. */
void jg_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
