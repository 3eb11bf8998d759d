/* proto_json.c - JSON text written and read without a tree of values (see
 * include/jgsched/proto.h): the queue's pages, 100,000 groups in all, cost
 * their bytes, not an allocation per field on each side of the socket.
 *
 * The writer encodes as jansson's JSON_COMPACT | JSON_ENSURE_ASCII does, reals
 * included, so a client printing a number's text verbatim prints what jansson
 * would.  The reader is a one-pass tokenizer with an explicit, bounded stack:
 * linear in the text, whatever the daemon (or anyone) sends.
 */
#include "jgsched/proto.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ writer */

static void reserve(jg_jsonw_t *w, size_t more)
{
    if (w->len + more + 1 <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + more + 1)
        cap *= 2;
    w->data = jg_xrealloc(w->data, cap);
    w->cap = cap;
}

void jg_jsonw_reset(jg_jsonw_t *w)
{
    w->len = 0;
    if (w->data)
        w->data[0] = '\0';
}

void jg_jsonw_free(jg_jsonw_t *w)
{
    free(w->data);
    *w = (jg_jsonw_t){0};
}

void jg_jsonw_raw(jg_jsonw_t *w, const char *text, size_t n)
{
    reserve(w, n);
    memcpy(w->data + w->len, text, n);
    w->len += n;
    w->data[w->len] = '\0';
}

void jg_jsonw_lit(jg_jsonw_t *w, const char *text)
{
    jg_jsonw_raw(w, text, strlen(text));
}

/* The code point of the UTF-8 sequence at p (n bytes left), its length in
 * *len; -1 (length 1) for an invalid one: overlong, a surrogate, past
 * U+10FFFF or cut short. */
static long utf8_next(const unsigned char *p, size_t n, size_t *len)
{
    *len = 1;
    unsigned char c = p[0];
    size_t need;
    long cp, min;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, cp = c & 0x07, min = 0x10000;
    else
        return -1;
    if (n < need)
        return -1;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = need;
    return cp;
}

static const char hex_digits[] = "0123456789ABCDEF";

static void put_u16(char *out, unsigned v)
{
    out[0] = '\\';
    out[1] = 'u';
    for (int i = 0; i < 4; i++)
        out[2 + i] = hex_digits[(v >> (12 - 4 * i)) & 0xF];
}

void jg_jsonw_str(jg_jsonw_t *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    reserve(w, n + 2);
    w->data[w->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            jg_jsonw_raw(w, (const char *)p + i, run - i);
            i = run;
            if (i == n)
                break;
        }
        char esc[12];
        size_t elen = 2;
        unsigned char c = p[i];
        esc[0] = '\\';
        if (c == '"' || c == '\\')
            esc[1] = (char)c;
        else if (c == '\b')
            esc[1] = 'b';
        else if (c == '\f')
            esc[1] = 'f';
        else if (c == '\n')
            esc[1] = 'n';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c == '\t')
            esc[1] = 't';
        else if (c < 0x20)
            put_u16(esc, c), elen = 6;
        else {
            size_t len;
            long cp = utf8_next(p + i, n - i, &len);
            if (cp < 0)
                cp = 0xFFFD;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                put_u16(esc, 0xD800 | (unsigned)(cp >> 10));
                put_u16(esc + 6, 0xDC00 | (unsigned)(cp & 0x3FF));
                elen = 12;
            } else {
                put_u16(esc, (unsigned)cp);
                elen = 6;
            }
            i += len - 1;
        }
        i++;
        jg_jsonw_raw(w, esc, elen);
    }
    reserve(w, 1);
    w->data[w->len++] = '"';
    w->data[w->len] = '\0';
}

void jg_jsonw_int(jg_jsonw_t *w, long long v)
{
    char buf[24], *e = buf + sizeof buf, *p = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    jg_jsonw_raw(w, p, (size_t)(e - p));
}

void jg_jsonw_bool(jg_jsonw_t *w, bool v)
{
    jg_jsonw_lit(w, v ? "true" : "false");
}

/* jansson's jsonp_dtostr: "%.17g", ".0" added when neither '.' nor 'e'
 * shows, the exponent without '+' and leading zeros. */
