/* cmd_infra.c - `jgsched infra`: what each backend can hold, what is in use
 * and by whom, so a user whose group stays PENDING can see why.
 *
 * One `infra` request (docs/protocol.md) returns, per backend, its capacity
 * (and whether it was detected on the host or declared in config.yaml), the
 * largest node, the resources running groups hold, the groups holding them,
 * the groups waiting, and notes (network or cgroup limitations).  The text
 * output is a rendering of that reply; --json prints it as it is (less "ok").
 * "Free" is computed here as capacity minus in use, never below zero.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: jgsched infra [--json]\n"
    "\n"
    "Shows each backend: its capacity (detected on this host or declared in\n"
    "config.yaml), the largest node, what is in use and free, the groups holding\n"
    "resources, the groups waiting for them, and notes: whether nodes are limited\n"
    "(cgroups), which GPUs it hands out, and how nodes reach beyond their group\n"
    "(outbound NAT, or why not).\n"
    "\n"
    "      --json   the daemon's reply as JSON\n";

/* "4", "0.5", "12.25": at most two decimals, no trailing zeros (no "-0"). */
static char *fmt_num(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.2f", v);
    char *end = buf + strlen(buf) - 1;
    while (end > buf && *end == '0')
        *end-- = '\0';
    if (*end == '.')
        *end = '\0';
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, n, "0");
    return buf;
}

static double shape_cpus(const json_t *shape)
{
    return jg_cli_jnum(shape, "cpus");
}

static double shape_mem(const json_t *shape)
{
    return jg_cli_jnum(shape, "memory_gb");
}

static double shape_accel(const json_t *shape, const char *name)
{
    json_t *v = json_object_get(json_object_get(shape, "accelerators"), name);
    return json_is_number(v) ? json_number_value(v) : 0;
}

/* "T4:2 A100:8", or "-" when the shape has none. */
static void fmt_accels(const json_t *shape, jg_cli_buf_t *out)
{
    const char *name;
    json_t *v;
    bool any = false;
    json_object_foreach((json_t *)json_object_get(shape, "accelerators"), name, v) {
        char n[JG_CLI_FMT_SIZE];
        jg_cli_buf_printf(out, "%s%s:%s", any ? " " : "", name,
                          fmt_num(json_is_number(v) ? json_number_value(v) : 0, n, sizeof n));
        any = true;
    }
    if (!any)
        jg_cli_buf_printf(out, "-");
}

/* "64 cpus, 256GB memory[, accelerators T4:2]" */
static void fmt_shape(const json_t *shape, jg_cli_buf_t *out)
{
    char c[JG_CLI_FMT_SIZE], m[JG_CLI_FMT_SIZE];
    jg_cli_buf_printf(out, "%s cpus, %sGB memory", fmt_num(shape_cpus(shape), c, sizeof c),
                      fmt_num(shape_mem(shape), m, sizeof m));
    if (json_object_size(json_object_get(shape, "accelerators")) > 0) {
        jg_cli_buf_printf(out, ", accelerators ");
        fmt_accels(shape, out);
    }
}

static const char *source_text(const char *source, const char *config, char *buf, size_t n)
{
    if (strcmp(source, "host") == 0)
        return "detected on this host";
    if (strcmp(source, "config") == 0) {
        snprintf(buf, n, "declared in %s", config);
        return buf;
    }
    if (strcmp(source, "api") == 0)
        return "from the cluster's Nodes";
    return *source ? source : "unknown source";
}

/* "in use" and "free" lines: every accelerator named by the capacity, then
 * any held that the capacity does not list. */
static void print_usage(const json_t *cap, const json_t *used)
{
    char a[JG_CLI_FMT_SIZE], b[JG_CLI_FMT_SIZE], c[JG_CLI_FMT_SIZE], d[JG_CLI_FMT_SIZE];
    jg_cli_buf_t in_use = {0}, free_line = {0};
    double uc = shape_cpus(used), cc = shape_cpus(cap);
    double um = shape_mem(used), cm = shape_mem(cap);
    jg_cli_buf_printf(&in_use, "cpus %s/%s, memory %s/%sGB", fmt_num(uc, a, sizeof a),
                      fmt_num(cc, b, sizeof b), fmt_num(um, c, sizeof c),
                      fmt_num(cm, d, sizeof d));
    jg_cli_buf_printf(&free_line, "%s cpus, %sGB memory",
                      fmt_num(cc - uc > 0 ? cc - uc : 0, a, sizeof a),
                      fmt_num(cm - um > 0 ? cm - um : 0, b, sizeof b));
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(cap, "accelerators"), name, v) {
        double total = json_is_number(v) ? json_number_value(v) : 0;
        double held = shape_accel(used, name);
        jg_cli_buf_printf(&in_use, ", %s %s/%s", name, fmt_num(held, a, sizeof a),
                          fmt_num(total, b, sizeof b));
        jg_cli_buf_printf(&free_line, ", %s:%s", name,
                          fmt_num(total - held > 0 ? total - held : 0, a, sizeof a));
    }
    json_object_foreach((json_t *)json_object_get(used, "accelerators"), name, v) {
        if (json_object_get(json_object_get(cap, "accelerators"), name))
            continue;
        jg_cli_buf_printf(&in_use, ", %s %s/0", name,
                          fmt_num(json_is_number(v) ? json_number_value(v) : 0, a, sizeof a));
    }
    printf("  in use:        %s\n", jg_cli_buf_str(&in_use));
    printf("  free:          %s\n", jg_cli_buf_str(&free_line));
    jg_cli_buf_free(&in_use);
    jg_cli_buf_free(&free_line);
}

