/* cmd_submit.c - `jgsched submit FILE`: hands a JobGroup YAML to the daemon,
 * then follows the group until it ends so the exit status says whether it
 * succeeded (0), did not (1), was refused (2), found no daemon (3) or the
 * daemon failed to store it (4).
 *
 * The YAML travels as text with the file's absolute path (the daemon parses
 * and validates it, and resolves a relative workdir against that path).
 * Following uses the `watch` op: the daemon pushes the whole group after every
 * change, so there is no polling.  On a terminal the group is drawn in place
 * (a group line and one line per job, redrawn every second for the elapsed
 * time); otherwise one line is printed per state change, which logs and CI
 * read well.  Ctrl-C stops following, never the group.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jgsched/policy.h"
#include "jgsched/spec.h"
#include "jgsched/state.h"

static const char usage[] =
    "usage: jgsched submit FILE [-n NAME] [--infra INFRA] [--policy P] [-d|--detach]\n"
    "\n"
    "Submits a JobGroup YAML and follows it until it ends.  Exit status: 0 if the\n"
    "group SUCCEEDED, 1 if it did not, 2 if it was refused, 3 if no daemon,\n"
    "4 if the daemon failed to act (e.g. its disk is full).\n"
    "\n"
    "  -n, --name NAME     run the group under another name\n"
    "      --infra INFRA   run every job on INFRA (local, kubernetes[/CONTEXT])\n"
    "      --policy P      govern the group by policy P: an installed policy's name,\n"
    "                      or a .lua file (read here, as you, and sent to jgschedd)\n"
    "  -d, --detach        print the group id and return at once\n"
    "      --wait          follow the group until it ends (the default)\n";

#define REDRAW_MS 1000

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    long long id;
    char *name;
    bool tty;
    char *group_state;      /* last state printed (non-tty) */
    json_t *job_states;     /* job name -> last state printed (non-tty) */
    json_t *group;          /* last group received (tty) */
    int drawn;              /* lines of the frame on screen (tty) */
} follow_t;

/* The whole file, or NULL after printing why.  The size bound and its
 * message are the spec module's (jg_spec_read_bounded with the default
 * limits), so `submit` refuses exactly what `validate` refuses; the daemon
 * checks again with its own configured limits. */
static char *read_file(const char *path, size_t *len)
{
    jg_spec_errors_t errs = {0};
    char *text = jg_spec_read_bounded(path, NULL, len, &errs);
    for (size_t i = 0; i < errs.count; i++)
        fprintf(stderr, "%s\n", errs.messages[i]);
    jg_spec_errors_free(&errs);
    if (text && memchr(text, '\0', *len)) {
        jg_cli_errorf("%s is not a text file", path);
        free(text);
        return NULL;
    }
    return text;
}

static char *absolute_path(const char *path)
{
    char cwd[PATH_MAX];
    if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
        return jg_xstrdup(path);
    return jg_xasprintf("%s/%s", cwd, path);
}

/* The name a policy file goes by in the daemon ("my-site" for
 * ~/p/my-site.lua): its base name without .lua, odd characters made '-'. */
static char *policy_label_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".lua") == 0)
        n -= 4;
    if (n > 63)
        n = 63;
    if (n == 0)
        return jg_xstrdup("policy");
    char *label = jg_xstrndup(base, n);
    for (char *c = label; *c; c++)
        if (!jg_policy_valid_name(c, 1))
            *c = '-';
    return label;
}

static double group_elapsed(const json_t *g)
{
    double started = jg_cli_jnum(g, "started");
    double from = started > 0 ? started : jg_cli_jnum(g, "submitted");
    double ended = jg_cli_jnum(g, "ended");
    if (from <= 0)
        return 0;
    return (ended > 0 ? ended : jg_cli_now()) - from;
}

static bool state_is_terminal(const char *name)
{
    jg_state_t s;
    return jg_state_parse(name, &s) == 0 && jg_state_is_terminal(s);
}

/* ---- not a terminal: one line per change ---- */

