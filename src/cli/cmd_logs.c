/* cmd_logs.c - `jgsched logs ID [JOB] [--rank N] [-f]`: the output of a
 * group's nodes, each line prefixed "(job-rank) " so interleaved nodes stay
 * readable and greppable.
 *
 * The daemon is polled with the offset reached in each node's log; it returns
 * whole lines, except the last piece of an attempt or of a node that ended.  A
 * piece without its newline is held until the rest arrives; it is printed as a
 * line of its own when its attempt or the node's log ends (the daemon says
 * so) or when nothing more will come.  Each chunk says which attempt its
 * output belongs to: a new attempt is announced "== attempt N (why)", and the
 * end of a node's log "== exit CODE".  Without -f we stop once nothing new
 * arrives; with -f we poll every 200 ms until the daemon says the group is
 * done.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGS_MAX 65536          /* bytes per node per request */
#define FOLLOW_POLL_MS 200

static const char usage[] =
    "usage: jgsched logs ID [JOB] [--rank N] [-f|--follow]\n"
    "\n"
    "Prints the output of a group's nodes, each line prefixed (job-rank).  A restart\n"
    "shows as '== attempt N (why)', the end of a node as '== exit CODE'.\n"
    "\n"
    "  JOB             only this job's nodes\n"
    "      --rank N    only the node of rank N\n"
    "  -f, --follow    keep printing until the group has ended\n";

typedef struct {
    char *node;
    char *prefix;           /* "(job-rank) " */
    jg_cli_buf_t partial;   /* output after the last newline */
    long long attempt;      /* the attempt whose output is being printed */
    bool ended_shown;       /* "== exit" printed for this attempt */
} node_out_t;

typedef struct {
    node_out_t *v;
    size_t n;
} outs_t;

static node_out_t *node_out(outs_t *o, const json_t *chunk)
{
    const char *node = jg_cli_jstr(chunk, "node");
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i].node, node) == 0)
            return &o->v[i];
    o->v = jg_xrealloc(o->v, (o->n + 1) * sizeof *o->v);
    node_out_t *no = &o->v[o->n++];
    memset(no, 0, sizeof *no);
    no->node = jg_xstrdup(node);
    no->prefix = jg_xasprintf("(%s-%lld) ", jg_cli_jstr(chunk, "job"),
                              jg_cli_jint(chunk, "rank", 0));
    no->attempt = 1;
    return no;
}

static void flush_partial(node_out_t *no)
{
    if (no->partial.len) {
        printf("%s%s\n", no->prefix, no->partial.s);
        no->partial.len = 0;
        no->partial.s[0] = '\0';
    }
}

/* Prints the complete lines of data; keeps the rest for the next chunk. */
static void emit(node_out_t *no, const char *data, size_t len)
{
    const char *end = data + len;
    const char *p = data;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            jg_cli_buf_printf(&no->partial, "%.*s", (int)(end - p), p);
            break;
        }
        fputs(no->prefix, stdout);
        if (no->partial.len) {
            fwrite(no->partial.s, 1, no->partial.len, stdout);
            no->partial.len = 0;
            no->partial.s[0] = '\0';
        }
        fwrite(p, 1, (size_t)(nl - p) + 1, stdout);
        p = nl + 1;
    }
}

/* One chunk of a node: a new attempt's banner first, then its output, then
 * the node's exit once its log ended.  Returns whether it printed anything. */
static bool print_chunk(node_out_t *no, const json_t *chunk)
{
    bool printed = false;
    long long attempt = jg_cli_jint(chunk, "attempt", no->attempt);
    if (attempt > no->attempt) {
        flush_partial(no);      /* the last words of the attempt before */
        const char *why = jg_cli_jstr(chunk, "attempt_reason");
        printf("%s== attempt %lld%s%s%s\n", no->prefix, attempt, *why ? " (" : "", why,
               *why ? ")" : "");
        no->attempt = attempt;
        no->ended_shown = false;
        printed = true;
    }
    json_t *data = json_object_get(chunk, "data");
    size_t len = json_string_length(data);
    if (len > 0) {
        emit(no, json_string_value(data), len);
        printed = true;
    }
    if (jg_cli_jbool(chunk, "eof") && !no->ended_shown) {
        flush_partial(no);
        long long code = jg_cli_jint(chunk, "exit_code", -1);
        if (code >= 0)
            printf("%s== exit %lld\n", no->prefix, code);
        else
            printf("%s== %s\n", no->prefix, jg_cli_jstr(chunk, "node_state"));
        no->ended_shown = true;
        printed = true;
    }
    return printed;
}

