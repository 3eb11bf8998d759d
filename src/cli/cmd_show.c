/* cmd_show.c - `jgsched show ID`: one group in full.  The group's fields,
 * then a table of its jobs, of its nodes (with the hostnames other nodes
 * reach them by) and the event history: every transition with its reason,
 * which is where a user learns why a group failed or what the policy decided. */
#include "cli.h"

#include <string.h>

static const char usage[] =
    "usage: jgsched show ID [--json]\n"
    "\n"
    "Shows a group: its fields, jobs, nodes (hostname, address) and events.\n"
    "\n"
    "  --json   the daemon's group object as JSON\n";

static void print_field(const char *label, const char *value)
{
    printf("  %-11s %s\n", label, *value ? value : "-");
}

static void print_header(const json_t *g)
{
    char buf[JG_CLI_FMT_SIZE], text[256];
    printf("Group %lld: %s\n", jg_cli_jint(g, "id", 0), jg_cli_jstr(g, "name"));
    print_field("State:", jg_cli_jstr(g, "state"));
    if (*jg_cli_jstr(g, "reason"))
        print_field("Reason:", jg_cli_jstr(g, "reason"));
    snprintf(text, sizeof text, "%s (uid %lld)", jg_cli_jstr(g, "user"),
             jg_cli_jint(g, "uid", -1));
    print_field("User:", text);
    print_field("Infra:", jg_cli_jstr(g, "infra"));
    snprintf(text, sizeof text, "%s, execution %s", jg_cli_jstr(g, "placement"),
             jg_cli_jstr(g, "execution"));
    print_field("Placement:", text);
    print_field("Policy:", jg_cli_jstr(g, "policy"));

    jg_cli_buf_t primary = {0};
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(g, "primary_tasks"), i, p) {
        const char *task = json_string_value(p);
        jg_cli_buf_printf(&primary, "%s%s", i ? ", " : "", task ? task : "?");
    }
    print_field("Primary:", primary.len ? jg_cli_buf_str(&primary) : "all jobs");
    jg_cli_buf_free(&primary);

    print_field("Submitted:", jg_cli_fmt_datetime(jg_cli_jnum(g, "submitted"), buf, sizeof buf));
    print_field("Started:", jg_cli_fmt_datetime(jg_cli_jnum(g, "started"), buf, sizeof buf));
    print_field("Ended:", jg_cli_fmt_datetime(jg_cli_jnum(g, "ended"), buf, sizeof buf));
    print_field("Duration:", jg_cli_fmt_span(jg_cli_jnum(g, "started"), jg_cli_jnum(g, "ended"),
                                             buf, sizeof buf));
}

/* Every restart of the job, "0", "1" or, when they are of several kinds or
 * not on errors, "3 (1 on errors, 2 recoveries)". */
static void format_restarts(const json_t *j, char *out, size_t len)
{
    long long errors = jg_cli_jint(j, "restarts", 0), recoveries = jg_cli_jint(j, "recoveries", 0),
              free_ = jg_cli_jint(j, "free_restarts", 0);
    long long total = errors + recoveries + free_;
    if (total == errors) {
        snprintf(out, len, "%lld", total);
        return;
    }
    char parts[80] = "";
    size_t used = 0;
    if (errors)
        used += (size_t)snprintf(parts + used, sizeof parts - used, "%lld on errors", errors);
    if (recoveries)
        used += (size_t)snprintf(parts + used, sizeof parts - used, "%s%lld recover%s",
                                 used ? ", " : "", recoveries, recoveries == 1 ? "y" : "ies");
    if (free_)
        snprintf(parts + used, sizeof parts - used, "%s%lld free", used ? ", " : "", free_);
    snprintf(out, len, "%lld (%s)", total, parts);
}

