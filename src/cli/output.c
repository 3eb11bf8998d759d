/* output.c - how jgsched prints: aligned tables, times and durations, JSON.
 *
 * Tables are built in memory and printed once, so column widths come from the
 * content (the widest line of each column, header included) and no line ends
 * in spaces.  Times arrive as protocol timestamps (seconds since the epoch,
 * 0 meaning "not yet") and are shown in local time, short when recent.  The
 * json readers never fail: a reply missing a field still prints. */
#include "cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "jgsched/state.h"

/* ---- tables ---- */

struct jg_cli_table {
    size_t ncols;
    char **headers;
    bool *right;
    char **cells;           /* rows * ncols, row-major */
    size_t rows, cap;
    bool borrowed;          /* cells are the caller's (jg_cli_table_borrow_cells) */
};

jg_cli_table_t *jg_cli_table_new(size_t ncols, const char *const *headers)
{
    jg_cli_table_t *t = jg_xcalloc(1, sizeof *t);
    t->ncols = ncols;
    t->headers = jg_xcalloc(ncols, sizeof *t->headers);
    t->right = jg_xcalloc(ncols, sizeof *t->right);
    for (size_t i = 0; i < ncols; i++)
        t->headers[i] = jg_xstrdup(headers[i] ? headers[i] : "");
    return t;
}

void jg_cli_table_free(jg_cli_table_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncols; i++)
        free(t->headers[i]);
    for (size_t i = 0; i < t->rows * t->ncols && !t->borrowed; i++)
        free(t->cells[i]);
    free(t->headers);
    free(t->right);
    free(t->cells);
    free(t);
}

void jg_cli_table_align_right(jg_cli_table_t *t, size_t col)
{
    if (col < t->ncols)
        t->right[col] = true;
}

void jg_cli_table_add(jg_cli_table_t *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = jg_xrealloc(t->cells, t->cap * t->ncols * sizeof *t->cells);
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->rows * t->ncols + i] = t->borrowed ? (char *)(cells[i] ? cells[i] : "")
                                                       : jg_xstrdup(cells[i] ? cells[i] : "");
    t->rows++;
}

void jg_cli_table_borrow_cells(jg_cli_table_t *t)
{
    if (t->rows == 0)
        t->borrowed = true;
}

size_t jg_cli_table_rows(const jg_cli_table_t *t)
{
    return t->rows;
}

/* Display width of one line of text: bytes, minus UTF-8 continuation bytes. */
static size_t text_width(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            w++;
    return w;
}

/* Widest line of a possibly multi-line cell; counts its lines in *nlines. */
static size_t cell_width(const char *s, size_t *nlines)
{
    size_t w = 0, lines = 1;
    for (;;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        size_t lw = text_width(s, n);
        if (lw > w)
            w = lw;
        if (!nl)
            break;
        lines++;
        s = nl + 1;
    }
    if (nlines)
        *nlines = lines;
    return w;
}

size_t jg_cli_table_width(const jg_cli_table_t *t, size_t col)
{
    size_t w = cell_width(t->headers[col], NULL);
    for (size_t r = 0; r < t->rows; r++) {
        size_t cw = cell_width(t->cells[r * t->ncols + col], NULL);
        if (cw > w)
            w = cw;
    }
    return w;
}

/* Line `k` of a multi-line cell (pointer and length); empty past the end. */
static const char *cell_line(const char *s, size_t k, size_t *len)
{
    for (size_t i = 0; i < k; i++) {
        const char *nl = strchr(s, '\n');
        if (!nl) {
            *len = 0;
            return "";
        }
        s = nl + 1;
    }
    const char *nl = strchr(s, '\n');
    *len = nl ? (size_t)(nl - s) : strlen(s);
    return s;
}

/* Rows are laid out in one reused buffer and written whole: a listing of
 * 100,000 rows is 100,000 writes into stdio, not a formatted print per cell. */
static void print_row(const jg_cli_table_t *t, char *const *cells, const size_t *widths,
                      jg_cli_buf_t *line, FILE *out)
{
    size_t lines = 1;
    for (size_t c = 0; c < t->ncols; c++) {
        size_t n;
        cell_width(cells[c], &n);
        if (n > lines)
            lines = n;
    }
    for (size_t k = 0; k < lines; k++) {
        line->len = 0;
        for (size_t c = 0; c < t->ncols; c++) {
            size_t len;
            const char *text = cell_line(cells[c], k, &len);
            size_t pad = widths[c] - text_width(text, len);
            size_t need = line->len + 2 + widths[c] + len + 2;
            if (need > line->cap) {
                size_t cap = line->cap ? line->cap : 256;
                while (cap < need)
                    cap *= 2;
                line->s = jg_xrealloc(line->s, cap);
                line->cap = cap;
            }
            if (c > 0) {
                memcpy(line->s + line->len, "  ", 2);
                line->len += 2;
            }
            if (t->right[c]) {
                memset(line->s + line->len, ' ', pad);
                line->len += pad;
            }
            memcpy(line->s + line->len, text, len);
            line->len += len;
            if (!t->right[c] && c + 1 < t->ncols) {
                memset(line->s + line->len, ' ', pad);
                line->len += pad;
            }
        }
        while (line->len > 0 && line->s[line->len - 1] == ' ')
            line->len--;
        line->s[line->len++] = '\n';
        fwrite(line->s, 1, line->len, out);
    }
}

