/* cmd_queue.c - `jgsched queue`: every group with the state of each of its
 * jobs, like squeue.
 *
 * The JOBS column lists `name:STATE` (`name:STATE(xN)` for an N-node job) and
 * wraps onto continuation lines rather than pushing the row off the screen;
 * REASON, the last column, appears when some group is pending or failed and is
 * cut to the terminal's width on a terminal only (scripts get it whole, or use
 * --json for the daemon's own data).
 */
#include "cli.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: jgsched queue [-a|--all] [-u USER | --me] [--json]\n"
    "\n"
    "Lists job groups: ID NAME USER STATE JOBS SUBMITTED DURATION RESTARTS [REASON].\n"
    "RESTARTS counts the restarts of every job of the group, recoveries included.\n"
    "Groups that ended more than an hour ago are left out unless --all.\n"
    "\n"
    "  -a, --all         include groups that ended long ago\n"
    "  -u, --user USER   only USER's groups\n"
    "      --me          only my groups\n"
    "      --json        the daemon's groups array as JSON\n";

enum { COL_ID, COL_NAME, COL_USER, COL_STATE, COL_JOBS, COL_SUBMITTED, COL_DURATION,
       COL_RESTARTS, COL_REASON, NCOLS };

static const char *const headers[NCOLS] = {"ID", "NAME", "USER", "STATE", "JOBS",
                                           "SUBMITTED", "DURATION", "RESTARTS", "REASON"};

#define JOBS_MIN_WIDTH 24
#define REASON_MIN_WIDTH 12
#define PIPE_WIDTH 120          /* line width assumed when stdout is no terminal */

/* "name:STATE" tokens of a group's jobs, joined by spaces, a new line started
 * before a token that would pass `width` (0: never). */
static void format_jobs(const json_t *group, size_t width, jg_cli_buf_t *out)
{
    size_t col = 0;
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(group, "jobs"), i, job) {
        char token[256];
        long long n = jg_cli_jint(job, "num_nodes", 1);
        if (n > 1)
            snprintf(token, sizeof token, "%s:%s(x%lld)", jg_cli_jstr(job, "name"),
                     jg_cli_jstr(job, "state"), n);
        else
            snprintf(token, sizeof token, "%s:%s", jg_cli_jstr(job, "name"),
                     jg_cli_jstr(job, "state"));
        size_t len = strlen(token);
        if (col > 0 && width > 0 && col + 1 + len > width) {
            jg_cli_buf_printf(out, "\n");
            col = 0;
        } else if (col > 0) {
            jg_cli_buf_printf(out, " ");
            col++;
        }
        jg_cli_buf_printf(out, "%s", token);
        col += len;
    }
}

/* Restarts of every kind of every job of the group. */
static long long group_restarts(const json_t *group)
{
    long long n = 0;
    size_t i;
    json_t *job;
    json_array_foreach(json_object_get(group, "jobs"), i, job)
        n += jg_cli_jint(job, "restarts", 0) + jg_cli_jint(job, "recoveries", 0) +
             jg_cli_jint(job, "free_restarts", 0);
    return n;
}

static const char *group_reason(const json_t *group)
{
    const char *state = jg_cli_jstr(group, "state");
    return jg_cli_state_wants_reason(state) ? jg_cli_jstr(group, "reason") : "";
}

/* Fills a table; jobs_width 0 keeps JOBS on one line, reason_width 0 keeps
 * reasons whole. */
static jg_cli_table_t *build(const json_t *groups, bool with_reason, size_t jobs_width,
                             size_t reason_width)
{
    jg_cli_table_t *t = jg_cli_table_new(with_reason ? NCOLS : NCOLS - 1, headers);
    jg_cli_table_align_right(t, COL_ID);
    jg_cli_table_align_right(t, COL_RESTARTS);
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        char id[32], submitted[JG_CLI_FMT_SIZE], duration[JG_CLI_FMT_SIZE], restarts[32];
        snprintf(id, sizeof id, "%lld", jg_cli_jint(g, "id", 0));
        snprintf(restarts, sizeof restarts, "%lld", group_restarts(g));
        jg_cli_fmt_when(jg_cli_jnum(g, "submitted"), submitted, sizeof submitted);
        jg_cli_fmt_span(jg_cli_jnum(g, "started"), jg_cli_jnum(g, "ended"), duration,
                        sizeof duration);
        jg_cli_buf_t jobs = {0};
        format_jobs(g, jobs_width, &jobs);
        char *reason = jg_xstrdup(group_reason(g));
        if (reason_width > 0)
            jg_cli_truncate(reason, reason_width);
        const char *cells[NCOLS] = {id, jg_cli_jstr(g, "name"), jg_cli_jstr(g, "user"),
                                    jg_cli_jstr(g, "state"), jg_cli_buf_str(&jobs),
                                    submitted, duration, restarts, reason};
        jg_cli_table_add(t, cells);
        jg_cli_buf_free(&jobs);
        free(reason);
    }
    return t;
}

