/* cmd_queue.c - `jgsched queue`: every group with the state of each of its
 * jobs, like squeue.
 *
 * The daemon answers in pages (docs/protocol.md, queue).  --json prints each
 * page as it arrives, as one JSON array in all; the table keeps only its
 * cells (never the pages' JSON), since its column widths need every row, so
 * 100,000 groups list in a few tens of megabytes.
 *
 * The JOBS column lists `name:STATE` (`name:STATE(xN)` for an N-node job) and
 * wraps onto continuation lines rather than pushing the row off the screen;
 * REASON, the last column, appears when some group is pending or failed and is
 * cut to the terminal's width on a terminal only (scripts get it whole, or use
 * --json for the daemon's own data).
 */
#include "cli.h"

#include <ctype.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jgsched/state.h"

static const char usage[] =
    "usage: jgsched queue [-a|--all] [-u USER | --me] [-n NAME] [-s STATES] [--json]\n"
    "\n"
    "Lists job groups: ID NAME USER STATE JOBS SUBMITTED DURATION RESTARTS [REASON].\n"
    "RESTARTS counts the restarts of every job of the group, recoveries included.\n"
    "Groups that ended more than an hour ago are left out (a last line counts them)\n"
    "unless --all or --state.\n"
    "\n"
    "  -a, --all           include groups that ended long ago\n"
    "  -u, --user USER     only USER's groups\n"
    "      --me            only my groups\n"
    "  -n, --name NAME     only groups named NAME; NAME* for names starting with NAME\n"
    "  -s, --state STATES  only groups in these states, comma-separated (pending,running,\n"
    "                      failed, ...), whenever they ended\n"
    "      --json          the daemon's groups array as JSON\n";

enum { COL_ID, COL_NAME, COL_USER, COL_STATE, COL_JOBS, COL_SUBMITTED, COL_DURATION,
       COL_RESTARTS, COL_REASON, NCOLS };

static const char *const headers[NCOLS] = {"ID", "NAME", "USER", "STATE", "JOBS",
                                           "SUBMITTED", "DURATION", "RESTARTS", "REASON"};

#define JOBS_MIN_WIDTH 24
#define REASON_MIN_WIDTH 12
#define PIPE_WIDTH 120          /* line width assumed when stdout is no terminal */

/* One listed group, as the table's cells in one allocation: the NCOLS cells
 * one after the other, each NUL-terminated (100,000 rows are as many
 * allocations, not nine times that).  The JOBS cell holds the group's
 * "name:STATE" tokens (`name:STATE(xN)` for an N-node job) separated by
 * single spaces, wrapped only when the table is built. */
typedef struct {
    char *cells;
} queue_row_t;

typedef struct {
    queue_row_t *rows;
    size_t n, cap;
    bool with_reason;       /* some group shows a reason */
} queue_rows_t;

static void rows_free(queue_rows_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->rows[i].cells);
    free(q->rows);
    *q = (queue_rows_t){0};
}

static void row_cells(const queue_row_t *r, const char *cells[NCOLS])
{
    const char *p = r->cells;
    for (size_t c = 0; c < NCOLS; c++) {
        cells[c] = p;
        p += strlen(p) + 1;
    }
}

/* A page's reply, tokenized in place (jg_json_tokenize): groups are read
 * from its tokens, never built as JSON values. */
typedef struct {
    const jg_jtoks_t *toks;
    size_t at;              /* the group object's token */
} page_group_t;

/* The fields a row shows, found in one pass over the group's members (a
 * lookup per field would compare keys ten times as often); 0: missing. */
enum { F_ID, F_NAME, F_USER, F_STATE, F_REASON, F_SUBMITTED, F_STARTED, F_ENDED, F_JOBS, NFIELDS };
static const char *const field_keys[NFIELDS] = {"id", "name", "user", "state", "reason",
                                                "submitted", "started", "ended", "jobs"};

static void find_fields(const jg_jtoks_t *t, size_t obj, const char *const *keys, size_t nkeys,
                        size_t *at)
{
    memset(at, 0, nkeys * sizeof *at);
    if (t->tok[obj].type != JG_JTOK_OBJECT)
        return;
    size_t i = obj + 1;
    for (size_t m = 0; m < t->tok[obj].count; m++, i = t->tok[i + 1].next)
        for (size_t k = 0; k < nkeys; k++)
            if (!at[k] && strcmp(t->tok[i].text, keys[k]) == 0) {
                at[k] = i + 1;
                break;
            }
}