void jg_cli_table_print(const jg_cli_table_t *t, FILE *out)
{
    size_t *widths = jg_xcalloc(t->ncols, sizeof *widths);
    for (size_t c = 0; c < t->ncols; c++)
        widths[c] = jg_cli_table_width(t, c);
    jg_cli_buf_t line = {0};
    print_row(t, t->headers, widths, &line, out);
    for (size_t r = 0; r < t->rows; r++)
        print_row(t, t->cells + r * t->ncols, widths, &line, out);
    jg_cli_buf_free(&line);
    free(widths);
}

/* ---- strings ---- */

void jg_cli_buf_printf(jg_cli_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        b->s = jg_xrealloc(b->s, cap);
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jg_cli_buf_free(jg_cli_buf_t *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

const char *jg_cli_buf_str(const jg_cli_buf_t *b)
{
    return b->s ? b->s : "";
}

void jg_cli_truncate(char *s, size_t width)
{
    size_t n = strlen(s);
    if (text_width(s, n) <= width)
        return;
    size_t keep = width > 3 ? width - 3 : 0;
    size_t cols = 0, i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && ((unsigned char)s[j] & 0xC0) == 0x80)
            j++;
        if (cols + 1 > keep)
            break;
        cols++;
        i = j;
    }
    if (width >= 3) {
        memcpy(s + i, "...", 3);
        s[i + 3] = '\0';
    } else {
        s[i] = '\0';
    }
}

/* ---- times ---- */

