/* test_config.c - the daemon's config.yaml: what a full file yields, every
 * kind of error with its file:line:col, key path and value, a missing file as
 * all defaults, per-user limits, admin checks and the description; and the
 * mode of the directories a system instance creates.  Fixtures
 * live in fixtures/config/: full.yaml sets every key, bad.yaml holds one of
 * most error kinds.
 */
#include <criterion/criterion.h>

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jgsched/config.h"
#include "jgsched/paths.h"
#include "jg_config.h"

#ifndef JG_TEST_FIXTURES
#define JG_TEST_FIXTURES "tests/fixtures"
#endif
#define FIX(name) JG_TEST_FIXTURES "/config/" name

/* ---- helpers ----------------------------------------------------------- */

static jg_spec_errors_t errs;
static jg_config_t *cfg;
static char tmpdir[64];

static void cleanup(void)
{
    jg_spec_errors_free(&errs);
    jg_config_free(cfg);
    cfg = NULL;
    if (tmpdir[0]) {
        char path[128];
        snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
        unlink(path);
        snprintf(path, sizeof path, "%s/dir", tmpdir);
        rmdir(path);
        rmdir(tmpdir);
        tmpdir[0] = '\0';
    }
}

TestSuite(config, .fini = cleanup);

static void dump(void)
{
    for (size_t i = 0; i < errs.count; i++)
        cr_log_info("error: %s", errs.messages[i]);
    for (size_t i = 0; i < errs.n_warnings; i++)
        cr_log_info("warning: %s", errs.warnings[i]);
}

static jg_config_t *parse(const char *yaml)
{
    jg_spec_errors_free(&errs);
    jg_config_free(cfg);
    cfg = jg_config_parse(yaml, strlen(yaml), "c.yaml", &errs);
    return cfg;
}

static bool has(char **list, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(list[i], needle))
            return true;
    return false;
}

/* The parse fails and one message holds both needles (needle2 may be NULL). */
static void expect_error(const char *yaml, const char *needle, const char *needle2)
{
    jg_config_t *c = parse(yaml);
    bool ok = false;
    for (size_t i = 0; i < errs.count && !ok; i++)
        ok = strstr(errs.messages[i], needle) && (!needle2 || strstr(errs.messages[i], needle2));
    if (c || !ok)
        dump();
    cr_assert_null(c, "expected a failure for:\n%s", yaml);
    cr_assert(ok, "no error containing '%s'%s%s for:\n%s", needle, needle2 ? " and " : "",
              needle2 ? needle2 : "", yaml);
}

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/jg-config-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

/* ---- defaults and files ------------------------------------------------ */

static void assert_defaults(const jg_config_t *c)
{
    cr_assert_str_eq(c->default_policy, "default");
    cr_assert_not(c->has_default_policy);
    cr_assert_eq(c->n_admins, 0);
    cr_assert_null(c->admin_group);
    cr_assert_eq(c->default_limits.running_groups, JG_CONFIG_UNLIMITED);
    cr_assert_eq(c->default_limits.nodes, JG_CONFIG_UNLIMITED);
    cr_assert_eq(c->default_limits.cpus, JG_CONFIG_UNLIMITED);
    cr_assert_eq(c->n_user_limits, 0);
    cr_assert_float_eq(c->stop_grace_s, 5.0, 1e-9);
    cr_assert_not(c->has_stop_grace);
    cr_assert(c->local.enabled);
    cr_assert_not(c->local.capacity.has_cpus || c->local.capacity.has_memory ||
                  c->local.capacity.has_accels);
    cr_assert_not(c->local.max_node.has_cpus || c->local.max_node.has_memory ||
                  c->local.max_node.has_accels);
    cr_assert_eq(c->local.network, JG_CONFIG_NETWORK_ISOLATED);
    cr_assert(c->local.nat, "nodes reach out through NAT by default (when root)");
    cr_assert_str_eq(c->local.nat_network, "10.201.0.0/16");
    cr_assert_not(c->local.has_nat_network);
    cr_assert_eq(c->local.cgroups, JG_CONFIG_CGROUPS_AUTO);
    cr_assert_not(c->kubernetes.enabled);
    cr_assert_null(c->kubernetes.context);
    cr_assert_null(c->kubernetes.namespace);
    cr_assert_not(c->kubernetes.has_enabled);
    cr_assert_null(c->kubernetes.kubeconfig);
    cr_assert_str_eq(c->kubernetes.gpu_resource, "nvidia.com/gpu");
    cr_assert_str_eq(c->kubernetes.image, "ubuntu:22.04");
    cr_assert_str_eq(c->kubernetes.agent_image, "jgsched/agent:" JG_VERSION);
    cr_assert_eq(c->n_volumes, 0);
    jg_spec_limits_t d = jg_spec_limits_default();
    cr_assert_not(c->has_spec_limits);
    cr_assert_eq(memcmp(&c->spec_limits, &d, sizeof d), 0, "spec_limits are the spec defaults");
}

Test(config, defaults_hold_every_documented_default)
{
    cfg = jg_config_defaults();
    assert_defaults(cfg);
    cr_assert_null(cfg->path);
    cr_assert_not(cfg->loaded);
}

Test(config, missing_file_means_defaults_not_an_error)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
    cfg = jg_config_load(path, &errs);
    cr_assert_not_null(cfg);
    cr_assert_eq(errs.count, 0);
    cr_assert_str_eq(cfg->path, path);
    cr_assert_not(cfg->loaded);
    assert_defaults(cfg);
}

Test(config, empty_file_and_comments_only_mean_defaults)
{
    cr_assert_not_null(parse(""));
    assert_defaults(cfg);
    cr_assert(cfg->loaded);
    cr_assert_not_null(parse("# nothing configured yet\n---\n"));
    assert_defaults(cfg);
}

Test(config, unreadable_file_is_an_error)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/dir", tmpdir);
    cr_assert_eq(mkdir(path, 0700), 0);
    cfg = jg_config_load(path, &errs);     /* a directory: opens, cannot be read */
    cr_assert_null(cfg);
    cr_assert_eq(errs.count, 1);
    cr_assert(strstr(errs.messages[0], path) && strstr(errs.messages[0], "cannot read"),
              "%s", errs.messages[0]);
}

Test(config, load_reads_a_written_file)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("stop_grace: 1m\nlimits:\n  default: {nodes: -3}\n", f);
    fclose(f);
    cfg = jg_config_load(path, &errs);
    cr_assert_null(cfg);
    cr_assert_eq(errs.count, 1);
    char want[256];
    snprintf(want, sizeof want, "%s:3:20: limits.default.nodes: expected an integer >= 0 or "
             "unlimited, got '-3'", path);
    cr_assert_str_eq(errs.messages[0], want);
}