enum { J_NAME, J_STATE, J_NUM_NODES, J_RESTARTS, J_RECOVERIES, J_FREE_RESTARTS, NJOBFIELDS };
static const char *const job_keys[NJOBFIELDS] = {"name", "state", "num_nodes", "restarts",
                                                 "recoveries", "free_restarts"};

/* The JOBS cell (`name:STATE`, `name:STATE(xN)` for an N-node job, separated
 * by spaces) into out; returns the restarts of every kind of every job. */
static long long job_cells(const jg_jtoks_t *t, size_t jobs, jg_cli_buf_t *out)
{
    long long restarts = 0;
    out->len = 0;
    if (out->s)
        out->s[0] = '\0';
    if (!jobs || t->tok[jobs].type != JG_JTOK_ARRAY)
        return 0;
    size_t job = jobs + 1;
    for (size_t k = 0; k < t->tok[jobs].count; k++, job = t->tok[job].next) {
        size_t f[NJOBFIELDS];
        find_fields(t, job, job_keys, NJOBFIELDS, f);
        long long n = jg_json_int(t, f[J_NUM_NODES], 1);
        const char *name = jg_json_str(t, f[J_NAME]), *state = jg_json_str(t, f[J_STATE]);
        if (n > 1)
            jg_cli_buf_printf(out, "%s%s:%s(x%lld)", k ? " " : "", name, state, n);
        else
            jg_cli_buf_printf(out, "%s%s:%s", k ? " " : "", name, state);
        restarts += jg_json_int(t, f[J_RESTARTS], 0) + jg_json_int(t, f[J_RECOVERIES], 0) +
                    jg_json_int(t, f[J_FREE_RESTARTS], 0);
    }
    return restarts;
}

/* The tokens again, a new line started before a token that would pass
 * `width` (0: never). */
static void wrap_jobs(const char *tokens, size_t width, jg_cli_buf_t *out)
{
    size_t col = 0;
    const char *p = tokens;
    while (*p) {
        size_t len = strcspn(p, " ");
        if (col > 0 && width > 0 && col + 1 + len > width) {
            jg_cli_buf_printf(out, "\n");
            col = 0;
        } else if (col > 0) {
            jg_cli_buf_printf(out, " ");
            col++;
        }
        jg_cli_buf_printf(out, "%.*s", (int)len, p);
        col += len;
        p += len;
        p += strspn(p, " ");
    }
}

static void rows_add(queue_rows_t *q, const page_group_t *g, jg_cli_buf_t *jobs)
{
    const jg_jtoks_t *t = g->toks;
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->rows = jg_xrealloc(q->rows, q->cap * sizeof *q->rows);
    }
    size_t f[NFIELDS];
    find_fields(t, g->at, field_keys, NFIELDS, f);
    char submitted[JG_CLI_FMT_SIZE], duration[JG_CLI_FMT_SIZE];
    jg_cli_fmt_when(jg_json_num(t, f[F_SUBMITTED]), submitted, sizeof submitted);
    jg_cli_fmt_span(jg_json_num(t, f[F_STARTED]), jg_json_num(t, f[F_ENDED]), duration,
                    sizeof duration);
    char id[32], restarts[32];
    snprintf(id, sizeof id, "%lld", jg_json_int(t, f[F_ID], 0));
    snprintf(restarts, sizeof restarts, "%lld", job_cells(t, f[F_JOBS], jobs));
    const char *state = jg_json_str(t, f[F_STATE]);
    const char *cells[NCOLS] = {id, jg_json_str(t, f[F_NAME]), jg_json_str(t, f[F_USER]), state,
                                jg_cli_buf_str(jobs), submitted, duration, restarts,
                                jg_cli_state_wants_reason(state) ? jg_json_str(t, f[F_REASON])
                                                                 : ""};
    size_t len[NCOLS], total = 0;
    for (size_t c = 0; c < NCOLS; c++)
        total += (len[c] = strlen(cells[c])) + 1;
    char *p = jg_xmalloc(total);
    q->rows[q->n++].cells = p;
    for (size_t c = 0; c < NCOLS; c++) {
        memcpy(p, cells[c], len[c] + 1);
        p += len[c] + 1;
    }
    if (*cells[COL_REASON])
        q->with_reason = true;
}