static void print_changes(follow_t *f, const json_t *g)
{
    const char *gstate = jg_cli_jstr(g, "state");
    bool terminal = state_is_terminal(gstate);
    bool group_changed = strcmp(gstate, f->group_state) != 0;
    if (group_changed && !terminal) {
        const char *reason = jg_cli_jstr(g, "reason");
        bool why = *reason && jg_cli_state_wants_reason(gstate);
        printf("%lld %s: %s%s%s%s\n", f->id, f->name, gstate, why ? " (" : "",
               why ? reason : "", why ? ")" : "");
    }
    size_t i;
    json_t *j;
    json_array_foreach(json_object_get(g, "jobs"), i, j) {
        const char *name = jg_cli_jstr(j, "name");
        const char *state = jg_cli_jstr(j, "state");
        const char *before = json_string_value(json_object_get(f->job_states, name));
        if (strcmp(state, before ? before : "PENDING") == 0)
            continue;
        json_object_set_new(f->job_states, name, json_string(state));
        const char *reason = jg_cli_jstr(j, "reason");
        bool why = *reason && jg_cli_state_wants_reason(state);
        printf("%lld %s: %s %s%s%s%s\n", f->id, f->name, name, state, why ? " (" : "",
               why ? reason : "", why ? ")" : "");
    }
    if (group_changed && terminal) {
        char took[JG_CLI_FMT_SIZE];
        const char *reason = jg_cli_jstr(g, "reason");
        bool why = *reason && jg_cli_state_wants_reason(gstate);
        printf("%lld %s: %s in %s%s%s%s\n", f->id, f->name, gstate,
               jg_cli_fmt_elapsed(group_elapsed(g), took, sizeof took), why ? " (" : "",
               why ? reason : "", why ? ")" : "");
    }
    free(f->group_state);
    f->group_state = jg_xstrdup(gstate);
    fflush(stdout);
}

/* ---- a terminal: the group drawn in place ---- */

/* "2" when every node of the job agrees, else "3: 2 READY, 1 STARTING". */
static void node_summary(const json_t *g, const json_t *job, jg_cli_buf_t *out)
{
    const char *name = jg_cli_jstr(job, "name");
    long long attempt = jg_cli_jint(job, "attempt", -1);
    json_t *counts = json_object();
    size_t i, total = 0;
    json_t *n;
    for (int pass = 0; pass < 2 && total == 0; pass++) {   /* pass 1: any attempt */
        json_array_foreach(json_object_get(g, "nodes"), i, n) {
            if (strcmp(jg_cli_jstr(n, "job"), name) != 0)
                continue;
            if (pass == 0 && jg_cli_jint(n, "attempt", attempt) != attempt)
                continue;
            const char *st = jg_cli_jstr(n, "state");
            json_object_set_new(counts, st,
                                json_integer(jg_cli_jint(counts, st, 0) + 1));
            total++;
        }
    }
    if (json_object_size(counts) <= 1) {
        jg_cli_buf_printf(out, "%lld", jg_cli_jint(job, "num_nodes", 1));
    } else {
        jg_cli_buf_printf(out, "%zu:", total);
        const char *st;
        json_t *count;
        const char *sep = " ";
        json_object_foreach(counts, st, count) {
            jg_cli_buf_printf(out, "%s%lld %s", sep, (long long)json_integer_value(count), st);
            sep = ", ";
        }
    }
    json_decref(counts);
}

/* The frame: a group line, then a table of jobs, at most max_lines in all. */
static char *render_frame(const follow_t *f, const json_t *g, size_t max_lines)
{
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    if (!mem)
        return jg_xstrdup("");

    const char *gstate = jg_cli_jstr(g, "state");
    char took[JG_CLI_FMT_SIZE];
    const char *reason = jg_cli_jstr(g, "reason");
    bool why = *reason && jg_cli_state_wants_reason(gstate);
    if (state_is_terminal(gstate))
        jg_cli_fmt_elapsed(group_elapsed(g), took, sizeof took);
    else
        jg_cli_fmt_duration(group_elapsed(g), took, sizeof took);
    fprintf(mem, "Group %lld (%s): %s %s %s%s%s\n", f->id, f->name, gstate,
            state_is_terminal(gstate) ? "in" : "for", took, why ? " - " : "", why ? reason : "");

    static const char *const h[] = {"  JOB", "STATE", "NODES", "ATTEMPT", "EXIT", "REASON"};
    json_t *jobs = json_object_get(g, "jobs");
    size_t i;
    json_t *j;
    bool any_reason = false;
    json_array_foreach(jobs, i, j)
        any_reason = any_reason || (*jg_cli_jstr(j, "reason") &&
                                    jg_cli_state_wants_reason(jg_cli_jstr(j, "state")));
    jg_cli_table_t *t = jg_cli_table_new(any_reason ? 6 : 5, h);
    jg_cli_table_align_right(t, 3);
    jg_cli_table_align_right(t, 4);
    size_t shown = json_array_size(jobs);
    if (shown + 2 > max_lines)      /* group line and header */
        shown = max_lines > 4 ? max_lines - 3 : 1;
    json_array_foreach(jobs, i, j) {
        if (i >= shown)
            break;
        char name[160], attempt[32], code[JG_CLI_FMT_SIZE];
        snprintf(name, sizeof name, "  %s", jg_cli_jstr(j, "name"));
        snprintf(attempt, sizeof attempt, "%lld", jg_cli_jint(j, "attempt", 0));
        jg_cli_fmt_exit(jg_cli_jint(j, "exit_code", -1), code, sizeof code);
        jg_cli_buf_t nodes = {0};
        node_summary(g, j, &nodes);
        const char *state = jg_cli_jstr(j, "state");
        const char *cells[] = {name, state, jg_cli_buf_str(&nodes), attempt, code,
                               jg_cli_state_wants_reason(state) ? jg_cli_jstr(j, "reason") : ""};
        jg_cli_table_add(t, cells);
        jg_cli_buf_free(&nodes);
    }
    jg_cli_table_print(t, mem);
    jg_cli_table_free(t);
    if (shown < json_array_size(jobs))
        fprintf(mem, "  ... and %zu more jobs (jgsched queue shows them all)\n",
                json_array_size(jobs) - shown);
    fclose(mem);
    return text;
}