/* ---- a full file ------------------------------------------------------- */

Test(config, full_file_sets_every_field)
{
    cfg = jg_config_load(FIX("full.yaml"), &errs);
    dump();
    cr_assert_not_null(cfg);
    cr_assert_eq(errs.count, 0);
    cr_assert(cfg->loaded);
    cr_assert_str_eq(cfg->default_policy, "fail-fast");
    cr_assert(cfg->has_default_policy);
    cr_assert_eq(cfg->n_admins, 2);
    cr_assert_str_eq(cfg->admins[0], "alice");
    cr_assert_str_eq(cfg->admins[1], "bob");
    cr_assert_str_eq(cfg->admin_group, "jgadmin");
    cr_assert_eq(cfg->default_limits.running_groups, 10);
    cr_assert_eq(cfg->default_limits.nodes, 64);
    cr_assert_eq(cfg->default_limits.cpus, 128);
    cr_assert_eq(cfg->n_user_limits, 2);
    cr_assert_str_eq(cfg->user_limits[0].user, "alice");
    cr_assert_eq(cfg->user_limits[0].limits.running_groups, 2);
    cr_assert_eq(cfg->user_limits[0].limits.nodes, 8);
    cr_assert_eq(cfg->user_limits[0].limits.cpus, 16);
    cr_assert_float_eq(cfg->stop_grace_s, 0.5, 1e-9);
    cr_assert(cfg->has_stop_grace);

    const jg_config_local_t *l = &cfg->local;
    cr_assert(l->enabled && l->has_enabled);
    cr_assert(l->capacity.has_cpus);
    cr_assert_float_eq(l->capacity.cpus, 64, 1e-9);
    cr_assert(l->capacity.has_memory);
    cr_assert_float_eq(l->capacity.memory_gb, 256, 1e-9);
    cr_assert(l->capacity.has_accels);
    cr_assert_eq(l->capacity.n_accels, 2);
    cr_assert_str_eq(l->capacity.accels[0].name, "T4");
    cr_assert_eq(l->capacity.accels[0].count, 2);
    cr_assert_str_eq(l->capacity.accels[1].name, "A100");
    cr_assert_eq(l->capacity.accels[1].count, 8);
    cr_assert_float_eq(l->max_node.cpus, 32, 1e-9);
    cr_assert_float_eq(l->max_node.memory_gb, 128, 1e-9);
    cr_assert_not(l->max_node.has_accels);
    cr_assert_eq(l->network, JG_CONFIG_NETWORK_HOST);
    cr_assert(l->has_network);
    cr_assert_not(l->nat);
    cr_assert(l->has_nat);
    cr_assert_str_eq(l->nat_network, "172.31.240.0/20");
    cr_assert(l->has_nat_network);
    cr_assert_eq(l->cgroups, JG_CONFIG_CGROUPS_OFF);

    cr_assert(!cfg->kubernetes.enabled && cfg->kubernetes.has_enabled);
    cr_assert_str_eq(cfg->kubernetes.context, "my-cluster");
    cr_assert_str_eq(cfg->kubernetes.namespace, "jgsched");
    cr_assert_str_eq(cfg->kubernetes.kubeconfig, "/etc/jgsched/kubeconfig");
    cr_assert_str_eq(cfg->kubernetes.gpu_resource, "amd.com/gpu");
    cr_assert_str_eq(cfg->kubernetes.image, "ubuntu:24.04");
    cr_assert_str_eq(cfg->kubernetes.agent_image, "registry.local/jgsched/agent:test");

    cr_assert_eq(cfg->n_volumes, 2);
    cr_assert_str_eq(cfg->volumes[0].name, "shared-volume");
    cr_assert_str_eq(cfg->volumes[0].path, "/srv/jgsched/volumes/shared-volume");
    cr_assert_str_eq(jg_config_volume_path(cfg, "scratch"), "/tmp");
    cr_assert_null(jg_config_volume_path(cfg, "nope"));
}

Test(config, value_forms)
{
    cr_assert_not_null(parse("stop_grace: 1m\nbackends:\n  local:\n    capacity:\n"
                             "      cpus: 0.5\n      memory: 512MB\n      accelerators: H100:4\n"
                             "    enabled: yes\n  kubernetes: {enabled: no}\n"
                             "admins: carol\ndefault_policy: /etc/jgsched/site.lua\n"));
    cr_assert_float_eq(cfg->stop_grace_s, 60, 1e-9);
    cr_assert_float_eq(cfg->local.capacity.cpus, 0.5, 1e-9);
    cr_assert_float_eq(cfg->local.capacity.memory_gb, 0.5, 1e-9);
    cr_assert_eq(cfg->local.capacity.n_accels, 1);
    cr_assert_str_eq(cfg->local.capacity.accels[0].name, "H100");
    cr_assert_eq(cfg->local.capacity.accels[0].count, 4);
    cr_assert(cfg->local.enabled && cfg->local.has_enabled);
    cr_assert(!cfg->kubernetes.enabled && cfg->kubernetes.has_enabled);
    cr_assert_eq(cfg->n_admins, 1);
    cr_assert_str_eq(cfg->admins[0], "carol");
    cr_assert_str_eq(cfg->default_policy, "/etc/jgsched/site.lua");

    /* `{}` declares no accelerators at all (not the host's) */
    cr_assert_not_null(parse("backends: {local: {capacity: {accelerators: {}}}}\n"));
    cr_assert(cfg->local.capacity.has_accels);
    cr_assert_eq(cfg->local.capacity.n_accels, 0);
    /* a key with nothing after it is the default */
    cr_assert_not_null(parse("limits:\nvolumes:\nbackends:\n  local:\n"));
    assert_defaults(cfg);
}

/* ---- errors ------------------------------------------------------------ */

