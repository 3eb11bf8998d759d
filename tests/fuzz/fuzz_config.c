/* fuzz_config.c - libFuzzer harness for the daemon's config.yaml reader.
 *
 * config.yaml is written by the administrator, not by users, but it is the
 * second client of the YAML reading kit in spec_yaml.c (spec_yaml.h)
 * (sizes, durations, did-you-mean, positions), and a daemon that crashes on
 * a typo in its config is a bad start.  The harness parses the input as
 * given (not NUL-terminated), then uses the result the way the daemon and
 * `jgsched infra` do: describe it, look up limits and volumes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jgsched/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jg_spec_errors_t errs = {0};
    jg_config_t *cfg = jg_config_parse((const char *)data, size, "fuzz-config.yaml", &errs);
    if ((cfg != NULL) != (errs.count == 0)) {
        fprintf(stderr, "fuzz_config: result %s with %zu errors\n", cfg ? "config" : "NULL",
                errs.count);
        abort();
    }
    if (cfg) {
        char *described = jg_config_describe(cfg);
        free(described);
        (void)jg_config_limits_for(cfg, NULL);
        for (size_t i = 0; i < cfg->n_user_limits; i++)
            (void)jg_config_limits_for(cfg, cfg->user_limits[i].user);
        for (size_t i = 0; i < cfg->n_volumes; i++)
            if (!jg_config_volume_path(cfg, cfg->volumes[i].name)) {
                fprintf(stderr, "fuzz_config: declared volume %s not found\n", cfg->volumes[i].name);
                abort();
            }
    }
    jg_config_free(cfg);
    jg_spec_errors_free(&errs);
    return 0;
}