/* Replaces the frame on screen: back up over the old one, rewrite every line
 * (cut to the width so none wraps and the count stays right), clear the rest. */
static void draw(follow_t *f)
{
    if (!f->group)
        return;
    char *text = render_frame(f, f->group, (size_t)jg_cli_term_height() - 1);
    size_t width = (size_t)jg_cli_term_width();
    width = width > 1 ? width - 1 : 1;
    if (f->drawn > 0)
        printf("\r\033[%dA", f->drawn);
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        jg_cli_truncate(line, width);
        printf("\033[2K%s\n", line);
        lines++;
    }
    printf("\033[J");
    fflush(stdout);
    f->drawn = lines;
    free(text);
}

/* Follows the group until it ends; returns the exit status. */
static int follow(jg_cli_client_t *c, follow_t *f)
{
    jg_error_t err;
    struct sigaction sa = {.sa_handler = on_sigint};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    if (jg_cli_send(c, json_pack("{s:s, s:I}", "op", "watch", "id", (json_int_t)f->id), &err) < 0)
        goto lost;
    for (;;) {
        json_t *msg = NULL;
        int r = jg_cli_recv(c, f->tty ? REDRAW_MS : -1, &msg, &err);
        if (interrupted) {
            json_decref(msg);
            fprintf(stderr, "%sgroup %lld keeps running; cancel it with: jgsched cancel %lld\n",
                    f->tty ? "\n" : "", f->id, f->id);
            return JG_EXIT_INTERRUPTED;
        }
        if (r < 0)
            goto lost;
        if (r == 0) {
            draw(f);
            continue;
        }
        if (!jg_cli_jbool(msg, "ok")) {
            jg_cli_errorf("cannot follow group %lld: %s", f->id, jg_cli_jstr(msg, "error"));
            json_decref(msg);
            return JG_EXIT_FAIL;
        }
        json_t *g = json_incref(json_object_get(msg, "group"));
        json_decref(msg);
        if (!json_is_object(g)) {
            json_decref(g);
            continue;
        }
        const char *state = jg_cli_jstr(g, "state");
        bool terminal = state_is_terminal(state);
        bool ok = strcmp(state, "SUCCEEDED") == 0;
        if (f->tty) {
            json_decref(f->group);
            f->group = g;
            draw(f);
        } else {
            print_changes(f, g);
            json_decref(g);
        }
        if (terminal)
            return ok ? JG_EXIT_OK : JG_EXIT_FAIL;
    }
lost:
    jg_cli_errorf("lost jgschedd while following group %lld (%s); see: jgsched show %lld",
                  f->id, err.text, f->id);
    return JG_EXIT_NO_DAEMON;
}