Test(config, bad_file_lists_every_error_in_file_order)
{
    cfg = jg_config_load(FIX("bad.yaml"), &errs);
    cr_assert_null(cfg);
    const char *want[] = {
        FIX("bad.yaml") ":1:17: default_policy: policy path '../my.lua' must be absolute",
        FIX("bad.yaml") ":2:17: admins[1]: invalid user name 'bad user': it contains "
                        "whitespace",
        FIX("bad.yaml") ":2:29: admins[2]: user 'alice' is listed twice",
        FIX("bad.yaml") ":3:14: admin_group: invalid group name 'a:b': it contains ':'",
        FIX("bad.yaml") ":4:1: limit: unknown key 'limit' (did you mean 'limits'?)",
        FIX("bad.yaml") ":7:29: limits.default.running_groups: expected an integer >= 0 or "
                        "unlimited, got '-1'",
        FIX("bad.yaml") ":7:33: limits.default: unknown key 'node' (did you mean 'nodes'?)",
        FIX("bad.yaml") ":7:48: limits.default.cpus: expected an integer >= 0 or unlimited, "
                        "got '2.5'",
        FIX("bad.yaml") ":9:29: limits.users.alice.running_groups: expected an integer >= 0 "
                        "or unlimited, got 'lots'",
        FIX("bad.yaml") ":10:13: stop_grace: invalid duration '5 seconds' (expected e.g. "
                        "500ms, 5s, 1m)",
        FIX("bad.yaml") ":13:14: backends.local.enabled: expected true or false, got 'maybe'",
        FIX("bad.yaml") ":15:13: backends.local.capacity.cpus: invalid value '8+'",
        FIX("bad.yaml") ":16:15: backends.local.capacity.memory: invalid value '0GB'",
        FIX("bad.yaml") ":17:26: backends.local.capacity.accelerators.T4: invalid accelerator "
                        "count '0'",
        FIX("bad.yaml") ":18:28: backends.local.capacity.max_node: unknown key 'gpus' (did "
                        "you mean 'accelerators'?)",
        FIX("bad.yaml") ":19:14: backends.local.network: invalid value 'isolate' (did you "
                        "mean 'isolated'?",
        FIX("bad.yaml") ":20:14: backends.local.cgroups: invalid value 'on' (expected auto "
                        "or off)",
        FIX("bad.yaml") ":21:3: backends: unknown backend 'k8s' (did you mean 'kubernetes'?)",
        FIX("bad.yaml") ":23:16: backends.kubernetes.namespace: invalid namespace 'Team_A': "
                        "it contains uppercase letter 'T'",
        FIX("bad.yaml") ":25:3: volumes: invalid volume name 'Shared_Vol': it contains "
                        "uppercase letter 'S'",
        FIX("bad.yaml") ":26:9: volumes.logs: volume path 'relative/dir' must be absolute",
    };
    size_t n = sizeof want / sizeof want[0];
    if (errs.count != n)
        dump();
    cr_assert_eq(errs.count, n, "got %zu errors, want %zu", errs.count, n);
    for (size_t i = 0; i < n; i++)
        cr_assert(!strncmp(errs.messages[i], want[i], strlen(want[i])),
                  "error %zu:\n  got  %s\n  want %s...", i, errs.messages[i], want[i]);
}

Test(config, unknown_keys_at_every_level_suggest_the_key_meant)
{
    expect_error("admin: [x]\n", "c.yaml:1:1: admin: unknown key 'admin' (did you mean 'admins'?)",
                 NULL);
    expect_error("volume: {}\n", "unknown key 'volume' (did you mean 'volumes'?)", NULL);
    expect_error("stop_grase: 5s\n", "did you mean 'stop_grace'?", NULL);
    expect_error("limits: {defaults: {}}\n",
                 "c.yaml:1:10: limits: unknown key 'defaults' (did you mean 'default'?)", NULL);
    expect_error("limits: {users: {bob: {running_group: 1}}}\n",
                 "limits.users.bob: unknown key 'running_group' (did you mean "
                 "'running_groups'?)", NULL);
    expect_error("backends: {locall: {}}\n",
                 "backends: unknown key 'locall' (did you mean 'local'?)", NULL);
    expect_error("backends: {local: {capcity: {}}}\n",
                 "backends.local: unknown key 'capcity' (did you mean 'capacity'?)", NULL);
    expect_error("backends: {local: {capacity: {mem: 1GB}}}\n",
                 "backends.local.capacity: unknown key 'mem' (did you mean 'memory'?)", NULL);
    expect_error("backends: {local: {capacity: {max_node: {max_node: {}}}}}\n",
                 "backends.local.capacity.max_node: unknown key 'max_node'", NULL);
    expect_error("backends: {kubernetes: {contxt: a}}\n",
                 "backends.kubernetes: unknown key 'contxt' (did you mean 'context'?)", NULL);
    expect_error("bogus: 1\n", "c.yaml:1:1: bogus: unknown key 'bogus'", NULL);
}

Test(config, wrong_shapes_say_what_was_expected)
{
    expect_error("- a\n- b\n", "c.yaml:1:1: the configuration must be a mapping", "a list");
    expect_error("limits: [1]\n", "c.yaml:1:9: limits: expected a mapping", "got a list");
    expect_error("admins: {a: 1}\n", "admins: expected a list of user names, got a mapping",
                 NULL);
    expect_error("admins: [[a]]\n", "c.yaml:1:10: admins[0]: expected a user name, got a list",
                 NULL);
    expect_error("backends: local\n", "backends: expected a mapping (local, kubernetes), got "
                 "a scalar", NULL);
    expect_error("volumes: {a: [x]}\n", "volumes.a: expected an absolute directory path, got "
                 "a list", NULL);
    expect_error("default_policy: {a: b}\n", "default_policy: expected a policy name", NULL);
    expect_error("backends: {local: {capacity: {accelerators: [T4]}}}\n",
                 "accelerators: expected a mapping of name: count, e.g. {T4: 2}, got a list",
                 NULL);
}

Test(config, nat_network_must_be_a_usable_ipv4_network)
{
    expect_error("backends: {local: {nat_network: 10.201.0.0}}\n",
                 "c.yaml:1:33: backends.local.nat_network", "write it as address/prefix");
    expect_error("backends: {local: {nat_network: 10.201.0.0/33}}\n",
                 "backends.local.nat_network", "must be between /8 and /29");
    expect_error("backends: {local: {nat_network: 10.201.0.1/16}}\n",
                 "host bits set", "10.201.0.0/16");
    expect_error("backends: {local: {nat_network: 10.0.0.0/8}}\n",
                 "overlaps 10.200.0.0/16", NULL);
    expect_error("backends: {local: {nat_network: 10.200.128.0/24}}\n",
                 "overlaps 10.200.0.0/16", NULL);
    expect_error("backends: {local: {nat_network: 300.1.0.0/16}}\n",
                 "is not an IPv4 network", NULL);
    expect_error("backends: {local: {nat_network: [1]}}\n",
                 "backends.local.nat_network: expected an IPv4 network", "got a list");
    cr_assert_not_null(parse("backends: {local: {nat_network: 192.168.77.0/29}}\n"));
    cr_assert_str_eq(cfg->local.nat_network, "192.168.77.0/29");
}

