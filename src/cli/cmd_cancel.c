/* cmd_cancel.c - `jgsched cancel ID... | -a`: asks the daemon to take whole
 * groups down (every job, every node).  One request for all the ids; each
 * result is reported on its own line, and any refusal makes the exit status 1
 * (4 when the daemon's store could not record a cancel: that group runs on).
 * The daemon answers with ids; names come from the result when the daemon
 * includes them, else from a `show` on the same connection. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: jgsched cancel ID... | -a\n"
    "\n"
    "Cancels groups: every job and node of each is stopped and cleaned up.\n"
    "\n"
    "  -a, --all   cancel every unfinished group of mine\n";

/* The group's name for the message; "" when it cannot be found. */
static char *group_name(jg_cli_client_t *c, const json_t *result, long long id)
{
    const char *name = jg_cli_jstr(result, "name");
    if (*name)
        return jg_xstrdup(name);
    jg_error_t err;
    json_t *reply = jg_cli_call(c, json_pack("{s:s, s:I}", "op", "show", "id", (json_int_t)id),
                                &err);
    char *found = jg_xstrdup(jg_cli_jstr(json_object_get(reply, "group"), "name"));
    json_decref(reply);
    return found;
}

int jg_cli_cmd_cancel(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool all = false;
    int opt;
    while ((opt = jg_cli_getopt(argc, argv, "ah", longopts)) != -1) {
        if (opt == 'a') {
            all = true;
            continue;
        }
        return jg_cli_help_or_usage(opt, usage);
    }
    if (all && optind < argc)
        return jg_cli_usage_error(argv[0], "give group IDs or -a, not both");
    if (!all && optind >= argc)
        return jg_cli_usage_error(argv[0], "expected group IDs or -a");
    json_t *ids = json_array();
    for (int i = optind; i < argc; i++) {
        long long id;
        if (!jg_cli_parse_id(argv[i], &id)) {
            json_decref(ids);
            return jg_cli_usage_error(argv[0], "'%s' is not a group ID", argv[i]);
        }
        json_array_append_new(ids, json_integer((json_int_t)id));
    }
    json_t *req = all ? json_pack("{s:s, s:b}", "op", "cancel", "all", 1)
                      : json_pack("{s:s, s:o}", "op", "cancel", "ids", ids);
    if (all)
        json_decref(ids);

    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL;
    int rc = jg_cli_request(&c, req, &reply);
    if (rc != JG_EXIT_OK)
        goto done;
    json_t *results = json_object_get(reply, "results");
    if (all && json_array_size(results) == 0)
        printf("No unfinished groups to cancel.\n");
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) {
        long long id = jg_cli_jint(r, "id", 0);
        if (!jg_cli_jbool(r, "ok")) {
            const char *e = jg_cli_jstr(r, "error");
            if (*e)
                jg_cli_errorf("%s", e);
            else
                jg_cli_errorf("cannot cancel group %lld", id);
            /* A daemon failure outranks a refusal in the exit code. */
            if (jg_cli_failure_code(r, JG_EXIT_FAIL) == JG_EXIT_DAEMON_FAILED)
                rc = JG_EXIT_DAEMON_FAILED;
            else if (rc != JG_EXIT_DAEMON_FAILED)
                rc = JG_EXIT_FAIL;
            continue;
        }
        char *name = group_name(&c, r, id);
        if (*name)
            printf("Cancelling group %lld (%s)\n", id, name);
        else
            printf("Cancelling group %lld\n", id);
        free(name);
    }
done:
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}