static size_t real_slow(double v, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%.17g", v);
    if (n < 0 || (size_t)n + 3 >= size)
        return 0;
    size_t len = (size_t)n;
    if (!strchr(buf, '.') && !strchr(buf, 'e')) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    char *e = strchr(buf, 'e');
    if (e) {
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            from++, to++;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
        len = strlen(buf);
    }
    return len;
}

/* The same text, exactly, for 1 <= v < 2^53 (timestamps): the double is
 * m * 2^-k, so its 17 significant digits are m * 10^f / 2^k rounded half to
 * even, as glibc's printf rounds, with 128-bit integers instead of printf's
 * multi-precision arithmetic (a third of a queue page's time). */
static size_t real_fast(double v, char *buf)
{
    static const uint64_t pow10[17] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL};
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int k = 1075 - (int)((bits >> 52) & 0x7FF);     /* v = m / 2^k, 0 <= k <= 52 */
    uint64_t m = (bits & ((1ULL << 52) - 1)) | (1ULL << 52);
    uint64_t whole = m >> k;
    int d = 1;
    while (d < 17 && whole >= pow10[d])
        d++;
    int f = 17 - d;                                 /* fraction digits */
    unsigned __int128 scaled = (unsigned __int128)m * pow10[f];
    unsigned __int128 digits = scaled >> k;
    if (k > 0) {
        unsigned __int128 rem = scaled & (((unsigned __int128)1 << k) - 1);
        unsigned __int128 half = (unsigned __int128)1 << (k - 1);
        if (rem > half || (rem == half && (digits & 1)))
            digits++;
    }
    uint64_t rest = (uint64_t)digits;              /* at most 10^17: 64 bits hold it */
    char tmp[24];
    int nd = 0;
    do {
        tmp[nd++] = (char)('0' + (int)(rest % 10));
        rest /= 10;
    } while (rest);
    int whole_digits = d + (nd - 17);               /* a carry adds one */
    size_t len = 0;
    for (int i = 0; i < whole_digits; i++)
        buf[len++] = tmp[nd - 1 - i];
    int last = 0;                                   /* trailing zeros go, as with %g */
    while (last < nd - whole_digits && tmp[last] == '0')
        last++;
    buf[len++] = '.';
    if (last == nd - whole_digits)
        buf[len++] = '0';
    else
        for (int i = nd - whole_digits - 1; i >= last; i--)
            buf[len++] = tmp[i];
    buf[len] = '\0';
    return len;
}

void jg_jsonw_real(jg_jsonw_t *w, double v)
{
    char buf[64];
    size_t len;
    if (v >= 1.0 && v < 9007199254740992.0)
        len = real_fast(v, buf);
    else if (v == 0.0 && !signbit(v))
        len = (size_t)snprintf(buf, sizeof buf, "0.0");
    else
        len = real_slow(v, buf, sizeof buf);
    jg_jsonw_raw(w, buf, len);
}

void jg_jsonw_time(jg_jsonw_t *w, long long us)
{
    jg_jsonw_real(w, (double)us / 1e6);
}

/* ------------------------------------------------------------------ reader */

typedef struct {
    char *text;
    size_t len, pos;
    jg_jtoks_t *toks;
    jg_error_t *err;
} reader_t;

static int fail(reader_t *r, const char *what)
{
    return jg_errprintf(r->err, "malformed JSON at byte %zu: %s", r->pos, what);
}

static size_t push(reader_t *r, jg_jtok_type_t type, const char *text, size_t len)
{
    jg_jtoks_t *t = r->toks;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->tok = jg_xrealloc(t->tok, t->cap * sizeof *t->tok);
    }
    t->tok[t->n] = (jg_jtok_t){.type = type, .text = text, .len = len};
    return t->n++;
}