Test(config, counts_sizes_and_durations_are_checked)
{
    expect_error("limits: {default: {cpus: 1e3}}\n", "limits.default.cpus", "got '1e3'");
    expect_error("limits: {default: {nodes: 99999999999}}\n", "limits.default.nodes",
                 "got '99999999999'");
    expect_error("backends: {local: {capacity: {cpus: 0}}}\n", "capacity.cpus: invalid value "
                 "'0' (expected a positive number", NULL);
    expect_error("backends: {local: {capacity: {memory: lots}}}\n",
                 "capacity.memory: invalid value 'lots' (expected a positive size", NULL);
    expect_error("backends: {local: {capacity: {memory: 8GB+}}}\n",
                 "capacity.memory: invalid value '8GB+'", "takes no '+'");
    expect_error("backends: {local: {capacity: {accelerators: 'T 4'}}}\n",
                 "invalid accelerator name 'T 4'", NULL);
    expect_error("backends: {local: {capacity: {accelerators: {T4: 1.5}}}}\n",
                 "capacity.accelerators.T4: invalid accelerator count '1.5'", NULL);
    expect_error("stop_grace: -1s\n", "stop_grace: invalid duration '-1s'", NULL);
    expect_error("stop_grace: 2h\n", "stop_grace: '2h' is too long (at most 1h)", NULL);
    expect_error("backends: {local: {nat: 2}}\n", "backends.local.nat: expected true or false, "
                 "got '2'", NULL);
}

Test(config, names_and_paths_are_checked)
{
    expect_error("default_policy: default.lua\n", "default_policy: invalid policy name "
                 "'default.lua' (did you mean 'default'?", NULL);
    expect_error("default_policy: my policy\n", "invalid policy name 'my policy' (letters, "
                 "digits", NULL);
    expect_error("volumes: {-x: /srv}\n", "volumes: invalid volume name '-x'", NULL);
    expect_error("volumes: {data: ./d}\n", "volumes.data: volume path './d' must be absolute",
                 NULL);
    expect_error("backends: {kubernetes: {context: 'a b'}}\n",
                 "backends.kubernetes.context: invalid context 'a b'", NULL);
    expect_error("admin_group: ''\n", "admin_group: invalid group name '': it is empty", NULL);
    expect_error("limits: {users: {'a b': {}}}\n", "limits.users: invalid user name 'a b'",
                 NULL);
}

Test(config, max_node_may_not_exceed_capacity)
{
    expect_error("backends:\n  local:\n    capacity:\n      memory: 64GB\n"
                 "      max_node: {memory: 65GB}\n",
                 "c.yaml:5:26: backends.local.capacity.max_node: memory 65 GiB is more than "
                 "the capacity's (64 GiB)", NULL);
    /* a max_node alone bounds a host-sized capacity: nothing to compare */
    cr_assert_not_null(parse("backends: {local: {capacity: {max_node: {cpus: 4}}}}\n"));
    cr_assert_not(cfg->local.capacity.has_cpus);
    cr_assert(cfg->local.max_node.has_cpus);
}

/* Settings nothing could apply yet are refused, not accepted and ignored. */
Test(config, settings_not_supported_yet_are_errors)
{
    expect_error("backends:\n  local:\n    enabled: false\n",
                 "c.yaml:3:14: backends.local.enabled: the local backend is the only one built "
                 "and cannot be disabled yet", NULL);
    expect_error("backends:\n  local:\n    capacity:\n      accelerators: {T4: 2}\n"
                 "      max_node: {accelerators: {T4: 1}}\n",
                 "c.yaml:5:18: backends.local.capacity.max_node.accelerators: a node's "
                 "accelerators cannot be limited yet", NULL);
    /* what is already true is fine to write down */
    cr_assert_not_null(parse("backends: {local: {enabled: true}, kubernetes: {enabled: false, "
                             "context: c, namespace: ns}}\n"));
    cr_assert(cfg->local.enabled);
    cr_assert_not(cfg->kubernetes.enabled);
}

/* ---- backends.kubernetes ------------------------------------------------- */

Test(config, writing_the_kubernetes_section_enables_it)
{
    cr_assert_not_null(parse("backends:\n  kubernetes: {}\n"));
    cr_assert(cfg->kubernetes.enabled && cfg->kubernetes.has_enabled);
    cr_assert_null(cfg->kubernetes.kubeconfig);
    cr_assert_null(cfg->kubernetes.context);
    cr_assert_str_eq(cfg->kubernetes.gpu_resource, "nvidia.com/gpu");
    cr_assert_not(cfg->kubernetes.has_gpu_resource);
    cr_assert_str_eq(cfg->kubernetes.image, "ubuntu:22.04");
    cr_assert_str_eq(cfg->kubernetes.agent_image, "jgsched/agent:" JG_VERSION);
    cr_assert_null(cfg->kubernetes.gpu_label);
    cr_assert(cfg->kubernetes.hosts_writable, "the uid-0 init container by default");
    cr_assert_not(cfg->kubernetes.has_hosts_writable);
    cr_assert(cfg->local.enabled, "local stays on beside it");
    /* an empty section is written too */
    cr_assert_not_null(parse("backends:\n  kubernetes:\n"));
    cr_assert(cfg->kubernetes.enabled);
    /* enabled: false turns it off and keeps the rest checked */
    cr_assert_not_null(parse("backends:\n  kubernetes:\n    enabled: false\n"
                             "    context: prod\n"));
    cr_assert_not(cfg->kubernetes.enabled);
    cr_assert(cfg->kubernetes.has_enabled);
    cr_assert_str_eq(cfg->kubernetes.context, "prod");
    cr_assert_not_null(parse("backends: {kubernetes: {enabled: true}}\n"));
    cr_assert(cfg->kubernetes.enabled);
}