double jg_cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *jg_cli_fmt_duration(double seconds, char *buf, size_t n)
{
    if (!(seconds >= 0))        /* also catches NaN */
        seconds = 0;
    long long s = (long long)seconds;
    if (s < 60)
        snprintf(buf, n, "%llds", s);
    else if (s < 3600)
        snprintf(buf, n, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, n, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, n, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    return buf;
}

char *jg_cli_fmt_elapsed(double seconds, char *buf, size_t n)
{
    if (!(seconds >= 0))
        seconds = 0;
    if (seconds < 59.95) {
        snprintf(buf, n, "%.1fs", seconds);
        return buf;
    }
    return jg_cli_fmt_duration(seconds, buf, n);
}

char *jg_cli_fmt_span(double started, double ended, char *buf, size_t n)
{
    if (started <= 0) {
        snprintf(buf, n, "-");
        return buf;
    }
    double end = ended > 0 ? ended : jg_cli_now();
    return jg_cli_fmt_duration(end - started, buf, n);
}

static bool to_local(double ts, struct tm *tm)
{
    if (!(ts > 0))
        return false;
    time_t t = (time_t)ts;
    return localtime_r(&t, tm) != NULL;
}

static bool is_today(const struct tm *tm)
{
    /* Today is looked up once: a listing formats 100,000 times. */
    static struct tm now;
    static bool known;
    if (!known) {
        time_t t = time(NULL);
        known = localtime_r(&t, &now) != NULL;
    }
    return now.tm_year == tm->tm_year && now.tm_yday == tm->tm_yday;
}

char *jg_cli_fmt_when(double ts, char *buf, size_t n)
{
    struct tm tm;
    if (!to_local(ts, &tm))
        snprintf(buf, n, "-");
    else
        strftime(buf, n, is_today(&tm) ? "%H:%M:%S" : "%b %d %H:%M", &tm);
    return buf;
}

char *jg_cli_fmt_datetime(double ts, char *buf, size_t n)
{
    struct tm tm;
    if (!to_local(ts, &tm))
        snprintf(buf, n, "-");
    else
        strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

char *jg_cli_fmt_clock(double ts, char *buf, size_t n)
{
    struct tm tm;
    if (!to_local(ts, &tm)) {
        snprintf(buf, n, "-");
    } else if (is_today(&tm)) {
        char hms[16];
        strftime(hms, sizeof hms, "%H:%M:%S", &tm);
        int ms = (int)((ts - (double)(long long)ts) * 1000.0);
        snprintf(buf, n, "%s.%03d", hms, ms > 999 ? 999 : ms);
    } else {
        strftime(buf, n, "%b %d %H:%M:%S", &tm);
    }
    return buf;
}

char *jg_cli_fmt_exit(long long code, char *buf, size_t n)
{
    if (code < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%lld", code);
    return buf;
}

/* ---- JSON ---- */

void jg_cli_print_json(const json_t *v)
{
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
}

/* jansson's dump_string without JSON_ENSURE_ASCII: UTF-8 as it is. */
static void pretty_string(jg_jsonw_t *out, const char *s, size_t n)
{
    jg_jsonw_raw(out, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
            run++;
        jg_jsonw_raw(out, s + i, run - i);
        if (run == n)
            break;
        unsigned char c = (unsigned char)s[run];
        char esc[8] = {'\\', (char)c};
        size_t elen = 2;
        switch (c) {
        case '"': case '\\': break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default: elen = (size_t)snprintf(esc, sizeof esc, "\\u%04X", c); break;
        }
        jg_jsonw_raw(out, esc, elen);
        i = run + 1;
    }
    jg_jsonw_raw(out, "\"", 1);
}

static void pretty_newline(jg_jsonw_t *out, int depth)
{
    static const char spaces[] = "                                ";
    jg_jsonw_raw(out, "\n", 1);
    for (size_t n = 2 * (size_t)depth; n > 0;) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;
        jg_jsonw_raw(out, spaces, k);
        n -= k;
    }
}

typedef struct {
    const char *key;
    size_t at;              /* the key's token */
} pretty_member_t;

static int member_cmp(const void *a, const void *b)
{
    return strcmp(((const pretty_member_t *)a)->key, ((const pretty_member_t *)b)->key);
}

void jg_cli_json_pretty(jg_jsonw_t *out, const jg_jtoks_t *toks, size_t i, int depth)
{
    const jg_jtok_t *t = &toks->tok[i];
    switch (t->type) {
    case JG_JTOK_STRING:
        pretty_string(out, t->text, t->len);
        return;
    case JG_JTOK_ARRAY: {
        if (t->count == 0) {
            jg_jsonw_raw(out, "[]", 2);
            return;
        }
        jg_jsonw_raw(out, "[", 1);
        size_t e = i + 1;
        for (size_t k = 0; k < t->count; k++) {
            if (k)
                jg_jsonw_raw(out, ",", 1);
            pretty_newline(out, depth + 1);
            jg_cli_json_pretty(out, toks, e, depth + 1);
            e = toks->tok[e].next;
        }
        pretty_newline(out, depth);
        jg_jsonw_raw(out, "]", 1);
        return;
    }
    case JG_JTOK_OBJECT: {
        if (t->count == 0) {
            jg_jsonw_raw(out, "{}", 2);
            return;
        }
        pretty_member_t few[32], *m = t->count <= 32 ? few : jg_xcalloc(t->count, sizeof *m);
        size_t e = i + 1;
        for (size_t k = 0; k < t->count; k++) {
            m[k] = (pretty_member_t){toks->tok[e].text, e};
            e = toks->tok[e + 1].next;
        }
        qsort(m, t->count, sizeof *m, member_cmp);      /* JSON_SORT_KEYS */
        jg_jsonw_raw(out, "{", 1);
        for (size_t k = 0; k < t->count; k++) {
            if (k)
                jg_jsonw_raw(out, ",", 1);
            pretty_newline(out, depth + 1);
            pretty_string(out, toks->tok[m[k].at].text, toks->tok[m[k].at].len);
            jg_jsonw_raw(out, ": ", 2);
            jg_cli_json_pretty(out, toks, m[k].at + 1, depth + 1);
        }
        if (m != few)
            free(m);
        pretty_newline(out, depth);
        jg_jsonw_raw(out, "}", 1);
        return;
    }
    default:
        jg_jsonw_raw(out, t->text, t->len);
        return;
    }
}

const char *jg_cli_jstr(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

long long jg_cli_jint(const json_t *obj, const char *key, long long def)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v))
        return (long long)json_integer_value(v);
    if (json_is_real(v))
        return (long long)json_real_value(v);
    return def;
}

double jg_cli_jnum(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : 0.0;
}

bool jg_cli_jbool(const json_t *obj, const char *key)
{
    return json_is_true(json_object_get(obj, key));
}

/* ---- terminal ---- */

bool jg_cli_stdout_is_tty(void)
{
    return isatty(STDOUT_FILENO) == 1;
}

/* The terminal's columns (or rows), else the environment variable env, else def. */
static int term_size(bool columns, const char *env, int def)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        int n = columns ? ws.ws_col : ws.ws_row;
        if (n > 0)
            return n;
    }
    const char *v = getenv(env);
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : def;
}

int jg_cli_term_width(void)
{
    return term_size(true, "COLUMNS", 80);
}

int jg_cli_term_height(void)
{
    return term_size(false, "LINES", 24);
}

bool jg_cli_state_wants_reason(const char *state)
{
    jg_state_t s;
    if (jg_state_parse(state, &s) < 0)
        return true;
    return s == JG_PENDING || s == JG_RECOVERING || s == JG_CANCELLING || s == JG_CANCELLED ||
           jg_state_is_failure(s);
}