/* Fills a table; jobs_width 0 keeps JOBS on one line, reason_width 0 keeps
 * reasons whole.  The table borrows the rows' cells; the JOBS and REASON cells
 * reshaped for it are kept in *reshaped (free with reshaped_free). */
typedef struct {
    char **cells;
    size_t n;
} reshaped_t;

static void reshaped_free(reshaped_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->cells[i]);
    free(r->cells);
    *r = (reshaped_t){0};
}

static const char *reshaped_keep(reshaped_t *r, char *cell)
{
    if ((r->n & (r->n - 1)) == 0)       /* 0, 1, 2, 4, ...: doubled at powers of two */
        r->cells = jg_xrealloc(r->cells, (r->n ? 2 * r->n : 1) * sizeof *r->cells);
    return r->cells[r->n++] = cell;
}

static jg_cli_table_t *build(const queue_rows_t *q, size_t jobs_width, size_t reason_width,
                             reshaped_t *reshaped)
{
    jg_cli_table_t *t = jg_cli_table_new(q->with_reason ? NCOLS : NCOLS - 1, headers);
    jg_cli_table_borrow_cells(t);
    jg_cli_table_align_right(t, COL_ID);
    jg_cli_table_align_right(t, COL_RESTARTS);
    for (size_t i = 0; i < q->n; i++) {
        const char *cells[NCOLS];
        row_cells(&q->rows[i], cells);
        if (jobs_width > 0) {
            jg_cli_buf_t jobs = {0};
            wrap_jobs(cells[COL_JOBS], jobs_width, &jobs);
            cells[COL_JOBS] = reshaped_keep(reshaped, jg_xstrdup(jg_cli_buf_str(&jobs)));
            jg_cli_buf_free(&jobs);
        }
        if (reason_width > 0 && *cells[COL_REASON]) {
            char *reason = jg_xstrdup(cells[COL_REASON]);
            jg_cli_truncate(reason, reason_width);
            cells[COL_REASON] = reshaped_keep(reshaped, reason);
        }
        jg_cli_table_add(t, cells);
    }
    return t;
}

static void print_table(const queue_rows_t *q)
{
    bool with_reason = q->with_reason;
    reshaped_t reshaped = {0};

    /* Measure once unwrapped, then fit JOBS (and on a terminal REASON) into
     * what the other columns leave of the line. */
    jg_cli_table_t *t = build(q, 0, 0, &reshaped);
    bool tty = jg_cli_stdout_is_tty();
    const char *columns = getenv("COLUMNS");
    size_t width = tty || (columns && atoi(columns) > 0) ? (size_t)jg_cli_term_width()
                                                         : PIPE_WIDTH;
    size_t fixed = 0;
    for (size_t c = 0; c < NCOLS; c++)
        if (c != COL_JOBS && c != COL_REASON)
            fixed += jg_cli_table_width(t, c) + 2;
    size_t jobs_natural = jg_cli_table_width(t, COL_JOBS);
    size_t reason_natural = with_reason ? jg_cli_table_width(t, COL_REASON) + 2 : 0;
    size_t avail = width > fixed ? width - fixed : 0;
    if (jobs_natural + reason_natural > avail) {
        /* REASON keeps up to half of what is left, JOBS wraps in the rest */
        size_t reason_keep = reason_natural < avail / 2 ? reason_natural : avail / 2;
        size_t jobs_width = avail > reason_keep + JOBS_MIN_WIDTH ? avail - reason_keep
                                                                 : JOBS_MIN_WIDTH;
        if (jobs_width > jobs_natural)
            jobs_width = jobs_natural;
        jg_cli_table_free(t);
        t = build(q, jobs_width, 0, &reshaped);
        if (tty && with_reason) {
            size_t used = jg_cli_table_width(t, COL_JOBS);
            size_t left = avail > used + 2 ? avail - used - 2 : 0;
            jg_cli_table_free(t);
            reshaped_free(&reshaped);
            t = build(q, jobs_width, left > REASON_MIN_WIDTH ? left : REASON_MIN_WIDTH,
                      &reshaped);
        }
    }
    jg_cli_table_print(t, stdout);
    jg_cli_table_free(t);
    reshaped_free(&reshaped);
}

/* --json, printed as the pages come: the same text jg_cli_print_json prints
 * for the whole array (each element indented one level more), laid out in
 * one buffer per page. */
typedef struct {
    size_t printed;
    jg_jsonw_t out;
} json_stream_t;