Test(config, kubernetes_section_every_key)
{
    cr_assert_not_null(parse("backends:\n"
                             "  kubernetes:\n"
                             "    kubeconfig: /etc/jgsched/kubeconfig\n"
                             "    context: kind-kind\n"
                             "    namespace: batch\n"
                             "    gpu_resource: amd.com/gpu\n"
                             "    gpu_label: skypilot.co/accelerator\n"
                             "    hosts_writable: false\n"
                             "    image: registry.example:5000/team/base@sha256:0123abcd\n"
                             "    agent_image: localhost/jgsched/agent:dev\n"));
    const jg_config_kubernetes_t *k = &cfg->kubernetes;
    cr_assert(k->enabled);
    cr_assert_str_eq(k->kubeconfig, "/etc/jgsched/kubeconfig");
    cr_assert_str_eq(k->context, "kind-kind");
    cr_assert_str_eq(k->namespace, "batch");
    cr_assert_str_eq(k->gpu_resource, "amd.com/gpu");
    cr_assert(k->has_gpu_resource);
    cr_assert_str_eq(k->gpu_label, "skypilot.co/accelerator");
    cr_assert_not(k->hosts_writable);
    cr_assert(k->has_hosts_writable);
    cr_assert_str_eq(k->image, "registry.example:5000/team/base@sha256:0123abcd");
    cr_assert(k->has_image);
    cr_assert_str_eq(k->agent_image, "localhost/jgsched/agent:dev");
    cr_assert(k->has_agent_image);
    char *d = jg_config_describe(cfg);
    const char *lines[] = {
        "  kubernetes: enabled\n",
        "    kubeconfig: /etc/jgsched/kubeconfig\n",
        "    context:   kind-kind\n",
        "    namespace: batch\n",
        "    gpu_resource: amd.com/gpu\n",
        "    gpu_label: skypilot.co/accelerator\n",
        "    hosts_writable: no (no uid-0 container; non-root images cannot have the group's "
        "hosts)\n",
        "    image:     registry.example:5000/team/base@sha256:0123abcd\n",
        "    agent_image: localhost/jgsched/agent:dev\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(d, lines[i]), "missing line '%s' in:\n%s", lines[i], d);
    free(d);
}

Test(config, kubernetes_section_errors)
{
    expect_error("backends:\n  kubernetes:\n    kubeconfig: kube/config\n",
                 "c.yaml:3:17: backends.kubernetes.kubeconfig: 'kube/config' is not an absolute "
                 "path (the daemon's working directory is /; leave it out for $KUBECONFIG or "
                 "~/.kube/config)", NULL);
    expect_error("backends: {kubernetes: {gpu_resource: gpu}}\n",
                 "backends.kubernetes.gpu_resource: invalid resource name 'gpu': expected "
                 "<domain>/<name>, e.g. nvidia.com/gpu or amd.com/gpu", NULL);
    expect_error("backends: {kubernetes: {gpu_resource: Nvidia.com/gpu}}\n",
                 "invalid resource name 'Nvidia.com/gpu': the domain before '/' must be "
                 "lowercase DNS labels joined by '.'", NULL);
    expect_error("backends: {kubernetes: {gpu_resource: nvidia..com/gpu}}\n",
                 "the domain before '/' must be lowercase DNS labels joined by '.'", NULL);
    expect_error("backends: {kubernetes: {gpu_resource: kubernetes.io/gpu}}\n",
                 "the domain may not be kubernetes.io", NULL);
    expect_error("backends: {kubernetes: {gpu_resource: nvidia.com/-gpu}}\n",
                 "the name after '/' must be letters, digits", NULL);
    expect_error("backends: {kubernetes: {image: 'ubuntu 22.04'}}\n",
                 "backends.kubernetes.image: invalid image 'ubuntu 22.04': an image reference "
                 "holds only letters, digits and . _ - / : @", NULL);
    expect_error("backends: {kubernetes: {agent_image: -x}}\n",
                 "backends.kubernetes.agent_image: invalid image '-x': an image reference "
                 "starts and ends with a letter or digit", NULL);
    expect_error("backends: {kubernetes: {image: [a]}}\n",
                 "backends.kubernetes.image: expected a container image like ubuntu:22.04, got "
                 "a list", NULL);
    expect_error("backends: {kubernetes: {gpu_resources: nvidia.com/gpu}}\n",
                 "backends.kubernetes: unknown key 'gpu_resources' (did you mean "
                 "'gpu_resource'?)", NULL);
    expect_error("backends: {kubernetes: [a]}\n",
                 "backends.kubernetes: expected a mapping (enabled, kubeconfig, context, "
                 "namespace, gpu_resource, gpu_label, image, agent_image, hosts_writable), got "
                 "a list", NULL);
    expect_error("backends:\n  kubernetes:\n    gpu_label: 'GPU type'\n",
                 "c.yaml:3:16: backends.kubernetes.gpu_label: invalid label key 'GPU type': the "
                 "name must be letters, digits, '-', '_' or '.', starting and ending with a "
                 "letter or digit", NULL);
    expect_error("backends: {kubernetes: {gpu_label: a/b/c}}\n",
                 "invalid label key 'a/b/c': expected at most one '/'", NULL);
    expect_error("backends: {kubernetes: {hosts_writable: sometimes}}\n",
                 "backends.kubernetes.hosts_writable", NULL);
    /* a label key may be unprefixed, or in a kubernetes.io domain (unlike a resource) */
    cr_assert_not_null(parse("backends: {kubernetes: {gpu_label: accelerator}}\n"));
    cr_assert_not_null(parse("backends: {kubernetes: {gpu_label: "
                             "node.kubernetes.io/instance-type}}\n"));
    cr_assert_str_eq(cfg->kubernetes.gpu_label, "node.kubernetes.io/instance-type");
}

Test(config, yaml_structure_errors)
{
    expect_error("limits: {default: {nodes: 1}\n", "c.yaml:2:1: YAML syntax error", NULL);
    expect_error("stop_grace: 1s\nstop_grace: 2s\n",
                 "c.yaml:2:1: duplicate key 'stop_grace' (first given at line 1, column 1)",
                 NULL);
    expect_error("stop_grace: 1s\n---\nstop_grace: 2s\n",
                 "c.yaml:3:1: a configuration file holds one YAML document", NULL);
}

Test(config, errors_are_collected_not_just_the_first)
{
    cr_assert_null(parse("stop_grace: x\nvolumes: {a: b}\nbackends: {local: {network: y}}\n"));
    cr_assert_eq(errs.count, 3);
    cr_assert(strstr(errs.messages[0], "c.yaml:1:"));
    cr_assert(strstr(errs.messages[1], "c.yaml:2:"));
    cr_assert(strstr(errs.messages[2], "c.yaml:3:"));
}

Test(config, host_lookups_only_warn)
{
    cr_assert_not_null(parse("admin_group: jg-no-such-group-x\nadmins: [jg-no-such-user-x]\n"
                             "volumes: {gone: /nonexistent/jg-volume}\n"));
    cr_assert_eq(errs.count, 0);
    cr_assert(has(errs.warnings, errs.n_warnings, "c.yaml:1:14: admin_group: no group "
                  "'jg-no-such-group-x'"));
    cr_assert(has(errs.warnings, errs.n_warnings, "c.yaml:2:10: admins[0]: no user "
                  "'jg-no-such-user-x'"));
    cr_assert(has(errs.warnings, errs.n_warnings, "c.yaml:3:17: volumes.gone: "
                  "'/nonexistent/jg-volume' is not a directory"));
}

/* ---- limits ------------------------------------------------------------ */

Test(config, limits_for_a_user_override_and_fall_back_to_default)
{
    cfg = jg_config_load(FIX("full.yaml"), &errs);
    cr_assert_not_null(cfg);
    const jg_user_limits_t *a = jg_config_limits_for(cfg, "alice");
    cr_assert_eq(a->running_groups, 2);
    cr_assert_eq(a->nodes, 8);
    cr_assert_eq(a->cpus, 16);
    /* bob sets only nodes (explicitly unlimited): the rest comes from default */
    const jg_user_limits_t *b = jg_config_limits_for(cfg, "bob");
    cr_assert_eq(b->nodes, JG_CONFIG_UNLIMITED);
    cr_assert_eq(b->running_groups, 10);
    cr_assert_eq(b->cpus, 128);
    const jg_user_limits_t *d = jg_config_limits_for(cfg, "dave");
    cr_assert_eq(d, &cfg->default_limits);
    cr_assert_eq(d->running_groups, 10);
    cr_assert_eq(jg_config_limits_for(cfg, NULL), &cfg->default_limits);
}

Test(config, user_limits_inherit_default_given_later_in_the_file)
{
    cr_assert_not_null(parse("limits:\n  users:\n    erin: {cpus: 0}\n"
                             "  default: {nodes: 3}\n"));
    const jg_user_limits_t *e = jg_config_limits_for(cfg, "erin");
    cr_assert_eq(e->cpus, 0);
    cr_assert_eq(e->nodes, 3);
    cr_assert_eq(e->running_groups, JG_CONFIG_UNLIMITED);
}

/* ---- admins ------------------------------------------------------------ */

static char *group_name(gid_t gid)
{
    struct group *g = getgrgid(gid);
    return g ? strdup(g->gr_name) : NULL;
}

Test(config, root_is_always_admin)
{
    cfg = jg_config_defaults();
    cr_assert(jg_config_is_admin(cfg, "root", 0, 0));
    cr_assert(jg_config_is_admin(NULL, NULL, 0, 12345));
    cr_assert_not(jg_config_is_admin(cfg, "alice", 1000, 1000));
    cr_assert_not(jg_config_is_admin(NULL, "alice", 1000, 1000));
}

Test(config, listed_users_are_admins)
{
    cfg = jg_config_load(FIX("full.yaml"), &errs);
    cr_assert_not_null(cfg);
    cr_assert(jg_config_is_admin(cfg, "alice", 1000, 1000));
    cr_assert(jg_config_is_admin(cfg, "bob", 1001, 1001));
    cr_assert_not(jg_config_is_admin(cfg, "mallory", 1002, 1002));
    cr_assert_not(jg_config_is_admin(cfg, NULL, 1002, 1002));
}

Test(config, admin_group_members_are_admins_by_primary_gid)
{
    gid_t gid = getgid();
    char *name = group_name(gid);
    if (!name)
        cr_skip_test("the process's gid %d has no group name", (int)gid);
    char *yaml = NULL;
    cr_assert(asprintf(&yaml, "admin_group: '%s'\n", name) > 0);
    cr_assert_not_null(parse(yaml));
    free(yaml);
    cr_assert(jg_config_is_admin(cfg, "jg-no-such-user-x", 54321, gid));
    cr_assert(jg_config_is_admin(cfg, NULL, 54321, gid));
    cr_assert_not(jg_config_is_admin(cfg, "jg-no-such-user-x", 54321, gid + 54321));
    free(name);
}

/* A user and a group they belong to as a supplementary member: the current
 * user's own if they have one, else the first member the group database
 * lists.  false when the host has none. */
static bool find_member(char **user, char **group)
{
    gid_t fake = 54321, groups[256];
    struct passwd *pw = getpwuid(getuid());
    int n = 256;
    if (pw && getgrouplist(pw->pw_name, fake, groups, &n) >= 0) {
        for (int i = 0; i < n; i++) {
            char *name = groups[i] != fake ? group_name(groups[i]) : NULL;
            if (name) {
                *user = strdup(pw->pw_name);
                *group = name;
                return true;
            }
        }
    }
    bool found = false;
    setgrent();
    for (struct group *g; !found && (g = getgrent());) {
        if (g->gr_mem && g->gr_mem[0] && getpwnam(g->gr_mem[0])) {
            *user = strdup(g->gr_mem[0]);
            *group = strdup(g->gr_name);
            found = true;
        }
    }
    endgrent();
    return found;
}

Test(config, admin_group_members_are_admins_by_supplementary_group)
{
    char *user = NULL, *name = NULL;
    if (!find_member(&user, &name))
        cr_skip_test("no user on this host is a supplementary member of a group");
    char *yaml = NULL;
    cr_assert(asprintf(&yaml, "admin_group: '%s'\n", name) > 0);
    cr_assert_not_null(parse(yaml));
    free(yaml);
    cr_assert(jg_config_is_admin(cfg, user, 54322, 54321), "%s in %s", user, name);
    cr_assert_not(jg_config_is_admin(cfg, "jg-no-such-user-x", 54322, 54321));
    free(user);
    free(name);
}

Test(config, missing_admin_group_makes_nobody_admin)
{
    cr_assert_not_null(parse("admin_group: jg-no-such-group-x\n"));
    cr_assert_not(jg_config_is_admin(cfg, "root-ish", 1000, getgid()));
    cr_assert(jg_config_is_admin(cfg, "root", 0, 0));
}

/* ---- description ------------------------------------------------------- */

Test(config, describe_full_file)
{
    cfg = jg_config_load(FIX("full.yaml"), &errs);
    cr_assert_not_null(cfg);
    char *d = jg_config_describe(cfg);
    const char *lines[] = {
        "config: " FIX("full.yaml") "\n",
        "default_policy: fail-fast\n",
        "admins: root, alice, bob\n",
        "admin_group: jgadmin\n",
        "stop_grace: 500ms\n",
        "  default        running_groups=10 nodes=64 cpus=128\n",
        "  user alice     running_groups=2 nodes=8 cpus=16\n",
        "  user bob       running_groups=10 nodes=unlimited cpus=128\n",
        "  local: enabled\n",
        "    capacity:  cpus 64, memory 256 GiB, accelerators T4:2 A100:8\n",
        "    max_node:  cpus 32, memory 128 GiB, accelerators = capacity\n",
        "    network:   host\n",
        "    nat:       off\n",
        "    nat_network: 172.31.240.0/20\n",
        "    cgroups:   off\n",
        "  kubernetes: disabled\n",
        "    context:   my-cluster\n",
        "    namespace: jgsched\n",
        "  shared-volume  /srv/jgsched/volumes/shared-volume\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(d, lines[i]), "missing line '%s' in:\n%s", lines[i], d);
    free(d);
}

Test(config, describe_defaults_marks_them)
{
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/config.yaml", tmpdir);
    cfg = jg_config_load(path, &errs);
    cr_assert_not_null(cfg);
    char *d = jg_config_describe(cfg);
    char first[256];
    snprintf(first, sizeof first, "config: %s (no such file: defaults)\n", path);
    const char *lines[] = {
        first,
        "default_policy: default (default)\n",
        "admins: root\n",
        "admin_group: none\n",
        "stop_grace: 5s (default)\n",
        "  default        running_groups=unlimited nodes=unlimited cpus=unlimited\n",
        "  local: enabled (default)\n",
        "    capacity:  cpus of the host, memory of the host, accelerators of the host\n",
        "    max_node:  cpus = capacity, memory = capacity, accelerators = capacity\n",
        "    network:   isolated (default)\n",
        "    nat:       on (when the daemon runs as root) (default)\n",
        "    nat_network: 10.201.0.0/16 (default)\n",
        "    cgroups:   auto (default)\n",
        "  kubernetes: disabled (default)\n",
        "volumes: none\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_expect(strstr(d, lines[i]), "missing line '%s' in:\n%s", lines[i], d);
    free(d);
}

/* ---- spec_limits ---------------------------------------------------------- */

Test(config, spec_limits_set_every_bound)
{
    cfg = parse("spec_limits:\n  max_bytes: 256KiB\n  max_depth: 32\n"
                "  max_keys_per_mapping: 200\n  max_keys: 5000\n  max_envs: 50\n"
                "  max_string: 4096\n  max_nodes_per_job: 64\n  max_nodes_per_group: 256\n");
    if (!cfg)
        dump();
    cr_assert_not_null(cfg);
    const jg_spec_limits_t *l = &cfg->spec_limits;
    cr_assert(cfg->has_spec_limits);
    cr_assert_eq(l->max_bytes, 256 * 1024);
    cr_assert_eq(l->max_depth, 32);
    cr_assert_eq(l->max_keys_per_mapping, 200);
    cr_assert_eq(l->max_keys, 5000);
    cr_assert_eq(l->max_envs, 50);
    cr_assert_eq(l->max_string, 4096);
    cr_assert_eq(l->max_nodes_per_job, 64);
    cr_assert_eq(l->max_nodes_per_group, 256);
    char *d = jg_config_describe(cfg);
    cr_assert(strstr(d, "spec_limits:\n  max_bytes=262144 max_depth=32 max_keys_per_mapping=200 "
                        "max_keys=5000\n  max_envs=50 max_string=4096 max_nodes_per_job=64 "
                        "max_nodes_per_group=256\n"), "%s", d);
    free(d);
}

Test(config, spec_limits_left_out_keep_their_defaults)
{
    cfg = parse("spec_limits: {max_nodes_per_group: 4096, max_bytes: 1MiB}\n");
    cr_assert_null(cfg, "1 MiB is above the 512 KiB ceiling");
    cr_assert(has(errs.messages, errs.count, "c.yaml:1:53: spec_limits.max_bytes: 1048576 is "
                                             "out of range (1024..524288)"));
    cfg = parse("spec_limits: {max_nodes_per_group: 4096, max_bytes: 524288}\n");
    cr_assert_not_null(cfg);
    jg_spec_limits_t d = jg_spec_limits_default();
    cr_assert_eq(cfg->spec_limits.max_nodes_per_group, 4096);
    cr_assert_eq(cfg->spec_limits.max_bytes, JG_SPEC_MAX_BYTES_CEILING);
    cr_assert_eq(cfg->spec_limits.max_depth, d.max_depth);
    cr_assert_eq(cfg->spec_limits.max_nodes_per_job, d.max_nodes_per_job);
    char *desc = jg_config_describe(cfg);
    cr_assert(strstr(desc, "spec_limits:\n"), "%s", desc);
    free(desc);
    cfg = parse("spec_limits:\n");
    cr_assert_not_null(cfg);
    cr_assert_not(cfg->has_spec_limits);
    desc = jg_config_describe(cfg);
    cr_assert(strstr(desc, "spec_limits: (defaults)\n  max_bytes=524288 max_depth=64 "
                           "max_keys_per_mapping=1024 max_keys=65536\n  max_envs=1024 "
                           "max_string=131072 max_nodes_per_job=1024 max_nodes_per_group=1024\n"),
              "%s", desc);
    free(desc);
}

Test(config, spec_limits_are_checked)
{
    expect_error("spec_limits: {max_depth: 7}\n", "c.yaml:1:26: spec_limits.max_depth: 7 is out "
                 "of range (8..256)", NULL);
    expect_error("spec_limits: {max_depth: 257}\n", "spec_limits.max_depth: 257 is out of "
                 "range (8..256)", NULL);
    expect_error("spec_limits: {max_nodes_per_job: 0}\n", "spec_limits.max_nodes_per_job: 0 is "
                 "out of range (1..1048576)", NULL);
    expect_error("spec_limits: {max_nodes_per_group: many}\n", "c.yaml:1:36: "
                 "spec_limits.max_nodes_per_group: expected an integer, got 'many'", NULL);
    expect_error("spec_limits: {max_bytes: 512GB}\n", "spec_limits.max_bytes: expected a size "
                 "(bytes, or with KiB or MiB: 512KiB), got '512GB'", NULL);
    expect_error("spec_limits: {max_bytes: 1000}\n", "spec_limits.max_bytes: 1000 is out of "
                 "range (1024..524288)", NULL);
    expect_error("spec_limits: {max_string: 600KiB}\n", "spec_limits.max_string: 614400 is out "
                 "of range (1024..524288)", NULL);
    expect_error("spec_limits: {max_node_per_group: 10}\n", "c.yaml:1:15: spec_limits: unknown "
                 "key 'max_node_per_group' (did you mean 'max_nodes_per_group'?)", NULL);
    expect_error("spec_limits: [1]\n", "c.yaml:1:14: spec_limits: expected a mapping", NULL);
    expect_error("spec_limits: {max_nodes_per_group: 10, max_nodes_per_job: 11}\n",
                 "spec_limits.max_nodes_per_job: 11 is more than max_nodes_per_group (10): no "
                 "job could have that many", NULL);
    /* the ends of each range are accepted */
    cfg = parse("spec_limits: {max_depth: 8, max_bytes: 1KiB, max_envs: 0, max_keys: 64,\n"
                "  max_keys_per_mapping: 16, max_string: 1K, max_nodes_per_job: 1,\n"
                "  max_nodes_per_group: 1}\n");
    if (!cfg)
        dump();
    cr_assert_not_null(cfg);
    cr_assert_eq(cfg->spec_limits.max_bytes, 1024);
    cr_assert_eq(cfg->spec_limits.max_envs, 0);
    cfg = parse("spec_limits: {max_depth: 256, max_bytes: 512KiB, max_keys: 4194304,\n"
                "  max_keys_per_mapping: 1048576, max_string: 512K,\n"
                "  max_nodes_per_job: 1048576, max_nodes_per_group: 1048576}\n");
    if (!cfg)
        dump();
    cr_assert_not_null(cfg);
    cr_assert_eq(cfg->spec_limits.max_string, 512 * 1024);
}

Test(config, a_config_may_list_more_users_than_a_jobgroup_may_keys)
{
    /* JobGroup bounds are for users' files; the admin's file has none but depth. */
    size_t cap = 1 << 20, len = 0;
    char *y = malloc(cap);
    cr_assert_not_null(y);
    len += (size_t)snprintf(y + len, cap - len, "limits:\n  users:\n");
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(y + len, cap - len, "    u%d: {nodes: 1}\n", i);
    jg_config_free(cfg);
    cfg = jg_config_parse(y, len, "c.yaml", &errs);
    if (!cfg)
        dump();
    cr_assert_not_null(cfg);
    cr_assert_eq(cfg->n_user_limits, 2000);
    free(y);
}

/* ---- the instance's directories ----------------------------------------- */

/* Root's CLI creates the system run_dir 0700 (for its autostart lock) before
 * the daemon runs: creating the directories must still open it to everyone,
 * or no other user reaches the socket. */
Test(config, system_run_dir_is_opened)
{
    make_tmpdir();
    char home[128], run[128], state[128];
    snprintf(home, sizeof home, "%s/home", tmpdir);
    snprintf(run, sizeof run, "%s/run", tmpdir);
    snprintf(state, sizeof state, "%s/home/state", tmpdir);
    cr_assert_eq(mkdir(run, 0700), 0);
    jg_paths_t p = {.home = home, .run_dir = run, .state_dir = state, .system = 1};
    jg_error_t err;
    int rc = jg_paths_create_dirs(&p, &err);
    struct stat st;
    int run_stat = stat(run, &st);
    rmdir(state);
    rmdir(home);
    rmdir(run);
    cr_assert_eq(rc, 0, "%s", err.text);
    cr_assert_eq(run_stat, 0);
    cr_assert_eq(st.st_mode & 07777, 0755, "run_dir mode %o", (unsigned)(st.st_mode & 07777));
}

Test(config, oversubscribe_is_off_true_or_a_bounded_factor)
{
    cfg = jg_config_defaults();
    cr_assert_eq(cfg->local.oversubscribe, 1, "off by default");
    cr_assert_not(cfg->local.has_oversubscribe);
    cr_assert_not_null(parse("backends: {local: {oversubscribe: true}}\n"));
    cr_assert_eq(cfg->local.oversubscribe, 4, "true is Slurm's OverSubscribe=FORCE count");
    cr_assert(cfg->local.has_oversubscribe);
    cr_assert_not_null(parse("backends: {local: {oversubscribe: 2.5}}\n"));
    cr_assert_eq(cfg->local.oversubscribe, 2.5);
    cr_assert_not_null(parse("backends: {local: {oversubscribe: false}}\n"));
    cr_assert_eq(cfg->local.oversubscribe, 1);
    char *text = jg_config_describe(cfg);
    cr_assert(strstr(text, "oversubscribe: off"), "%s", text);
    free(text);
    cr_assert_not_null(parse("backends: {local: {oversubscribe: 3}}\n"));
    text = jg_config_describe(cfg);
    cr_assert(strstr(text, "oversubscribe: 3 CPUs handed out per CPU"), "%s", text);
    free(text);
    expect_error("backends: {local: {oversubscribe: 0.5}}\n",
                 "c.yaml:1:35: backends.local.oversubscribe", "got '0.5'");
    expect_error("backends: {local: {oversubscribe: 65}}\n",
                 "backends.local.oversubscribe", "a factor from 1 to 64");
    expect_error("backends: {local: {oversubscribe: lots}}\n",
                 "backends.local.oversubscribe", "got 'lots'");
    expect_error("backends: {local: {oversubscribe: [2]}}\n",
                 "backends.local.oversubscribe", NULL);
    expect_error("backends: {local: {oversubscrib: 2}}\n",
                 "did you mean 'oversubscribe'", NULL);
}

/* ---- clients: connection limits (kept apart: docs/security.md) ----------- */

Test(config, clients_limits_default_and_parse)
{
    cr_assert_not_null(parse(""));
    cr_assert_eq(cfg->clients.max_connections_per_user, 64);
    cr_assert_not(cfg->clients.has_max_connections);
    cr_assert_float_eq(cfg->clients.request_timeout_s, 10.0, 1e-9);
    cr_assert_not(cfg->clients.has_request_timeout);
    char *d = jg_config_describe(cfg);
    cr_assert(strstr(d, "clients:\n  max_connections_per_user: 64 (default)\n"
                        "  request_timeout: 10s (default)\n"), "%s", d);
    free(d);

    cr_assert_not_null(parse("clients: {max_connections_per_user: 8, request_timeout: 500ms}\n"));
    cr_assert_eq(cfg->clients.max_connections_per_user, 8);
    cr_assert_float_eq(cfg->clients.request_timeout_s, 0.5, 1e-9);
    cr_assert_not_null(parse("clients: {max_connections_per_user: unlimited}\n"));
    cr_assert_eq(cfg->clients.max_connections_per_user, JG_CONFIG_UNLIMITED);
    d = jg_config_describe(cfg);
    cr_assert(strstr(d, "  max_connections_per_user: unlimited\n"), "%s", d);
    free(d);
}

Test(config, clients_limits_are_checked)
{
    expect_error("clients: {max_connections_per_user: 0}\n", "clients.max_connections_per_user",
                 "expected an integer >= 1 or unlimited, got '0'");
    expect_error("clients: {request_timeout: 0s}\n", "clients.request_timeout",
                 "invalid duration '0s'");
    expect_error("clients: {request_timeout: 2h}\n", "clients.request_timeout",
                 "too long (at most 1h)");
    expect_error("clients: {max_connection: 3}\n", "max_connection", "max_connections_per_user");
    expect_error("clients: [1]\n", "clients", "max_connections_per_user, request_timeout");
}