static void skip_space(reader_t *r)
{
    while (r->pos < r->len && (r->text[r->pos] == ' ' || r->text[r->pos] == '\t' ||
                               r->text[r->pos] == '\n' || r->text[r->pos] == '\r'))
        r->pos++;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at r->pos (the opening quote), decoded in place: the decoded
 * bytes never outrun the escaped ones. */
static int read_string(reader_t *r, size_t *tok)
{
    char *s = r->text;
    size_t in = r->pos + 1, out = in;
    for (;;) {
        if (in >= r->len) {
            r->pos = in;
            return fail(r, "unterminated string");
        }
        unsigned char c = (unsigned char)s[in];
        if (c == '"')
            break;
        if (c < 0x20) {
            r->pos = in;
            return fail(r, "control character in a string");
        }
        if (c >= 0x80) {
            size_t len;
            if (utf8_next((const unsigned char *)s + in, r->len - in, &len) < 0) {
                r->pos = in;
                return fail(r, "invalid UTF-8");
            }
            memmove(s + out, s + in, len);
            in += len;
            out += len;
            continue;
        }
        if (c != '\\') {
            s[out++] = s[in++];
            continue;
        }
        if (in + 1 >= r->len) {
            r->pos = in;
            return fail(r, "unterminated string");
        }
        char e = s[in + 1];
        in += 2;
        switch (e) {
        case '"': s[out++] = '"'; break;
        case '\\': s[out++] = '\\'; break;
        case '/': s[out++] = '/'; break;
        case 'b': s[out++] = '\b'; break;
        case 'f': s[out++] = '\f'; break;
        case 'n': s[out++] = '\n'; break;
        case 'r': s[out++] = '\r'; break;
        case 't': s[out++] = '\t'; break;
        case 'u': {
            unsigned hi, lo;
            if (in + 4 > r->len || hex4(s + in, &hi) < 0) {
                r->pos = in;
                return fail(r, "bad \\u escape");
            }
            in += 4;
            unsigned long cp = hi;
            if (hi >= 0xD800 && hi <= 0xDBFF) {
                if (in + 6 > r->len || s[in] != '\\' || s[in + 1] != 'u' ||
                    hex4(s + in + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    r->pos = in;
                    return fail(r, "lone surrogate in a \\u escape");
                }
                in += 6;
                cp = 0x10000 + (((unsigned long)hi - 0xD800) << 10) + (lo - 0xDC00);
            } else if (hi >= 0xDC00 && hi <= 0xDFFF) {
                r->pos = in;
                return fail(r, "lone surrogate in a \\u escape");
            } else if (hi == 0) {
                r->pos = in;
                return fail(r, "\\u0000 in a string");
            }
            out += put_utf8(s + out, cp);
            break;
        }
        default:
            r->pos = in;
            return fail(r, "bad escape in a string");
        }
    }
    s[out] = '\0';                  /* at most where the closing quote was */
    *tok = push(r, JG_JTOK_STRING, s + r->pos + 1, out - (r->pos + 1));
    r->pos = in + 1;
    return 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int read_number(reader_t *r)
{
    const char *s = r->text;
    size_t p = r->pos, n = r->len;
    bool real = false;
    if (p < n && s[p] == '-')
        p++;
    if (p < n && s[p] == '0')
        p++;
    else if (p < n && is_digit(s[p]))
        while (p < n && is_digit(s[p]))
            p++;
    else
        return fail(r, "bad number");
    if (p < n && s[p] == '.') {
        real = true;
        p++;
        if (p >= n || !is_digit(s[p]))
            return fail(r, "bad number");
        while (p < n && is_digit(s[p]))
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        real = true;
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || !is_digit(s[p]))
            return fail(r, "bad number");
        while (p < n && is_digit(s[p]))
            p++;
    }
    if (p - r->pos > 64)
        return fail(r, "number too long");
    size_t t = push(r, JG_JTOK_NUMBER, s + r->pos, p - r->pos);
    r->toks->tok[t].is_real = real;
    r->pos = p;
    return 0;
}

static int read_literal(reader_t *r)
{
    static const struct {
        const char *word;
        jg_jtok_type_t type;
    } words[] = {{"true", JG_JTOK_TRUE}, {"false", JG_JTOK_FALSE}, {"null", JG_JTOK_NULL}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t len = strlen(words[i].word);
        if (r->len - r->pos >= len && memcmp(r->text + r->pos, words[i].word, len) == 0) {
            push(r, words[i].type, r->text + r->pos, len);
            r->pos += len;
            return 0;
        }
    }
    return fail(r, "unexpected character");
}

int jg_json_tokenize(char *text, size_t len, jg_jtoks_t *toks, jg_error_t *err)
{
    reader_t r = {.text = text, .len = len, .toks = toks, .err = err};
    size_t open[JG_JSON_MAX_DEPTH];     /* the containers being read */
    int depth = 0;
    toks->n = 0;
    for (;;) {
        /* A value (or a container's end) is expected here. */
        skip_space(&r);
        if (r.pos >= len)
            return fail(&r, "unexpected end");
        char c = text[r.pos];
        jg_jtok_t *parent = depth ? &toks->tok[open[depth - 1]] : NULL;
        bool empty = parent && parent->count == 0 &&
                     c == (parent->type == JG_JTOK_OBJECT ? '}' : ']');
        if (!empty) {       /* (an empty container is closed below) */
            if (parent && parent->type == JG_JTOK_OBJECT) {
                size_t key;
                if (c != '"')
                    return fail(&r, "expected a member name");
                if (read_string(&r, &key) < 0)
                    return -1;
                skip_space(&r);
                if (r.pos >= len || text[r.pos] != ':')
                    return fail(&r, "expected ':'");
                r.pos++;
                skip_space(&r);
                if (r.pos >= len)
                    return fail(&r, "unexpected end");
                toks->tok[key].next = key + 1;
                c = text[r.pos];
            }
            if (parent)
                toks->tok[open[depth - 1]].count++;
            if (c == '{' || c == '[') {
                if (depth == JG_JSON_MAX_DEPTH)
                    return fail(&r, "nested too deep");
                open[depth++] = push(&r, c == '{' ? JG_JTOK_OBJECT : JG_JTOK_ARRAY,
                                     text + r.pos, 0);
                r.pos++;
                continue;
            }
            size_t t = toks->n;
            int rc = c == '"'                      ? read_string(&r, &(size_t){0})
                     : c == '-' || is_digit(c)     ? read_number(&r)
                                                   : read_literal(&r);
            if (rc < 0)
                return -1;
            toks->tok[t].next = t + 1;
            if (!depth)
                break;
        }
        /* After a value: a comma, or the ends of containers. */
        for (;;) {
            skip_space(&r);
            if (r.pos >= len)
                return fail(&r, "unexpected end");
            jg_jtok_t *top = &toks->tok[open[depth - 1]];
            char close = top->type == JG_JTOK_OBJECT ? '}' : ']';
            c = text[r.pos];
            if (c == ',') {
                r.pos++;
                break;
            }
            if (c != close)
                return fail(&r, "expected ',' or the container's end");
            r.pos++;
            top->next = toks->n;
            depth--;
            if (!depth)
                goto done;
        }
        continue;
    }
done:
    skip_space(&r);
    if (r.pos != len)
        return fail(&r, "text after the value");
    return 0;
}

void jg_jtoks_free(jg_jtoks_t *toks)
{
    free(toks->tok);
    *toks = (jg_jtoks_t){0};
}

size_t jg_json_get(const jg_jtoks_t *toks, size_t obj, const char *key)
{
    if (obj >= toks->n || toks->tok[obj].type != JG_JTOK_OBJECT)
        return 0;
    size_t i = obj + 1;
    for (size_t m = 0; m < toks->tok[obj].count; m++) {
        if (strcmp(toks->tok[i].text, key) == 0)
            return i + 1;
        i = toks->tok[i + 1].next;
    }
    return 0;
}

const char *jg_json_str(const jg_jtoks_t *toks, size_t i)
{
    return i && i < toks->n && toks->tok[i].type == JG_JTOK_STRING ? toks->tok[i].text : "";
}

long long jg_json_int(const jg_jtoks_t *toks, size_t i, long long def)
{
    if (!i || i >= toks->n || toks->tok[i].type != JG_JTOK_NUMBER)
        return def;
    if (toks->tok[i].is_real)
        return (long long)strtod(toks->tok[i].text, NULL);
    return strtoll(toks->tok[i].text, NULL, 10);
}

double jg_json_num(const jg_jtoks_t *toks, size_t i)
{
    if (!i || i >= toks->n || toks->tok[i].type != JG_JTOK_NUMBER)
        return 0;
    return strtod(toks->tok[i].text, NULL);
}

bool jg_json_true(const jg_jtoks_t *toks, size_t i)
{
    return i && i < toks->n && toks->tok[i].type == JG_JTOK_TRUE;
}