static void json_stream_add(json_stream_t *js, const page_group_t *g)
{
    jg_jsonw_lit(&js->out, js->printed++ ? ",\n  " : "[\n  ");
    jg_cli_json_pretty(&js->out, g->toks, g->at, 1);
}

static void json_stream_flush(json_stream_t *js)
{
    if (js->out.len)    /* nothing yet: out.data may still be NULL */
        fwrite(js->out.data, 1, js->out.len, stdout);
    jg_jsonw_reset(&js->out);
}

static void json_stream_end(json_stream_t *js)
{
    json_stream_flush(js);
    fputs(js->printed ? "\n]\n" : "[]\n", stdout);
}

typedef struct {
    bool all;
    const char *user;
    const char *name;
    json_t *states;         /* array of state names, or NULL */
} queue_query_t;

/* Groups asked per page: the daemon's most.  A page is read in place from
 * its line (no JSON values built), so a bigger one costs no fresh heap, and
 * fewer pages are fewer round trips. */
#define PAGE_GROUPS 1000

static json_t *page_request(const queue_query_t *query, long long after_id)
{
    json_t *req = json_pack("{s:s, s:b, s:o, s:I, s:i}", "op", "queue", "all", query->all,
                            "user", query->user ? json_string(query->user) : json_null(),
                            "after_id", (json_int_t)after_id, "limit", PAGE_GROUPS);
    if (query->name)
        json_object_set_new(req, "name", json_string(query->name));
    if (query->states)
        json_object_set(req, "states", query->states);
    return req;
}

/* Every listed group, page by page (docs/protocol.md, queue): one reply holds
 * a bounded page, so a store of any size lists whole.  Pages come in id
 * order and each starts after the last id of the one before, so a group
 * submitted meanwhile shows at the end and none shows twice.  The next page
 * is asked for as soon as a reply names its cursor, so the daemon builds it
 * while this one is printed.  Each group goes to js (--json, printed at once)
 * or into q (the table); *hidden is the count of ended groups the listing
 * leaves out. */
static int fetch_groups(jg_cli_client_t *c, const queue_query_t *query, json_stream_t *js,
                        queue_rows_t *q, long long *hidden)
{
    long long after_id = 0;
    jg_error_t err;
    jg_jtoks_t toks = {0};
    jg_cli_buf_t jobs = {0};
    char *line = NULL;
    int rc;
    *hidden = 0;
    if (jg_cli_connect(c, true, &err) < 0) {
        jg_cli_errorf("%s", err.text);
        return JG_EXIT_NO_DAEMON;
    }
    if (jg_cli_send(c, page_request(query, 0), &err) < 0)
        goto lost;
    for (;;) {
        free(line);
        int r = jg_cli_recv_line(c, -1, &line, &err);
        if (r < 0)
            goto lost;
        if (r == 0)
            continue;
        if (jg_json_tokenize(line, strlen(line), &toks, &err) < 0 ||
            toks.tok[0].type != JG_JTOK_OBJECT) {
            jg_cli_errorf("bad reply from jgschedd: %s",
                          toks.n && toks.tok[0].type != JG_JTOK_OBJECT ? "not an object"
                                                                       : err.text);
            rc = JG_EXIT_DAEMON_FAILED;
            goto done;
        }
        if (!jg_json_true(&toks, jg_json_get(&toks, 0, "ok"))) {
            const char *e = jg_json_str(&toks, jg_json_get(&toks, 0, "error"));
            jg_cli_errorf("%s", *e ? e : "jgschedd refused the request");
            rc = strcmp(jg_json_str(&toks, jg_json_get(&toks, 0, "code")),
                        JG_PROTO_DAEMON_FAILED) == 0
                     ? JG_EXIT_DAEMON_FAILED
                     : JG_EXIT_FAIL;
            goto done;
        }
        size_t page = jg_json_get(&toks, 0, "groups");
        if (!page || toks.tok[page].type != JG_JTOK_ARRAY) {
            jg_cli_errorf("bad reply from jgschedd: no groups array");
            rc = JG_EXIT_DAEMON_FAILED;
            goto done;
        }
        if (after_id == 0)
            *hidden = jg_json_int(&toks, jg_json_get(&toks, 0, "hidden"), 0);
        long long next = jg_json_int(&toks, jg_json_get(&toks, 0, "next_after_id"), 0);
        bool more = jg_json_true(&toks, jg_json_get(&toks, 0, "more"));
        if (more && next <= after_id) {
            jg_cli_errorf("bad reply from jgschedd: queue page after %lld does not advance",
                          after_id);
            rc = JG_EXIT_DAEMON_FAILED;
            goto done;
        }
        if (more && jg_cli_send(c, page_request(query, next), &err) < 0)
            goto lost;
        page_group_t g = {.toks = &toks, .at = page + 1};
        for (size_t k = 0; k < toks.tok[page].count; k++, g.at = toks.tok[g.at].next) {
            if (js)
                json_stream_add(js, &g);
            else if (toks.tok[g.at].type == JG_JTOK_OBJECT)
                rows_add(q, &g, &jobs);
        }
        if (js)
            json_stream_flush(js);
        if (!more) {
            rc = JG_EXIT_OK;
            goto done;
        }
        after_id = next;
    }
lost:
    jg_cli_errorf("%s", err.text);
    rc = jg_cli_call_failure_code(c);
done:
    free(line);
    jg_jtoks_free(&toks);
    jg_cli_buf_free(&jobs);
    return rc;
}