int jg_cli_cmd_submit(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"infra", required_argument, NULL, 'i'},
        {"policy", required_argument, NULL, 'p'},
        {"detach", no_argument, NULL, 'd'},
        {"wait", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *name = NULL, *infra = NULL, *policy = NULL;
    bool detach = false;
    int opt;
    while ((opt = jg_cli_getopt(argc, argv, "n:dh", longopts)) != -1) {
        switch (opt) {
        case 'n': name = optarg; break;
        case 'i': infra = optarg; break;
        case 'p': policy = optarg; break;
        case 'd': detach = true; break;
        case 'w': detach = false; break;
        default:
            return jg_cli_help_or_usage(opt, usage);
        }
    }
    int rc = jg_cli_operands(argc, argv, 1, 1, "a FILE");
    if (rc != JG_EXIT_OK)
        return rc;
    const char *path = argv[optind];

    jg_error_t err;
    jg_cli_client_t c = {.fd = -1};
    follow_t f = {.tty = jg_cli_stdout_is_tty(), .job_states = json_object(),
                  .group_state = jg_xstrdup("PENDING")};
    json_t *reply = NULL;
    char *file = NULL;
    char *policy_text = NULL, *policy_label = NULL;
    size_t len = 0, policy_len = 0;
    char *yaml = read_file(path, &len);
    if (!yaml) {
        rc = JG_EXIT_USAGE;
        goto done;
    }
    file = absolute_path(path);
    /* A policy file is read here, as the user, and travels as text: the
     * daemon (perhaps root's) never opens a file a user names. */
    if (policy && jg_policy_is_path(policy)) {
        policy_text = jg_policy_read_file(policy, &policy_len, &err);
        if (!policy_text) {
            jg_cli_errorf("--policy: %s", err.text);
            rc = JG_EXIT_USAGE;
            goto done;
        }
        if (memchr(policy_text, '\0', policy_len)) {
            jg_cli_errorf("--policy: %s is not a text file", policy);
            rc = JG_EXIT_USAGE;
            goto done;
        }
        policy_label = policy_label_of(policy);
    }
    json_t *policy_text_j = policy_text ? json_stringn(policy_text, policy_len) : json_null();
    if (!policy_text_j) {
        jg_cli_errorf("--policy: %s is not valid UTF-8 text", policy);
        rc = JG_EXIT_USAGE;
        goto done;
    }
    json_t *req = json_pack("{s:s, s:s, s:s%, s:o, s:o, s:o, s:o}", "op", "submit", "file", file,
                            "yaml", yaml, len, "name", name ? json_string(name) : json_null(),
                            "infra", infra ? json_string(infra) : json_null(), "policy",
                            policy_label ? json_string(policy_label)
                                         : policy ? json_string(policy) : json_null(),
                            "policy_text", policy_text_j);
    if (!req) {
        jg_cli_errorf("%s is not valid UTF-8 text", path);
        rc = JG_EXIT_USAGE;
        goto done;
    }
    if (jg_cli_connect(&c, true, &err) < 0) {
        json_decref(req);
        jg_cli_errorf("%s", err.text);
        rc = JG_EXIT_NO_DAEMON;
        goto done;
    }
    reply = jg_cli_call(&c, req, &err);
    if (!reply) {
        jg_cli_errorf("%s", err.text);
        rc = jg_cli_call_failure_code(&c);
        goto done;
    }
    if (!jg_cli_jbool(reply, "ok")) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(reply, "errors"), i, e)
            fprintf(stderr, "%s\n", json_string_value(e) ? json_string_value(e) : "?");
        const char *msg = jg_cli_jstr(reply, "error");
        jg_cli_errorf("%s", *msg ? msg : "jgschedd refused the group");
        rc = jg_cli_failure_code(reply, JG_EXIT_USAGE);
        /* A daemon without backends.kubernetes cannot run `infra: kubernetes`. */
        if (!infra && rc == JG_EXIT_USAGE && strstr(msg, "pins kubernetes"))
            fprintf(stderr, "hint: enable the Kubernetes backend (backends.kubernetes in the "
                            "daemon's config.yaml, docs/kubernetes.md), or run the group on "
                            "this machine with: jgsched submit %s --infra local\n", path);
        goto done;
    }
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(reply, "warnings"), i, w)
        fprintf(stderr, "warning: %s\n", json_string_value(w) ? json_string_value(w) : "?");
    f.id = jg_cli_jint(reply, "id", 0);
    f.name = jg_xstrdup(jg_cli_jstr(reply, "name"));
    if (detach) {
        printf("%lld\n", f.id);
        /* A group that ended at submit (it can never fit) did not succeed. */
        const char *state = jg_cli_jstr(reply, "state");
        rc = JG_EXIT_OK;
        if (strncmp(state, "FAILED", 6) == 0) {
            jg_cli_errorf("group %lld (%s) %s: %s", f.id, f.name, state,
                          jg_cli_jstr(reply, "reason"));
            rc = JG_EXIT_FAIL;
        }
        goto done;
    }
    printf("Submitted group %lld (%s)\n", f.id, f.name);
    fflush(stdout);
    rc = follow(&c, &f);
done:
    json_decref(reply);
    json_decref(f.job_states);
    json_decref(f.group);
    free(f.group_state);
    free(f.name);
    free(file);
    free(policy_text);
    free(policy_label);
    free(yaml);
    jg_cli_close(&c);
    return rc;
}
