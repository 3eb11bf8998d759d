/* cmd_validate.c - `jgsched validate FILE`: the spec module's verdict on a
 * JobGroup YAML, locally, without a daemon.  Every error is printed (the
 * parser collects them all), so one run fixes a whole file.  The bounds on
 * size, nesting, keys, strings and nodes are the defaults, the ones `submit`
 * checks too; a daemon configured with other spec_limits checks its own when
 * the file is submitted (the CLI does not know the daemon's config). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "jgsched/spec.h"

static const char usage[] =
    "usage: jgsched validate FILE\n"
    "\n"
    "Parses and checks a JobGroup YAML without submitting it.  On success prints\n"
    "the resolved group (and any warnings on stderr), exit 0; otherwise prints every\n"
    "error as file:line:column on stderr, exit 2.  The default bounds apply (512 KiB,\n"
    "nesting 64, 1024 keys per mapping, 1024 nodes per job and per group, ...: see\n"
    "spec_limits in docs/configuration.md), as they do for submit; a daemon configured\n"
    "with other bounds checks its own at submit.\n";

int jg_cli_cmd_validate(int argc, char **argv)
{
    int rc = jg_cli_getopt_simple(argc, argv, usage, NULL, 1, 1, "a FILE");
    if (rc >= 0)
        return rc;
    const char *path = argv[optind];

    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse_file(path, &errs);
    if (!spec) {
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "%s\n", errs.messages[i]);
        fprintf(stderr, "%s: %zu error%s\n", path, errs.count, errs.count == 1 ? "" : "s");
        rc = JG_EXIT_USAGE;
    } else {
        char *text = jg_spec_describe(spec);
        if (text) {
            fputs(text, stdout);
            if (*text && text[strlen(text) - 1] != '\n')
                fputc('\n', stdout);
        }
        free(text);
        for (size_t i = 0; i < errs.n_warnings; i++)
            fprintf(stderr, "warning: %s\n", errs.warnings[i]);
        rc = JG_EXIT_OK;
    }
    jg_spec_free(spec);
    jg_spec_errors_free(&errs);
    return rc;
}
