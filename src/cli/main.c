/* main.c - the `jgsched` command: global options and dispatch to one function
 * per subcommand (cmd_*.c), plus the option-parsing and diagnostic helpers
 * they share.
 *
 * Every subcommand parses its own argv with getopt_long in GNU's permuting
 * mode, so options may follow operands (`jgsched submit g.yaml -d`).  A bad
 * argument is named in the message and exits 2; see cli.h for the other exit
 * codes.  Nothing here talks to the daemon.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "jg_config.h"

static const char usage_text[] =
    "usage: jgsched COMMAND [ARGS...]\n"
    "\n"
    "Run JobGroups: heterogeneous jobs launched, networked, monitored and cancelled\n"
    "as one unit.\n"
    "\n"
    "commands:\n"
    "  submit FILE [-n NAME] [--infra INFRA] [--policy P] [-d]\n"
    "                          submit a JobGroup YAML and follow it until it ends\n"
    "  queue [-a] [-u USER] [--me] [--json]\n"
    "                          list groups and the states of their jobs\n"
    "  show ID [--json]        one group: jobs, nodes, hostnames, events\n"
    "  logs ID [JOB] [--rank N] [-f]\n"
    "                          output of a group's nodes, each line prefixed (job-rank)\n"
    "  cancel ID... | -a       cancel groups (every job, every node)\n"
    "  validate FILE           check a JobGroup YAML without submitting it\n"
    "  policy check|test|reload\n"
    "                          check a Lua policy, see what it decides for a YAML,\n"
    "                          reload the daemon's policies\n"
    "  infra [--json]          backends: capacity, what is in use and by whom, pending\n"
    "  volume create NAME | ls [--json] | rm NAME\n"
    "                          named shared volumes that jobs mount\n"
    "  daemon status|stop      the jgschedd serving this user\n"
    "\n"
    "options:\n"
    "  -h, --help              this help; `jgsched COMMAND --help` for a command\n"
    "  -V, --version           print the version\n"
    "\n"
    "exit codes: 0 success, 1 failure (or the group did not succeed), 2 usage or\n"
    "validation error, 3 the daemon cannot be reached, 4 the daemon failed to act\n"
    "(e.g. its disk is full), 130 interrupted.\n"
    "environment: JGSCHED_HOME (instance directory), JGSCHED_SOCKET (the socket of a\n"
    "running daemon; never starts one),\n"
    "JGSCHEDD (daemon executable to start), JGSCHED_POLICY_DIR (where policies are).\n";

void jg_cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("jgsched: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int jg_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "jgsched%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'jgsched%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    va_end(ap);
    return JG_EXIT_USAGE;
}

int jg_cli_getopt(int argc, char **argv, const char *shortopts,
                  const struct option *longopts)
{
    char opts[64];
    snprintf(opts, sizeof opts, ":%s", shortopts);
    opterr = 0;
    int c = getopt_long(argc, argv, opts, longopts, NULL);
    if (c == '?') {
        if (optopt && optopt < 256 && strncmp(argv[optind - 1], "--", 2) != 0)
            jg_cli_usage_error(argv[0], "unknown option '-%c'", optopt);
        else
            jg_cli_usage_error(argv[0], "unknown option '%s'", argv[optind - 1]);
        return '?';
    }
    if (c == ':') {
        if (optopt && optopt < 256 && strncmp(argv[optind - 1], "--", 2) != 0)
            jg_cli_usage_error(argv[0], "option '-%c' needs a value", optopt);
        else
            jg_cli_usage_error(argv[0], "option '%s' needs a value", argv[optind - 1]);
        return '?';
    }
    return c;
}

int jg_cli_help_or_usage(int opt, const char *usage)
{
    if (opt != 'h')
        return JG_EXIT_USAGE;
    fputs(usage, stdout);
    return JG_EXIT_OK;
}

int jg_cli_getopt_simple(int argc, char **argv, const char *usage, bool *json, int min,
                         int max, const char *what)
{
    static const struct option with_json[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const struct option *longopts = json ? with_json : with_json + 1;
    int opt;
    while ((opt = jg_cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt != 'j')
            return jg_cli_help_or_usage(opt, usage);
        *json = true;
    }
    return jg_cli_operands(argc, argv, min, max, what) == JG_EXIT_OK ? -1 : JG_EXIT_USAGE;
}

int jg_cli_operands(int argc, char **argv, int min, int max, const char *what)
{
    if (argc - optind < min)
        return jg_cli_usage_error(argv[0], "expected %s", what);
    if (max >= 0 && argc - optind > max)
        return jg_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind + max]);
    return JG_EXIT_OK;
}

int jg_cli_dispatch(int argc, char **argv, const char *usage, const jg_cli_sub_t *subs,
                    size_t nsubs)
{
    jg_cli_buf_t quoted = {0}, plain = {0};
    for (size_t i = 0; i < nsubs; i++) {
        const char *sep = i == 0 ? "" : i + 1 == nsubs ? " or " : ", ";
        jg_cli_buf_printf(&quoted, "%s'%s'", sep, subs[i].name);
        jg_cli_buf_printf(&plain, "%s%s", i == 0 ? "" : ", ", subs[i].name);
    }
    int rc = -1;
    if (argc < 2) {
        rc = jg_cli_usage_error(argv[0], "expected %s", jg_cli_buf_str(&quoted));
    } else if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        rc = JG_EXIT_OK;
    }
    for (size_t i = 0; rc < 0 && i < nsubs; i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        /* The subcommand sees itself as argv[0], named for messages. */
        char name[32];
        snprintf(name, sizeof name, "%s %s", argv[0], subs[i].name);
        argv[1] = name;
        optind = 0;
        rc = subs[i].run(argc - 1, argv + 1);
    }
    if (rc < 0)
        rc = jg_cli_usage_error(argv[0], "unknown subcommand '%s' (%s)", argv[1],
                                jg_cli_buf_str(&plain));
    jg_cli_buf_free(&quoted);
    jg_cli_buf_free(&plain);
    return rc;
}