enum { COL_ID, COL_NAME, COL_USER, COL_STATE, COL_NODES, COL_CPUS, COL_MEMORY, COL_ACCELS,
       NCOLS };

static const char *const headers[NCOLS] = {"ID", "NAME", "USER", "STATE", "NODES",
                                           "CPUS", "MEMORY", "ACCELERATORS"};

/* A titled table of groups, indented under its backend; `none` when empty. */
static void print_groups(const char *title, const json_t *groups, const char *none)
{
    if (json_array_size(groups) == 0) {
        printf("  %s\n", none);
        return;
    }
    printf("  %s:\n", title);
    jg_cli_table_t *t = jg_cli_table_new(NCOLS, headers);
    jg_cli_table_align_right(t, COL_ID);
    jg_cli_table_align_right(t, COL_NODES);
    jg_cli_table_align_right(t, COL_CPUS);
    jg_cli_table_align_right(t, COL_MEMORY);
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        const json_t *res = json_object_get(g, "resources");
        char id[32], nodes[32], cpus[JG_CLI_FMT_SIZE], mem[JG_CLI_FMT_SIZE + 2];
        char num[JG_CLI_FMT_SIZE];
        snprintf(id, sizeof id, "%lld", jg_cli_jint(g, "id", 0));
        snprintf(nodes, sizeof nodes, "%lld", jg_cli_jint(g, "nodes", 0));
        fmt_num(shape_cpus(res), cpus, sizeof cpus);
        snprintf(mem, sizeof mem, "%sGB", fmt_num(shape_mem(res), num, sizeof num));
        jg_cli_buf_t accels = {0};
        fmt_accels(res, &accels);
        const char *cells[NCOLS] = {id, jg_cli_jstr(g, "name"), jg_cli_jstr(g, "user"),
                                    jg_cli_jstr(g, "state"), nodes, cpus, mem,
                                    jg_cli_buf_str(&accels)};
        jg_cli_table_add(t, cells);
        jg_cli_buf_free(&accels);
    }
    /* Indent the table by two spaces, like the lines above it. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem_out = open_memstream(&text, &len);
    if (!mem_out) {
        jg_cli_table_print(t, stdout);
    } else {
        jg_cli_table_print(t, mem_out);
        fclose(mem_out);
        for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            printf("  %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
        }
        free(text);
    }
    jg_cli_table_free(t);
}

static void print_backend(const json_t *b, const char *config)
{
    const json_t *cap = json_object_get(b, "capacity");
    const json_t *used = json_object_get(b, "used");
    char src[512];
    printf("backend %s\n", jg_cli_jstr(b, "name"));
    if (!json_is_object(cap)) {
        printf("  capacity:      unknown (the backend does not say)\n");
    } else {
        jg_cli_buf_t line = {0};
        fmt_shape(cap, &line);
        double over = jg_cli_jnum(b, "oversubscribe");
        char over_text[96] = "";
        if (over > 1)
            snprintf(over_text, sizeof over_text, ", cpus oversubscribed %g times", over);
        printf("  capacity:      %s (%s%s)\n", jg_cli_buf_str(&line),
               source_text(jg_cli_jstr(b, "source"), config, src, sizeof src), over_text);
        jg_cli_buf_free(&line);
        const json_t *max = json_object_get(b, "max_node");
        if (json_is_object(max)) {
            jg_cli_buf_t m = {0};
            fmt_shape(max, &m);
            printf("  largest node:  %s\n", jg_cli_buf_str(&m));
            jg_cli_buf_free(&m);
        }
        print_usage(cap, json_is_object(used) ? used : NULL);
    }
    const json_t *reach = json_object_get(b, "reachable");
    const char *cap_note = jg_cli_jstr(b, "capacity_note");
    if (json_is_boolean(reach))
        printf("  reachable:     %s%s%s%s\n", json_is_true(reach) ? "yes" : "no",
               *cap_note ? " (" : "", cap_note, *cap_note ? ")" : "");
    putchar('\n');
    print_groups("groups holding resources", json_object_get(b, "groups"),
                 "no group holds resources");
    print_groups("pending groups", json_object_get(b, "pending"), "no group is pending");
    const json_t *notes = json_object_get(b, "notes");
    if (json_array_size(notes) > 0) {
        printf("  notes:\n");
        size_t i;
        json_t *n;
        json_array_foreach(notes, i, n)
            if (json_is_string(n))
                printf("    - %s\n", json_string_value(n));
    }
}

int jg_cli_cmd_infra(int argc, char **argv)
{
    bool json = false;
    int rc = jg_cli_getopt_simple(argc, argv, usage, &json, 0, 0, NULL);
    if (rc >= 0)
        return rc;

    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL, *backends;
    rc = jg_cli_request_get(&c, json_pack("{s:s}", "op", "infra"), "backends", JSON_ARRAY,
                            &reply, &backends);
    if (rc != JG_EXIT_OK)
        goto done;
    if (json) {
        json_object_del(reply, "ok");
        jg_cli_print_json(reply);
        goto done;
    }
    const char *config = jg_cli_jstr(reply, "config");
    const char *settings = jg_cli_jstr(reply, "settings");
    bool first = true;
    if (!*settings) {       /* else "settings in effect" names the file, once */
        printf("config: %s\n", *config ? config : "(unknown)");
        first = false;
    }
    if (json_array_size(backends) == 0)
        printf("%sno backend is enabled\n", first ? "" : "\n");
    size_t i;
    json_t *b;
    json_array_foreach(backends, i, b) {
        if (!first)
            putchar('\n');
        first = false;
        print_backend(b, config);
    }
    if (*settings)
        printf("\nsettings in effect:\n%s%s", settings,
               settings[strlen(settings) - 1] == '\n' ? "" : "\n");
done:
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}
