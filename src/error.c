/* error.c - the error buffer helpers and the allocation wrappers every module uses.
 * Kept tiny on purpose: see include/jgsched/error.h for the convention. */
#include "jgsched/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int jg_errprintf(jg_error_t *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int jg_errprefix(jg_error_t *err, const char *fmt, ...)
{
    if (err) {
        char prefix[sizeof err->text];
        char old[sizeof err->text];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->text, sizeof old);
        size_t n = strlen(prefix);
        memcpy(err->text, prefix, n);
        if (n + 2 < sizeof err->text) {
            memcpy(err->text + n, ": ", 2);
            n += 2;
        }
        size_t rest = strnlen(old, sizeof old);
        if (rest > sizeof err->text - 1 - n)
            rest = sizeof err->text - 1 - n;
        memcpy(err->text + n, old, rest);
        err->text[n + rest] = '\0';
    }
    return -1;
}

static void *oom(void)
{
    fputs("jgsched: out of memory\n", stderr);
    abort();
}

void *jg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom();
}

void *jg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom();
}

void *jg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom();
}

char *jg_xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *p = strdup(s);
    return p ? p : oom();
}

char *jg_xstrndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = strndup(s, n);
    return p ? p : oom();
}

char *jg_xasprintf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    return r < 0 ? oom() : s;
}

void jg_log(const char *level, const char *fmt, ...)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char raw[2048], msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    jg_escape_controls(msg, sizeof msg, raw, (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1);
    fprintf(stderr, "%s.%03dZ %s %s\n", ts, (int)(tv.tv_usec / 1000), level, msg);
    fflush(stderr);
}

char *jg_strlcpy(char *dst, const char *src, size_t size)
{
    if (size == 0)
        return dst;
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

char *jg_escape_controls(char *dst, size_t size, const char *src, size_t n)
{
    if (size == 0)
        return dst;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)src[i];
        char esc[5];
        size_t w;
        if (ch == '\n' || ch == '\r') {
            esc[0] = '\\';
            esc[1] = ch == '\n' ? 'n' : 'r';
            w = 2;
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", ch);
            w = 4;
        } else {
            esc[0] = (char)ch;
            w = 1;
        }
        if (o + w > size - 1)
            break;
        memcpy(dst + o, esc, w);
        o += w;
    }
    dst[o] = '\0';
    return dst;
}