bool jg_cli_parse_id(const char *s, long long *id)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return false;
    *id = v;
    return true;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"submit", jg_cli_cmd_submit},
    {"queue", jg_cli_cmd_queue},
    {"show", jg_cli_cmd_show},
    {"logs", jg_cli_cmd_logs},
    {"cancel", jg_cli_cmd_cancel},
    {"validate", jg_cli_cmd_validate},
    {"policy", jg_cli_cmd_policy},
    {"infra", jg_cli_cmd_infra},
    {"volume", jg_cli_cmd_volume},
    {"daemon", jg_cli_cmd_daemon},
};

static int find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return (int)i;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return JG_EXIT_USAGE;
    }
    const char *first = argv[1];
    if (strcmp(first, "-h") == 0 || strcmp(first, "--help") == 0) {
        fputs(usage_text, stdout);
        return JG_EXIT_OK;
    }
    if (strcmp(first, "-V") == 0 || strcmp(first, "--version") == 0) {
        printf("jgsched %s\n", JG_VERSION);
        return JG_EXIT_OK;
    }
    if (strcmp(first, "help") == 0) {
        if (argc < 3) {
            fputs(usage_text, stdout);
            return JG_EXIT_OK;
        }
        int i = find_command(argv[2]);
        if (i < 0)
            return jg_cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        optind = 0;
        return commands[i].run(2, help_argv);
    }
    if (first[0] == '-')
        return jg_cli_usage_error(NULL, "unknown option '%s'", first);
    int i = find_command(first);
    if (i < 0)
        return jg_cli_usage_error(NULL, "unknown command '%s'", first);
    optind = 0;     /* GNU: reinitialise getopt for the subcommand's argv */
    int rc = commands[i].run(argc - 1, argv + 1);
    if (fflush(stdout) != 0 && rc == JG_EXIT_OK)
        rc = JG_EXIT_FAIL;
    return rc;
}
