/* test_kubeconfig.c - reading a kubeconfig as kubectl does (every way to
 * authenticate, contexts, relative paths, base64, files that are missing or
 * unreadable, unknown context/cluster/user), the in-cluster config, and the
 * choice between them ($KUBECONFIG, ~/.kube/config, a pod).
 *
 * Each test writes its files into a fresh temporary directory, removed with
 * everything in it by the suite's fini, also when an assertion fails. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jgsched/kubeconfig.h"

static char dir[64];
static jg_kubeconfig_t *kc;
static jg_error_t err;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/jg-kubeconfig-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    memset(&err, 0, sizeof err);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("POD_NAMESPACE");
    unsetenv("KUBECONFIG");
}

static void teardown(void)
{
    jg_kubeconfig_free(kc);
    kc = NULL;
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    dir[0] = '\0';
}

TestSuite(kubeconfig, .init = setup, .fini = teardown);

/* Writes text to <dir>/name; returns the path (static buffer per call site
 * is not needed: callers copy it). */
static char *put(const char *name, const char *text)
{
    static char path[4][256];
    static int which;
    char *p = path[which++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s: %s", p, strerror(errno));
    fputs(text, f);
    fclose(f);
    return p;
}

static char *at(const char *name)
{
    static char path[4][256];
    static int which;
    char *p = path[which++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    return p;
}

static jg_kubeconfig_t *load(const char *yaml, const char *context)
{
    jg_kubeconfig_free(kc);
    kc = jg_kubeconfig_load(put("config", yaml), context, &err);
    if (!kc)
        cr_log_info("error: %s", err.text);
    return kc;
}

/* The load fails with a message that is exactly "<dir>/config" + rest. */
static void expect_error(const char *yaml, const char *context, const char *rest)
{
    cr_assert_null(load(yaml, context), "loaded, expected: %s", rest);
    char want[1024];
    snprintf(want, sizeof want, "%s/config%s", dir, rest);
    cr_assert_str_eq(err.text, want);
}

#define CLUSTER_A \
    "clusters:\n" \
    "- name: a\n" \
    "  cluster:\n" \
    "    server: https://a.example:6443\n" \
    "    certificate-authority-data: Q0EtREFUQQ==\n"

/* ---- every way to authenticate ------------------------------------------- */

Test(kubeconfig, bearer_token_inline_and_cluster_fields)
{
    cr_assert_not_null(load("apiVersion: v1\nkind: Config\npreferences: {}\n"
                            "clusters:\n"
                            "- name: a\n"
                            "  cluster:\n"
                            "    server: https://a.example:6443\n"
                            "    certificate-authority-data: Q0EtREFUQQ==\n"
                            "    tls-server-name: api.internal\n"
                            "    extensions: [{name: x, extension: {}}]\n"
                            "users: [{name: u, user: {token: s3cr3t}}]\n"
                            "contexts: [{name: ctx-a, context: {cluster: a, user: u, "
                            "namespace: team-a}}]\n"
                            "current-context: ctx-a\n", NULL));
    cr_assert_str_eq(kc->server, "https://a.example:6443");
    cr_assert_eq(kc->ca_pem_len, 7);
    cr_assert_str_eq(kc->ca_pem, "CA-DATA");
    cr_assert_null(kc->ca_file);
    cr_assert_str_eq(kc->tls_server_name, "api.internal");
    cr_assert_not(kc->insecure_skip_tls_verify);
    cr_assert_str_eq(kc->token, "s3cr3t");
    cr_assert_null(kc->token_file);
    cr_assert_null(kc->exec);
    cr_assert_str_eq(kc->context, "ctx-a");
    cr_assert_str_eq(kc->cluster, "a");
    cr_assert_str_eq(kc->user, "u");
    cr_assert_str_eq(kc->namespace, "team-a");
    cr_assert(kc->namespace_given);
    cr_assert_not(kc->in_cluster);
    cr_assert_str_eq(kc->source, at("config"));
}

Test(kubeconfig, token_file_and_ca_file_resolve_against_the_kubeconfig_dir)
{
    cr_assert_eq(mkdir(at("certs"), 0700), 0);
    put("certs/ca.crt", "-----BEGIN CERTIFICATE-----\n");
    put("token", "abc\n");
    cr_assert_not_null(load("clusters: [{name: a, cluster: {server: 'https://a:443', "
                            "certificate-authority: certs/ca.crt}}]\n"
                            "users: [{name: u, user: {tokenFile: token}}]\n"
                            "contexts: [{name: c, context: {cluster: a, user: u}}]\n"
                            "current-context: c\n", NULL));
    cr_assert_str_eq(kc->ca_file, at("certs/ca.crt"));
    cr_assert_null(kc->ca_pem);
    cr_assert_str_eq(kc->token_file, at("token"));
    cr_assert_null(kc->token);
    cr_assert_str_eq(kc->namespace, "default");
    cr_assert_not(kc->namespace_given);
}

Test(kubeconfig, relative_paths_resolve_against_the_dir_of_a_relative_kubeconfig)
{
    cr_assert_eq(mkdir(at("sub"), 0700), 0);
    put("sub/ca.crt", "x");
    put("sub/config", "clusters: [{name: a, cluster: {server: 'https://a', "
                      "certificate-authority: ca.crt}}]\n"
                      "contexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n");
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    kc = jg_kubeconfig_load("sub/config", NULL, &err);
    cr_assert_eq(chdir(cwd), 0);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert_str_eq(kc->ca_file, at("sub/ca.crt"));
    cr_assert_str_eq(kc->source, "sub/config");
    cr_assert_null(kc->user, "no user: anonymous");
}

Test(kubeconfig, client_certificate_files)
{
    put("client.crt", "CERT");
    put("client.key", "KEY");
    cr_assert_not_null(load(CLUSTER_A
                            "users:\n"
                            "- name: admin\n"
                            "  user:\n"
                            "    client-certificate: client.crt\n"
                            "    client-key: ./client.key\n"
                            "contexts: [{name: c, context: {cluster: a, user: admin}}]\n"
                            "current-context: c\n", NULL));
    cr_assert_str_eq(kc->client_cert_file, at("client.crt"));
    cr_assert_str_eq(kc->client_key_file, at("./client.key"));
    cr_assert_null(kc->client_cert_pem);
    cr_assert_null(kc->token);
}

Test(kubeconfig, client_certificate_data_is_decoded)
{
    /* "CERT\n" and "KEY\n", the second split over two lines as some tools write it */
    cr_assert_not_null(load(CLUSTER_A
                            "users:\n"
                            "- name: admin\n"
                            "  user:\n"
                            "    client-certificate-data: Q0VSVAo=\n"
                            "    client-key-data: |\n"
                            "      S0VZ\n"
                            "      Cg==\n"
                            "contexts: [{name: c, context: {cluster: a, user: admin}}]\n"
                            "current-context: c\n", NULL));
    cr_assert_eq(kc->client_cert_pem_len, 5);
    cr_assert_str_eq(kc->client_cert_pem, "CERT\n");
    cr_assert_eq(kc->client_key_pem_len, 4);
    cr_assert_str_eq(kc->client_key_pem, "KEY\n");
}

Test(kubeconfig, exec_plugin_v1)
{
    cr_assert_not_null(load(CLUSTER_A
                            "users:\n"
                            "- name: eks\n"
                            "  user:\n"
                            "    exec:\n"
                            "      apiVersion: client.authentication.k8s.io/v1\n"
                            "      command: aws\n"
                            "      args: [eks, get-token, --cluster-name, prod, '']\n"
                            "      env:\n"
                            "      - name: AWS_PROFILE\n"
                            "        value: prod\n"
                            "      - {name: EMPTY}\n"
                            "      installHint: install the aws CLI\n"
                            "      provideClusterInfo: true\n"
                            "      interactiveMode: Never\n"
                            "contexts: [{name: c, context: {cluster: a, user: eks}}]\n"
                            "current-context: c\n", NULL));
    jg_kube_exec_t *x = kc->exec;
    cr_assert_not_null(x);
    cr_assert_str_eq(x->api_version, JG_KUBE_EXEC_V1);
    cr_assert_str_eq(x->command, "aws", "a PATH command stays as written");
    cr_assert_eq(x->n_args, 5);
    cr_assert_str_eq(x->args[0], "eks");
    cr_assert_str_eq(x->args[3], "prod");
    cr_assert_str_eq(x->args[4], "");
    cr_assert_eq(x->n_env, 2);
    cr_assert_str_eq(x->env[0].name, "AWS_PROFILE");
    cr_assert_str_eq(x->env[0].value, "prod");
    cr_assert_str_eq(x->env[1].name, "EMPTY");
    cr_assert_str_eq(x->env[1].value, "");
    cr_assert_str_eq(x->install_hint, "install the aws CLI");
    cr_assert(x->provide_cluster_info);
    cr_assert_str_eq(x->interactive_mode, "Never");
    cr_assert_null(kc->token);
}

Test(kubeconfig, exec_plugin_v1beta1_defaults_interactive_mode_and_resolves_a_path_command)
{
    cr_assert_not_null(load(CLUSTER_A
                            "users: [{name: u, user: {exec: {apiVersion: "
                            "client.authentication.k8s.io/v1beta1, command: bin/get-token}}}]\n"
                            "contexts: [{name: c, context: {cluster: a, user: u}}]\n"
                            "current-context: c\n", NULL));
    cr_assert_str_eq(kc->exec->api_version, JG_KUBE_EXEC_V1BETA1);
    cr_assert_str_eq(kc->exec->interactive_mode, "IfAvailable");
    cr_assert_str_eq(kc->exec->command, at("bin/get-token"));
    cr_assert_eq(kc->exec->n_args, 0);
    cr_assert_not(kc->exec->provide_cluster_info);
}

Test(kubeconfig, insecure_skip_tls_verify)
{
    cr_assert_not_null(load("clusters: [{name: a, cluster: {server: 'https://1.2.3.4', "
                            "insecure-skip-tls-verify: true}}]\n"
                            "contexts: [{name: c, context: {cluster: a}}]\n"
                            "current-context: c\n", NULL));
    cr_assert(kc->insecure_skip_tls_verify);
    cr_assert_null(kc->ca_file);
    cr_assert_null(kc->ca_pem);
}

Test(kubeconfig, exec_plugin_errors)
{
    expect_error(CLUSTER_A "users: [{name: u, user: {exec: {apiVersion: "
                 "client.authentication.k8s.io/v1, command: x}}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:32: users[0].user.exec.interactiveMode: "
                 "client.authentication.k8s.io/v1 needs interactiveMode (Never or IfAvailable)");
    expect_error(CLUSTER_A "users: [{name: u, user: {exec: {apiVersion: "
                 "client.authentication.k8s.io/v1alpha1, command: x}}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:45: users[0].user.exec.apiVersion: "
                 "'client.authentication.k8s.io/v1alpha1' is not supported (use "
                 "client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)");
    expect_error(CLUSTER_A "users: [{name: u, user: {exec: {apiVersion: "
                 "client.authentication.k8s.io/v1, command: x, interactiveMode: Always}}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:107: users[0].user.exec.interactiveMode: Always needs a terminal, "
                 "and the daemon runs the plugin without one (use Never or IfAvailable)");
    expect_error(CLUSTER_A "users: [{name: u, user: {exec: {apiVersion: "
                 "client.authentication.k8s.io/v1beta1, env: [{value: x}]}}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:89: users[0].user.exec.env[0]: an exec env variable needs a name");
    expect_error(CLUSTER_A "users: [{name: u, user: {exec: {apiVersion: "
                 "client.authentication.k8s.io/v1beta1}}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:32: users[0].user.exec.command: an exec plugin needs a command");
}

Test(kubeconfig, refused_user_settings)
{
    expect_error(CLUSTER_A "users: [{name: u, user: {auth-provider: {name: gcp}}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:41: users[0].user.auth-provider: auth-provider plugins are not "
                 "supported (kubectl removed them): use an exec plugin");
    expect_error(CLUSTER_A "users: [{name: u, user: {username: x, password: y}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:49: users[0].user: username/password (basic authentication) is not "
                 "supported: use a token, a client certificate or an exec plugin");
}

/* ---- contexts -------------------------------------------------------------- */

#define TWO_CONTEXTS \
    "clusters:\n" \
    "- {name: a, cluster: {server: 'https://a'}}\n" \
    "- {name: b, cluster: {server: 'https://b'}}\n" \
    "users: [{name: ua, user: {token: ta}}, {name: ub, user: {token: tb}}]\n" \
    "contexts:\n" \
    "- {name: ctx-a, context: {cluster: a, user: ua}}\n" \
    "- {name: prod, context: {cluster: b, user: ub, namespace: prod-ns}}\n"

Test(kubeconfig, current_context_is_the_default_and_another_can_be_named)
{
    cr_assert_not_null(load(TWO_CONTEXTS "current-context: ctx-a\n", NULL));
    cr_assert_str_eq(kc->server, "https://a");
    cr_assert_str_eq(kc->token, "ta");
    cr_assert_str_eq(kc->namespace, "default");
    cr_assert_not_null(load(TWO_CONTEXTS "current-context: ctx-a\n", "prod"));
    cr_assert_str_eq(kc->context, "prod");
    cr_assert_str_eq(kc->server, "https://b");
    cr_assert_str_eq(kc->token, "tb");
    cr_assert_str_eq(kc->namespace, "prod-ns");
}

Test(kubeconfig, an_empty_context_name_means_the_current_one)
{
    cr_assert_not_null(load(TWO_CONTEXTS "current-context: prod\n", ""));
    cr_assert_str_eq(kc->context, "prod");
}

Test(kubeconfig, entries_without_their_body)
{
    expect_error("clusters: [{name: a}]\ncontexts: [{name: c, context: {cluster: a}}]\n"
                 "current-context: c\n", NULL, ":1:19: clusters[0].cluster.server: cluster "
                 "\"a\" has no server (add server: https://<host>:<port>)");
    expect_error("clusters: [{name: a, cluster: {server: x}}]\ncontexts: [{name: c}]\n"
                 "current-context: c\n", NULL, ":2:19: contexts[0].context: context \"c\" "
                 "names no cluster");
    /* a user without a body is a user without credentials */
    cr_assert_not_null(load("clusters: [{name: a, cluster: {server: x}}]\nusers: [{name: u}]\n"
                            "contexts: [{name: c, context: {cluster: a, user: u}}]\n"
                            "current-context: c\n", NULL));
    cr_assert_str_eq(kc->user, "u");
    cr_assert_null(kc->token);
    cr_assert_null(kc->exec);
}

Test(kubeconfig, unknown_context_lists_the_contexts)
{
    expect_error(TWO_CONTEXTS "current-context: ctx-a\n", "ctx-b",
                 ": context \"ctx-b\" not found (contexts: ctx-a, prod)");
    expect_error(TWO_CONTEXTS "current-context: gone\n", NULL,
                 ":8:18: current-context: context \"gone\" not found (contexts: ctx-a, prod)");
    expect_error(TWO_CONTEXTS, NULL, ": no context selected: current-context is not set and "
                 "none was named (contexts: ctx-a, prod)");
    expect_error("", NULL, ": no context selected: current-context is not set and none was "
                 "named (contexts: none in the file)");
}

Test(kubeconfig, unknown_cluster_or_user)
{
    expect_error(TWO_CONTEXTS "- {name: bad, context: {cluster: c, user: ua}}\n", "bad",
                 ":8:34: contexts[2].context.cluster: cluster \"c\" not found (clusters: a, b)");
    expect_error(TWO_CONTEXTS "- {name: bad, context: {cluster: a, user: uc}}\n", "bad",
                 ":8:43: contexts[2].context.user: user \"uc\" not found (users: ua, ub)");
    expect_error(TWO_CONTEXTS "- {name: bad, context: {user: ua}}\n", "bad",
                 ":8:24: contexts[2].context: context \"bad\" names no cluster");
    expect_error(TWO_CONTEXTS "- {name: bad, context: {cluster: a, namespace: Team_A}}\n",
                 "bad", ":8:48: contexts[2].context.namespace: 'Team_A' is not a valid "
                 "namespace: it contains uppercase letter 'T' (use lowercase letters, digits "
                 "and '-')");
}

Test(kubeconfig, a_problem_of_an_unused_entry_does_not_matter_unless_kubectl_refuses_it_too)
{
    /* kubectl checks only the selected context for use ... */
    cr_assert_not_null(load(TWO_CONTEXTS "- {name: bad, context: {cluster: nowhere}}\n"
                            "current-context: ctx-a\n", NULL));
    /* ... but decodes every *-data field of the file. */
    expect_error("clusters:\n- {name: a, cluster: {server: 'https://a'}}\n"
                 "- {name: z, cluster: {certificate-authority-data: '!!'}}\n"
                 "contexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n", NULL,
                 ":3:51: clusters[1].cluster.certificate-authority-data: not valid base64");
}

Test(kubeconfig, duplicate_names_are_refused)
{
    expect_error("clusters:\n- {name: a, cluster: {server: x}}\n- {name: a, cluster: {server: y}}\n"
                 "contexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n", NULL,
                 ":3:10: clusters[1]: duplicate cluster name 'a' (also clusters[0])");
}

/* ---- values and files ------------------------------------------------------- */

Test(kubeconfig, base64_errors_name_the_field)
{
    expect_error(CLUSTER_A "users:\n- name: u\n  user:\n    client-certificate-data: Q0VSVAo=\n"
                 "    client-key-data: not*base64\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":10:22: users[0].user.client-key-data: not valid base64");
    expect_error("clusters: [{name: a, cluster: {server: x, certificate-authority-data: "
                 "Q0E}}]\ncontexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n",
                 NULL, ":1:71: clusters[0].cluster.certificate-authority-data: not valid base64");
    expect_error("clusters: [{name: a, cluster: {server: x, certificate-authority-data: "
                 "Q0E=Q0E=}}]\ncontexts: [{name: c, context: {cluster: a}}]\n"
                 "current-context: c\n",
                 NULL, ":1:71: clusters[0].cluster.certificate-authority-data: not valid base64");
}

Test(kubeconfig, file_and_data_together_and_a_certificate_without_its_key)
{
    put("ca.crt", "x");
    expect_error("clusters: [{name: a, cluster: {server: x, certificate-authority: ca.crt, "
                 "certificate-authority-data: Q0E=}}]\n"
                 "contexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n", NULL,
                 ":1:102: clusters[0].cluster.certificate-authority-data: "
                 "certificate-authority is given too; keep one");
    expect_error(CLUSTER_A "users: [{name: u, user: {client-certificate-data: Q0E=}}]\n"
                 "contexts: [{name: c, context: {cluster: a, user: u}}]\ncurrent-context: c\n",
                 NULL, ":6:51: users[0].user.client-certificate-data: a client certificate "
                 "needs its key (client-key or client-key-data)");
    expect_error("clusters: [{name: a, cluster: {server: x, certificate-authority-data: Q0E=, "
                 "insecure-skip-tls-verify: true}}]\n"
                 "contexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n", NULL,
                 ":1:71: clusters[0].cluster.certificate-authority-data: a certificate "
                 "authority with insecure-skip-tls-verify: true is not allowed (kubectl "
                 "refuses it too); keep one");
    expect_error("clusters: [{name: a, cluster: {certificate-authority-data: Q0E=}}]\n"
                 "contexts: [{name: c, context: {cluster: a}}]\ncurrent-context: c\n", NULL,
                 ":1:31: clusters[0].cluster.server: cluster \"a\" has no server (add "
                 "server: https://<host>:<port>)");
}

Test(kubeconfig, files_it_names_must_be_readable)
{
    char want[512];
    cr_assert_null(load("clusters: [{name: a, cluster: {server: x, certificate-authority: "
                        "missing.crt}}]\ncontexts: [{name: c, context: {cluster: a}}]\n"
                        "current-context: c\n", NULL));
    snprintf(want, sizeof want, "%s/config:1:66: clusters[0].cluster.certificate-authority: "
             "cannot read %s/missing.crt: No such file or directory", dir, dir);
    cr_assert_str_eq(err.text, want);
    cr_assert_eq(mkdir(at("key.d"), 0700), 0);
    put("c.crt", "x");
    cr_assert_null(load(CLUSTER_A "users: [{name: u, user: {client-certificate: c.crt, "
                        "client-key: key.d}}]\n"
                        "contexts: [{name: c, context: {cluster: a, user: u}}]\n"
                        "current-context: c\n", NULL));
    snprintf(want, sizeof want, "%s/config:6:65: users[0].user.client-key: cannot read "
             "%s/key.d: not a regular file", dir, dir);
    cr_assert_str_eq(err.text, want);
}

Test(kubeconfig, missing_or_unreadable_kubeconfig)
{
    char want[512];
    cr_assert_null(jg_kubeconfig_load(at("nope"), NULL, &err));
    snprintf(want, sizeof want, "%s/nope: cannot read: No such file or directory", dir);
    cr_assert_str_eq(err.text, want);
    cr_assert_null(jg_kubeconfig_load(dir, NULL, &err));
    snprintf(want, sizeof want, "%s: cannot read: not a regular file", dir);
    cr_assert_str_eq(err.text, want);
    /* A FIFO is never opened for a blocking read. */
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    cr_assert_null(jg_kubeconfig_load(at("fifo"), NULL, &err));
    snprintf(want, sizeof want, "%s/fifo: cannot read: not a regular file", dir);
    cr_assert_str_eq(err.text, want);
}

Test(kubeconfig, wrong_shapes_and_syntax)
{
    expect_error("- a\n", NULL, ":1:1: a kubeconfig is a mapping (clusters, users, contexts, "
                 "current-context), got a list");
    expect_error("clusters: {a: b}\n", NULL, ":1:11: clusters: expected a list of {name, "
                 "cluster}, got a mapping");
    expect_error("clusters: [{cluster: {server: x}}]\n", NULL,
                 ":1:12: clusters[0]: this cluster has no name");
    expect_error("clusters: [{name: a, cluster: {server: x, insecure-skip-tls-verify: maybe}}]"
                 "\n", NULL, ":1:69: clusters[0].cluster.insecure-skip-tls-verify: expected "
                 "true or false, got 'maybe'");
    expect_error("clusters: [\n", NULL, ":2:1: YAML syntax error: did not find expected node "
                 "content while parsing a flow node started at line 2, column 1");
    expect_error("a: 1\n---\nb: 2\n", NULL, ":3:1: a kubeconfig holds one YAML document; this "
                 "is a second one");
}

Test(kubeconfig, the_spec_bounds_apply)
{
    char deep[300] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    cr_assert_null(load(deep, NULL));
    cr_assert(strstr(err.text, "nested more than 64 levels deep"), "%s", err.text);
    size_t big = 600 * 1024;
    char *text = malloc(big + 1);
    memset(text, '#', big);
    text[big] = '\0';
    cr_assert_null(load(text, NULL));
    free(text);
    cr_assert(strstr(err.text, "over the limit of 512 KiB"), "%s", err.text);
    /* A long certificate is fine: strings may fill the file. */
    size_t n = 200 * 1024;
    char *yaml = malloc(n + 200);
    int o = sprintf(yaml, "clusters: [{name: a, cluster: {server: x, "
                    "certificate-authority-data: ");
    memset(yaml + o, 'A', n);
    sprintf(yaml + o + n, "}}]\ncontexts: [{name: c, context: {cluster: a}}]\n"
            "current-context: c\n");
    cr_assert_not_null(load(yaml, NULL));
    free(yaml);
    cr_assert_eq(kc->ca_pem_len, n / 4 * 3);
}

/* ---- in-cluster and the choice of file -------------------------------------- */

static void service_account(bool with_namespace)
{
    cr_assert_eq(mkdir(at("sa"), 0700), 0);
    put("sa/token", "eyJ...\n");
    put("sa/ca.crt", "-----BEGIN CERTIFICATE-----\n");
    if (with_namespace)
        put("sa/namespace", "team-b\n");
}

Test(kubeconfig, in_cluster)
{
    service_account(true);
    cr_assert_null(jg_kubeconfig_in_cluster(at("sa"), &err));
    cr_assert_str_eq(err.text, "in-cluster config: KUBERNETES_SERVICE_HOST and "
                     "KUBERNETES_SERVICE_PORT must be set (is this running in a pod?)");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kc = jg_kubeconfig_in_cluster(at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert(kc->in_cluster);
    cr_assert_str_eq(kc->source, "in-cluster");
    cr_assert_str_eq(kc->server, "https://10.96.0.1:443");
    cr_assert_str_eq(kc->token_file, at("sa/token"));
    cr_assert_null(kc->token, "read before each use: it rotates");
    cr_assert_str_eq(kc->ca_file, at("sa/ca.crt"));
    cr_assert_str_eq(kc->namespace, "team-b");
    cr_assert(kc->namespace_given);
    cr_assert_null(kc->context);
    jg_kubeconfig_free(kc);

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("POD_NAMESPACE", "from-env", 1);
    kc = jg_kubeconfig_in_cluster(at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert_str_eq(kc->server, "https://[fd00::1]:443");
    cr_assert_str_eq(kc->namespace, "from-env");
}

Test(kubeconfig, in_cluster_without_namespace_or_token)
{
    service_account(false);
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kc = jg_kubeconfig_in_cluster(at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert_str_eq(kc->namespace, "default");
    cr_assert_not(kc->namespace_given);
    jg_kubeconfig_free(kc);
    kc = NULL;
    cr_assert_eq(unlink(at("sa/token")), 0);
    cr_assert_null(jg_kubeconfig_in_cluster(at("sa"), &err));
    char want[512];
    snprintf(want, sizeof want, "in-cluster config: cannot read the service account token "
             "%s/sa/token: No such file or directory", dir);
    cr_assert_str_eq(err.text, want);
}

Test(kubeconfig, default_path)
{
    char *p = jg_kubeconfig_default_path("/a/one:/b/two", "/home/x");
    cr_assert_str_eq(p, "/a/one");
    free(p);
    p = jg_kubeconfig_default_path("::/b/two", "/home/x");
    cr_assert_str_eq(p, "/b/two");
    free(p);
    p = jg_kubeconfig_default_path("", "/home/x");
    cr_assert_str_eq(p, "/home/x/.kube/config");
    free(p);
    p = jg_kubeconfig_default_path(NULL, "/root");
    cr_assert_str_eq(p, "/root/.kube/config");
    free(p);
    cr_assert_null(jg_kubeconfig_default_path(NULL, NULL));
}

Test(kubeconfig, resolve_follows_kubectl)
{
    const char *saved_home = getenv("HOME");
    char *home = saved_home ? strdup(saved_home) : NULL;
    service_account(true);
    put("env-config", TWO_CONTEXTS "current-context: prod\n");
    cr_assert_eq(mkdir(at("home"), 0700), 0);
    setenv("HOME", at("home"), 1);

    /* An explicit path wins over everything. */
    setenv("KUBECONFIG", at("nothing-here"), 1);
    kc = jg_kubeconfig_resolve(at("env-config"), "ctx-a", at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert_str_eq(kc->context, "ctx-a");
    jg_kubeconfig_free(kc);

    /* $KUBECONFIG's first file. */
    char list[600];
    snprintf(list, sizeof list, "%s:%s", at("env-config"), at("nothing-here"));
    setenv("KUBECONFIG", list, 1);
    kc = jg_kubeconfig_resolve(NULL, NULL, at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert_str_eq(kc->context, "prod");
    jg_kubeconfig_free(kc);
    kc = NULL;

    /* Neither, in a pod: in-cluster. */
    unsetenv("KUBECONFIG");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kc = jg_kubeconfig_resolve(NULL, NULL, at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert(kc->in_cluster);
    jg_kubeconfig_free(kc);
    kc = NULL;
    cr_assert_null(jg_kubeconfig_resolve(NULL, "prod", at("sa"), &err));
    cr_assert_str_eq(err.text, "in-cluster config: it has no contexts, and context \"prod\" "
                     "was asked for (give a kubeconfig that has it)");

    /* ~/.kube/config, in a pod or not. */
    cr_assert_eq(mkdir(at("home/.kube"), 0700), 0);
    put("home/.kube/config", TWO_CONTEXTS "current-context: ctx-a\n");
    kc = jg_kubeconfig_resolve(NULL, NULL, at("sa"), &err);
    cr_assert_not_null(kc, "%s", err.text);
    cr_assert_not(kc->in_cluster);
    cr_assert_str_eq(kc->source, at("home/.kube/config"));
    jg_kubeconfig_free(kc);
    kc = NULL;

    /* Outside a pod with no file: the file's error. */
    unsetenv("KUBERNETES_SERVICE_HOST");
    cr_assert_eq(unlink(at("home/.kube/config")), 0);
    cr_assert_null(jg_kubeconfig_resolve(NULL, NULL, at("sa"), &err));
    char want[512];
    snprintf(want, sizeof want, "%s/home/.kube/config: cannot read: No such file or directory",
             dir);
    cr_assert_str_eq(err.text, want);
    if (home)
        setenv("HOME", home, 1);
    free(home);
}