static void outs_free(outs_t *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->v[i].node);
        free(o->v[i].prefix);
        jg_cli_buf_free(&o->v[i].partial);
    }
    free(o->v);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int jg_cli_cmd_logs(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"rank", required_argument, NULL, 'r'},
        {"follow", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool follow = false;
    long long rank = -1;
    int opt;
    while ((opt = jg_cli_getopt(argc, argv, "fh", longopts)) != -1) {
        switch (opt) {
        case 'f': follow = true; break;
        case 'r': {
            char *end;
            errno = 0;
            rank = strtoll(optarg, &end, 10);
            if (errno || *end || !*optarg || rank < 0)
                return jg_cli_usage_error(argv[0], "--rank takes a node rank, not '%s'", optarg);
            break;
        }
        default:
            return jg_cli_help_or_usage(opt, usage);
        }
    }
    int rc = jg_cli_operands(argc, argv, 1, 2, "a group ID");
    if (rc != JG_EXIT_OK)
        return rc;
    long long id;
    if (!jg_cli_parse_id(argv[optind], &id))
        return jg_cli_usage_error(argv[0], "'%s' is not a group ID", argv[optind]);
    const char *job = optind + 1 < argc ? argv[optind + 1] : NULL;

    jg_cli_client_t c = {.fd = -1};
    json_t *offsets = json_object();
    outs_t outs = {0};
    bool any_chunk = false;     /* some node has a log */
    for (;;) {
        json_t *req = json_pack("{s:s, s:I, s:o, s:o, s:O, s:i}", "op", "logs", "id",
                                (json_int_t)id, "job", job ? json_string(job) : json_null(),
                                "rank", rank >= 0 ? json_integer(rank) : json_null(),
                                "offsets", offsets, "max", LOGS_MAX);
        json_t *reply = NULL;
        rc = jg_cli_request(&c, req, &reply);
        if (rc != JG_EXIT_OK)
            break;
        bool got = false;
        size_t i;
        json_t *chunk;
        json_array_foreach(json_object_get(reply, "chunks"), i, chunk) {
            const char *node = jg_cli_jstr(chunk, "node");
            if (!*node)
                continue;
            long long offset = jg_cli_jint(chunk, "offset", 0);
            json_t *before = json_object_get(offsets, node);
            if (!before || json_integer_value(before) != offset)
                got = true;     /* progress, even when nothing printable came */
            json_object_set_new(offsets, node, json_integer((json_int_t)offset));
            if (print_chunk(node_out(&outs, chunk), chunk))
                got = true;
            any_chunk = true;
        }
        bool done = jg_cli_jbool(reply, "done");
        if (!any_chunk && (done || !follow)) {
            /* Nothing to show: say why rather than print nothing. */
            const char *state = jg_cli_jstr(reply, "state");
            const char *why = jg_cli_jstr(reply, "reason");
            if (job)
                jg_cli_errorf("job %s of group %lld has no output%s: it %s (group %s%s%s)", job,
                              id, done ? "" : " yet", done ? "never launched" : "has not launched",
                              state, *why ? ": " : "", why);
            else
                jg_cli_errorf("group %lld has no output%s: it %s (%s%s%s)", id,
                              done ? "" : " yet", done ? "never launched" : "has not launched",
                              state, *why ? ": " : "", why);
            rc = JG_EXIT_FAIL;
            json_decref(reply);
            break;
        }
        json_decref(reply);
        fflush(stdout);
        if (done || (!got && !follow))
            break;
        if (!got)
            sleep_ms(FOLLOW_POLL_MS);
    }
    for (size_t i = 0; i < outs.n; i++)
        flush_partial(&outs.v[i]);
    outs_free(&outs);
    json_decref(offsets);
    jg_cli_close(&c);
    return rc;
}