static void print_jobs(const json_t *g)
{
    static const char *const h[] = {"JOB", "STATE", "NODES", "ATTEMPT", "RESTARTS", "EXIT",
                                    "REASON"};
    jg_cli_table_t *t = jg_cli_table_new(7, h);
    for (size_t c = 2; c <= 5; c++)
        jg_cli_table_align_right(t, c);
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(g, "jobs"), i, j) {
        char nodes[32], attempt[32], restarts[96], code[JG_CLI_FMT_SIZE];
        snprintf(nodes, sizeof nodes, "%lld", jg_cli_jint(j, "num_nodes", 1));
        snprintf(attempt, sizeof attempt, "%lld", jg_cli_jint(j, "attempt", 0));
        format_restarts(j, restarts, sizeof restarts);
        jg_cli_fmt_exit(jg_cli_jint(j, "exit_code", -1), code, sizeof code);
        const char *cells[] = {jg_cli_jstr(j, "name"), jg_cli_jstr(j, "state"), nodes,
                               attempt, restarts, code, jg_cli_jstr(j, "reason")};
        jg_cli_table_add(t, cells);
    }
    printf("\nJobs:\n");
    jg_cli_table_print(t, stdout);
    jg_cli_table_free(t);
}

static void print_nodes(const json_t *g)
{
    json_t *nodes = json_object_get(g, "nodes");
    if (json_array_size(nodes) == 0)
        return;
    static const char *const h[] = {"NODE", "STATE", "ATTEMPT", "HOSTNAME", "ADDRESS", "EXIT"};
    jg_cli_table_t *t = jg_cli_table_new(6, h);
    jg_cli_table_align_right(t, 2);
    jg_cli_table_align_right(t, 5);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) {
        char node[160], attempt[32], code[JG_CLI_FMT_SIZE];
        snprintf(node, sizeof node, "%s-%lld", jg_cli_jstr(n, "job"), jg_cli_jint(n, "rank", 0));
        snprintf(attempt, sizeof attempt, "%lld", jg_cli_jint(n, "attempt", 0));
        jg_cli_fmt_exit(jg_cli_jint(n, "exit_code", -1), code, sizeof code);
        const char *cells[] = {node, jg_cli_jstr(n, "state"), attempt,
                               jg_cli_jstr(n, "hostname"), jg_cli_jstr(n, "address"), code};
        jg_cli_table_add(t, cells);
    }
    printf("\nNodes:\n");
    jg_cli_table_print(t, stdout);
    jg_cli_table_free(t);
}

static void print_events(const json_t *g)
{
    json_t *events = json_object_get(g, "events");
    if (json_array_size(events) == 0)
        return;
    static const char *const h[] = {"TIME", "SUBJECT", "WHAT", "REASON"};
    jg_cli_table_t *t = jg_cli_table_new(4, h);
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        char when[JG_CLI_FMT_SIZE];
        jg_cli_fmt_clock(jg_cli_jnum(e, "ts"), when, sizeof when);
        const char *cells[] = {when, jg_cli_jstr(e, "subject"), jg_cli_jstr(e, "what"),
                               jg_cli_jstr(e, "reason")};
        jg_cli_table_add(t, cells);
    }
    printf("\nEvents:\n");
    jg_cli_table_print(t, stdout);
    jg_cli_table_free(t);
}

int jg_cli_cmd_show(int argc, char **argv)
{
    bool json = false;
    int rc = jg_cli_getopt_simple(argc, argv, usage, &json, 1, 1, "a group ID");
    if (rc >= 0)
        return rc;
    long long id;
    if (!jg_cli_parse_id(argv[optind], &id))
        return jg_cli_usage_error(argv[0], "'%s' is not a group ID", argv[optind]);

    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL, *g;
    rc = jg_cli_request_get(&c, json_pack("{s:s, s:I}", "op", "show", "id", (json_int_t)id),
                            "group", JSON_OBJECT, &reply, &g);
    if (rc == JG_EXIT_OK && json) {
        jg_cli_print_json(g);
    } else if (rc == JG_EXIT_OK) {
        print_header(g);
        print_jobs(g);
        print_nodes(g);
        print_events(g);
    }
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}