static void print_table(const json_t *groups)
{
    bool with_reason = false;
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
        if (*group_reason(g))
            with_reason = true;

    /* Measure once unwrapped, then fit JOBS (and on a terminal REASON) into
     * what the other columns leave of the line. */
    jg_cli_table_t *t = build(groups, with_reason, 0, 0);
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
        t = build(groups, with_reason, jobs_width, 0);
        if (tty && with_reason) {
            size_t used = jg_cli_table_width(t, COL_JOBS);
            size_t left = avail > used + 2 ? avail - used - 2 : 0;
            jg_cli_table_free(t);
            t = build(groups, with_reason, jobs_width,
                      left > REASON_MIN_WIDTH ? left : REASON_MIN_WIDTH);
        }
    }
    jg_cli_table_print(t, stdout);
    jg_cli_table_free(t);
}

/* Every listed group, page by page (docs/protocol.md, queue): one reply holds
 * a bounded page, so a store of any size lists whole.  Pages come in id
 * order and each starts after the last id of the one before, so a group
 * submitted meanwhile shows at the end and none shows twice. */
static int fetch_groups(jg_cli_client_t *c, bool all, const char *user, json_t **out)
{
    json_t *groups = json_array();
    long long after_id = 0;
    int rc;
    for (;;) {
        json_t *req = json_pack("{s:s, s:b, s:o, s:I}", "op", "queue", "all", all, "user",
                                user ? json_string(user) : json_null(), "after_id",
                                (json_int_t)after_id);
        json_t *reply = NULL, *page;
        rc = jg_cli_request_get(c, req, "groups", JSON_ARRAY, &reply, &page);
        if (rc != JG_EXIT_OK) {
            json_decref(reply);
            break;
        }
        json_array_extend(groups, page);
        long long next = jg_cli_jint(reply, "next_after_id", 0);
        bool more = jg_cli_jbool(reply, "more");
        json_decref(reply);
        if (!more)
            break;
        if (next <= after_id) {
            jg_cli_errorf("bad reply from jgschedd: queue page after %lld does not advance",
                          after_id);
            rc = JG_EXIT_DAEMON_FAILED;
            break;
        }
        after_id = next;
    }
    if (rc != JG_EXIT_OK) {
        json_decref(groups);
        groups = NULL;
    }
    *out = groups;
    return rc;
}

int jg_cli_cmd_queue(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"user", required_argument, NULL, 'u'},
        {"me", no_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool all = false, json = false;
    char *user = NULL;
    int opt;
    while ((opt = jg_cli_getopt(argc, argv, "au:h", longopts)) != -1) {
        switch (opt) {
        case 'a': all = true; break;
        case 'j': json = true; break;
        case 'u':
            free(user);
            user = jg_xstrdup(optarg);
            break;
        case 'm': {
            struct passwd *pw = getpwuid(getuid());
            if (!pw) {
                free(user);
                jg_cli_errorf("cannot find the name of uid %u", (unsigned)getuid());
                return JG_EXIT_FAIL;
            }
            free(user);
            user = jg_xstrdup(pw->pw_name);
            break;
        }
        default:
            free(user);
            return jg_cli_help_or_usage(opt, usage);
        }
    }
    if (optind < argc) {
        free(user);
        return jg_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
    }

    jg_cli_client_t c = {.fd = -1};
    json_t *groups = NULL;
    int rc = fetch_groups(&c, all, user, &groups);
    free(user);
    if (rc == JG_EXIT_OK && json)
        jg_cli_print_json(groups);
    else if (rc == JG_EXIT_OK)
        print_table(groups);
    json_decref(groups);
    jg_cli_close(&c);
    return rc;
}
