/* cmd_logs.c - `jgsched logs ID [JOB] [--rank N] [-f]`: the output of a
 * group's nodes, each line prefixed "(job-rank) " so interleaved nodes stay
 * readable and greppable.
 *
 * The daemon is polled with the offset reached in each node's log; it returns
 * whole lines, except the last piece of a node that ended.  A piece without
 * its newline is held until the rest arrives; it is printed as a line of its
 * own when the node's log ends (a short chunk not ending in '\n') or when
 * nothing more will come.  Without -f we stop once nothing new arrives; with
 * -f we poll every 200 ms until the daemon says the group is done.
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
    "Prints the output of a group's nodes, each line prefixed (job-rank).\n"
    "\n"
    "  JOB             only this job's nodes\n"
    "      --rank N    only the node of rank N\n"
    "  -f, --follow    keep printing until the group has ended\n";

typedef struct {
    char *node;
    char *prefix;           /* "(job-rank) " */
    jg_cli_buf_t partial;   /* output after the last newline */
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

/* Prints the complete lines of data; keeps the rest unless the node ended. */
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
    if (len > 0 && len < LOGS_MAX && data[len - 1] != '\n')
        flush_partial(no);      /* a short piece without newline: the node's last words */
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
            json_t *data = json_object_get(chunk, "data");
            const char *node = jg_cli_jstr(chunk, "node");
            if (!*node)
                continue;
            json_object_set_new(offsets, node,
                                json_integer((json_int_t)jg_cli_jint(chunk, "offset", 0)));
            size_t len = json_string_length(data);
            if (len == 0)
                continue;
            got = true;
            emit(node_out(&outs, chunk), json_string_value(data), len);
        }
        bool done = jg_cli_jbool(reply, "done");
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
