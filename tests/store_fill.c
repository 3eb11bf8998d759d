/* store_fill.c - fills a stopped instance's store with many ended groups, fast,
 * through the store API (one transaction), for the tests and benchmarks of a
 * queue at 100,000 groups (tests/integration/queue_scale.sh, bench/bench_queue.sh).
 *
 * usage: store_fill STORE_FILE COUNT [RECENT]
 *
 * Group i (1-based, in order) is owned by the caller's uid, user "bob" when
 * i % 10 == 0 and "alice" otherwise, named "rare" when i % 1000 == 0 and
 * "fill-<i>" otherwise, FAILED when i % 100 == 1 and SUCCEEDED otherwise.
 * The last RECENT groups (default 0) ended a minute ago, the others two days
 * ago, so the default `queue` view shows exactly RECENT of them.  Each has one
 * job of one node and a real spec, so `show` works on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "jgsched/spec.h"
#include "jgsched/store.h"

static const char yaml[] = "---\nname: fill\nexecution: parallel\n---\nname: work\nrun: \"true\"\n";

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s STORE_FILE COUNT [RECENT]\n", argv[0]);
        return 2;
    }
    long count = atol(argv[2]), recent = argc > 3 ? atol(argv[3]) : 0;
    jg_spec_errors_t errs = {0};
    jg_group_spec_t *spec = jg_spec_parse(yaml, strlen(yaml), "fill.yaml", &errs);
    if (!spec) {
        fprintf(stderr, "%s\n", errs.count ? errs.messages[0] : "spec parse failed");
        return 1;
    }
    jg_spec_errors_free(&errs);
    jg_error_t err;
    jg_store_t *s = jg_store_open(argv[1], &err);
    if (!s) {
        fprintf(stderr, "%s\n", err.text);
        return 1;
    }
    int64_t now = now_us(), long_ago = now - 2LL * 86400 * 1000000, lately = now - 60000000;
    int rc = jg_store_begin(s, &err);
    for (long i = 1; rc == 0 && i <= count; i++) {
        char name[32];
        if (i % 1000 == 0)
            snprintf(name, sizeof name, "rare");
        else
            snprintf(name, sizeof name, "fill-%ld", i);
        free(spec->name);
        spec->name = strdup(name);
        char *json = jg_spec_to_json(spec);
        int64_t id, ended = i > count - recent ? lately : long_ago;
        rc = jg_store_add_group(s, spec, json, getuid(), getgid(), i % 10 == 0 ? "bob" : "alice",
                                ended - 1000000, &id, &err);
        free(json);
        jg_state_t st = i % 100 == 1 ? JG_FAILED : JG_SUCCEEDED;
        if (rc == 0)
            rc = jg_store_set_job_state(s, id, 0, st, "", ended, &err);
        if (rc == 0)
            rc = jg_store_set_group_state(s, id, st, st == JG_FAILED ? "job work failed" : "",
                                          ended, &err);
    }
    if (rc == 0)
        rc = jg_store_commit(s, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.text);
    jg_spec_free(spec);
    jg_store_close(s);
    return rc < 0 ? 1 : 0;
}
