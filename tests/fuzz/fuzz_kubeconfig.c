/* fuzz_kubeconfig.c - libFuzzer harness for the kubeconfig reader.
 *
 * A kubeconfig is the administrator's (or the pod's), not a user's, but the
 * daemon reads it as root at start and at every `kubernetes/<context>`
 * submit, so it gets the same bounds as a JobGroup file.  The harness parses
 * the input with the current-context and with a named context, and checks
 * that a result comes back exactly when no error was written, and that the
 * result is complete: a server, a namespace, absolute file paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jgsched/kubeconfig.h"

static void check(const jg_kubeconfig_t *kc, const jg_error_t *err)
{
    if (!kc) {
        if (!err->text[0]) {
            fprintf(stderr, "fuzz_kubeconfig: NULL without a message\n");
            abort();
        }
        return;
    }
    const char *paths[] = {kc->ca_file, kc->client_cert_file, kc->client_key_file,
                           kc->token_file};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (paths[i] && paths[i][0] != '/') {
            fprintf(stderr, "fuzz_kubeconfig: relative path %s\n", paths[i]);
            abort();
        }
    if (!kc->server || !kc->namespace || !kc->context || !kc->cluster) {
        fprintf(stderr, "fuzz_kubeconfig: incomplete result\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *contexts[] = {NULL, "prod"};
    for (size_t i = 0; i < 2; i++) {
        jg_error_t err = {{0}};
        jg_kubeconfig_t *kc = jg_kubeconfig_parse((const char *)data, size,
                                                  "/nonexistent/fuzz/kubeconfig", contexts[i],
                                                  &err);
        check(kc, &err);
        jg_kubeconfig_free(kc);
    }
    return 0;
}