/* "pending,RUNNING" -> ["PENDING","RUNNING"], or NULL after saying which
 * word is no state. */
static json_t *parse_states(const char *arg)
{
    json_t *list = json_array();
    char *copy = jg_xstrdup(arg), *save = NULL;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        for (char *p = w; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        jg_state_t st;
        if (jg_state_parse(w, &st) < 0) {
            jg_cli_errorf("queue: --state: '%s' is not a state; states are PENDING, STARTING, "
                          "READY, RUNNING, RECOVERING, CANCELLING, SUCCEEDED, FAILED, "
                          "CANCELLED, FAILED_SETUP, FAILED_NO_RESOURCE, FAILED_PRECHECKS", w);
            free(copy);
            json_decref(list);
            return NULL;
        }
        json_array_append_new(list, json_string(jg_state_name(st)));
    }
    free(copy);
    if (json_array_size(list) == 0) {
        jg_cli_errorf("queue: --state: name at least one state");
        json_decref(list);
        return NULL;
    }
    return list;
}

int jg_cli_cmd_queue(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"user", required_argument, NULL, 'u'},
        {"me", no_argument, NULL, 'm'},
        {"name", required_argument, NULL, 'n'},
        {"state", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool json = false;
    char *user = NULL;
    queue_query_t query = {0};
    int opt, rc = JG_EXIT_OK;
    while (rc == JG_EXIT_OK && (opt = jg_cli_getopt(argc, argv, "au:n:s:h", longopts)) != -1) {
        switch (opt) {
        case 'a': query.all = true; break;
        case 'j': json = true; break;
        case 'n': query.name = optarg; break;
        case 's':
            json_decref(query.states);
            if (!(query.states = parse_states(optarg)))
                rc = JG_EXIT_USAGE;
            break;
        case 'u':
            free(user);
            user = jg_xstrdup(optarg);
            break;
        case 'm': {
            struct passwd *pw = getpwuid(getuid());
            if (!pw) {
                jg_cli_errorf("cannot find the name of uid %u", (unsigned)getuid());
                rc = JG_EXIT_FAIL;
                break;
            }
            free(user);
            user = jg_xstrdup(pw->pw_name);
            break;
        }
        default:
            rc = jg_cli_help_or_usage(opt, usage);
            goto done;
        }
    }
    if (rc == JG_EXIT_OK && optind < argc)
        rc = jg_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
    if (rc != JG_EXIT_OK)
        goto done;

    jg_cli_client_t c = {.fd = -1};
    json_stream_t js = {0};
    queue_rows_t q = {0};
    long long hidden = 0;
    query.user = user;
    rc = fetch_groups(&c, &query, json ? &js : NULL, &q, &hidden);
    if (json) {
        /* A listing cut short (a lost daemon) stays an unclosed array: no
         * reader mistakes it for the whole queue. */
        if (rc == JG_EXIT_OK)
            json_stream_end(&js);
        else if (js.printed)
            fputc('\n', stdout);
        jg_jsonw_free(&js.out);
    } else if (rc == JG_EXIT_OK) {
        print_table(&q);
        if (hidden > 0)
            printf("... and %lld ended group%s (ended over an hour ago; queue -a lists them)\n",
                   hidden, hidden == 1 ? "" : "s");
    }
    rows_free(&q);
    jg_cli_close(&c);
done:
    free(user);
    json_decref(query.states);
    return rc;
}
