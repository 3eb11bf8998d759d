/* error.c - the error buffer helpers, the allocation wrappers every module
 * uses, and the daemon log.  Kept small on purpose: see include/jgsched/error.h
 * for the convention.  The log is read by administrators of a machine whose
 * users put text into it (policy output, names quoted in errors), so every
 * record is escaped into one printable line, and lines an attacker can trigger
 * at will go through a rate limiter. */
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

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 if the
 * bytes there are not one: overlong forms, surrogates and code points above
 * U+10FFFF count as invalid, as do C1 controls (U+0080..U+009F), which some
 * terminals obey as escape sequences. */
static size_t utf8_printable_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1fu;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0fu;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
        return 0;
    return len;
}

char *jg_log_escape(char *dst, size_t size, const char *src, size_t n)
{
    if (size == 0)
        return dst;
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0, i = 0;
    while (i < n) {
        char esc[5];
        size_t k = utf8_printable_len(s + i, n - i);
        const char *piece = (const char *)s + i;
        size_t plen = k;
        if (k == 1 && ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)) {
            switch (s[i]) {
            case '\n': piece = "\\n"; break;
            case '\r': piece = "\\r"; break;
            default:
                snprintf(esc, sizeof esc, "\\x%02x", s[i]);
                piece = esc;
            }
            plen = strlen(piece);
        } else if (k == 0) {
            snprintf(esc, sizeof esc, "\\x%02x", s[i]);
            piece = esc;
            plen = 4;
            k = 1;
        }
        if (out + plen > size - 1)
            break;
        memcpy(dst + out, piece, plen);
        out += plen;
        i += k;
    }
    dst[out] = '\0';
    return dst;
}

static void log_line(const char *level, const char *fmt, va_list ap, const char *suffix)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Worst case every byte becomes \xHH. */
    char line[4 * sizeof msg];
    jg_log_escape(line, sizeof line, msg, strlen(msg));
    fprintf(stderr, "%s.%03dZ %s %s%s\n", ts, (int)(tv.tv_usec / 1000), level, line,
            suffix ? suffix : "");
    fflush(stderr);
}

void jg_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(level, fmt, ap, NULL);
    va_end(ap);
}

void jg_log_limited(jg_log_limit_t *lim, const char *level, const char *fmt, ...)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long now_ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (lim->next_ms && now_ms < lim->next_ms) {
        lim->suppressed++;
        return;
    }
    char suffix[96] = "";
    if (lim->suppressed)
        snprintf(suffix, sizeof suffix, " (%lu more like this since the last one, not logged)",
                 lim->suppressed);
    lim->suppressed = 0;
    lim->next_ms = now_ms + JG_LOG_LIMIT_MS;
    va_list ap;
    va_start(ap, fmt);
    log_line(level, fmt, ap, suffix);
    va_end(ap);
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
