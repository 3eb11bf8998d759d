/* cmd_volume.c - `jgsched volume create NAME | ls [--json] | rm NAME`: named
 * shared directories that jobs mount by name (`volumes: {/data: NAME}` in a
 * job).
 *
 * Volumes come from two places: config.yaml declares some (they are listed
 * here but changed only in the file), and `volume create` makes others, each
 * a directory under the instance that belongs to its creator.  The daemon
 * keeps the list, checks who may remove what and refuses to remove a volume a
 * running group mounts (docs/protocol.md: volume_create, volume_ls,
 * volume_rm).  A name that is not a DNS label is refused here, before asking
 * the daemon, as a usage error (exit 2).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "jgsched/spec.h"

static const char usage[] =
    "usage: jgsched volume create NAME\n"
    "       jgsched volume ls [--json]\n"
    "       jgsched volume rm NAME\n"
    "\n"
    "Named shared volumes: a job mounts one with `volumes: {/data: NAME}`.\n"
    "\n"
    "  create NAME   make a new empty volume owned by you; NAME is a DNS label\n"
    "                (lowercase letters, digits and '-', at most 63 characters)\n"
    "  ls            list volumes: NAME SOURCE OWNER PATH USED-BY\n"
    "                (SOURCE is config for those declared in config.yaml)\n"
    "      --json    the daemon's volumes array as JSON\n"
    "  rm NAME       remove a volume you created, with its files (not while a\n"
    "                group that mounts it is active)\n";

/* Parses `volume create|rm NAME` (only --help as an option) into *name. */
static int parse_name_args(int argc, char **argv, const char **name)
{
    *name = NULL;
    int rc = jg_cli_getopt_simple(argc, argv, usage, NULL, 1, 1, "a volume NAME");
    if (rc >= 0)
        return rc;
    *name = argv[optind];
    return JG_EXIT_OK;
}

static int volume_create(int argc, char **argv)
{
    const char *name = NULL;
    int rc = parse_name_args(argc, argv, &name);
    if (rc != JG_EXIT_OK || !name)
        return rc;
    if (!jg_spec_is_dns_label(name))
        return jg_cli_usage_error(argv[0],
                                  "invalid volume name '%s': a volume name is a DNS label: "
                                  "lowercase letters, digits and '-', starting and ending with "
                                  "a letter or digit, at most 63 characters", name);
    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL;
    rc = jg_cli_request(&c, json_pack("{s:s, s:s}", "op", "volume_create", "name", name),
                        &reply);
    if (rc == JG_EXIT_OK)
        printf("Created volume %s at %s\n", name, jg_cli_jstr(reply, "path"));
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}

static int volume_rm(int argc, char **argv)
{
    const char *name = NULL;
    int rc = parse_name_args(argc, argv, &name);
    if (rc != JG_EXIT_OK || !name)
        return rc;
    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL;
    rc = jg_cli_request(&c, json_pack("{s:s, s:s}", "op", "volume_rm", "name", name), &reply);
    if (rc == JG_EXIT_OK)
        printf("Removed volume %s\n", name);
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}

enum { COL_NAME, COL_SOURCE, COL_OWNER, COL_PATH, COL_USED_BY, NCOLS };

static const char *const headers[NCOLS] = {"NAME", "SOURCE", "OWNER", "PATH", "USED-BY"};

static void print_table(const json_t *volumes)
{
    jg_cli_table_t *t = jg_cli_table_new(NCOLS, headers);
    size_t i;
    json_t *v;
    json_array_foreach(volumes, i, v) {
        char used[48];
        long long gid = jg_cli_jint(v, "used_by", 0);
        if (gid > 0)
            snprintf(used, sizeof used, "group %lld", gid);
        else
            snprintf(used, sizeof used, "-");
        const char *owner = jg_cli_jstr(v, "owner");
        const char *cells[NCOLS] = {jg_cli_jstr(v, "name"), jg_cli_jstr(v, "source"),
                                    *owner ? owner : "-", jg_cli_jstr(v, "path"), used};
        jg_cli_table_add(t, cells);
    }
    jg_cli_table_print(t, stdout);
    jg_cli_table_free(t);
}

static int volume_ls(int argc, char **argv)
{
    bool json = false;
    int rc = jg_cli_getopt_simple(argc, argv, usage, &json, 0, 0, NULL);
    if (rc >= 0)
        return rc;
    jg_cli_client_t c = {.fd = -1};
    json_t *reply = NULL, *volumes;
    rc = jg_cli_request_get(&c, json_pack("{s:s}", "op", "volume_ls"), "volumes", JSON_ARRAY,
                            &reply, &volumes);
    if (rc == JG_EXIT_OK && json)
        jg_cli_print_json(volumes);
    else if (rc == JG_EXIT_OK && json_array_size(volumes) == 0)
        printf("No volumes (create one with: jgsched volume create NAME)\n");
    else if (rc == JG_EXIT_OK)
        print_table(volumes);
    json_decref(reply);
    jg_cli_close(&c);
    return rc;
}

int jg_cli_cmd_volume(int argc, char **argv)
{
    static const jg_cli_sub_t subs[] = {
        {"create", volume_create},
        {"ls", volume_ls},
        {"rm", volume_rm},
    };
    return jg_cli_dispatch(argc, argv, usage, subs, sizeof subs / sizeof subs[0]);
}
