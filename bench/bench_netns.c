/* bench_netns.c - how long the network of a 7-node group takes to set up and tear down.
 *
 * One round does what the local backend does for a group of 7 nodes: creates
 * the group's hub (a keeper process with its namespace and bridge), then, in 7
 * forked children at once (as launch() forks one per node), each node's own
 * network, UTS and mount namespaces with its veth pair, address, hostname,
 * /etc/hosts and /tmp; setup ends when every node reported ready.  Teardown
 * kills the 7 nodes and the keeper and waits until all are gone.  Prints the
 * median (and min / max) of N rounds (argv[1], default 15) in milliseconds.
 * As root it then does the same with NAT on: each hub also gets its uplink
 * and masquerade rule, nodes a default route; that series runs in a network
 * namespace of the bench's own, so the host's forwarding and rules are left
 * alone.
 * A benchmark, not a test: it prints figures and fails only if a step fails
 * (it needs root or unprivileged user namespaces; it says which it used).
 */
#include "jgsched/netns.h"
#include "jgsched/paths.h"

#include <errno.h>
#include <sched.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NODES 7

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* One round; fills the two times.  -1 on failure (message printed). */
static int round_trip(const jg_netns_caps_t *caps, const jg_netns_uplink_t *uplink,
                      const char *dir, double *setup, double *down)
{
    char hosts[512], tmp[NODES][512], names[NODES][32];
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    for (int i = 0; i < NODES; i++) {
        snprintf(tmp[i], sizeof tmp[i], "%s/tmp%d", dir, i);
        snprintf(names[i], sizeof names[i], "node-%d", i);
    }
    pid_t kids[NODES];
    int n_kids = 0, rc = -1;
    int pipefd[2] = {-1, -1};
    jg_netns_hub_t hub = {.pidfd = -1};
    jg_error_t err;

    double t0 = now_ms();
    char *keeper = jg_sibling_executable("jgsched-keeper");     /* both in the build directory */
    int made = keeper ? jg_netns_hub_create(keeper, caps->mode, uplink, NULL, &hub, &err) : -1;
    if (!keeper)
        jg_errprintf(&err, "cannot find jgsched-keeper next to this program");
    free(keeper);
    if (made < 0) {
        fprintf(stderr, "bench_netns: %s\n", err.text);
        goto done;
    }
    if (pipe(pipefd) < 0) {
        perror("pipe");
        goto done;
    }
    for (int i = 0; i < NODES; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            goto done;
        }
        if (pid == 0) {
            jg_netns_node_t node = {.mode = caps->mode, .own_mounts = caps->own_mounts,
                                    .hub_pidfd = hub.pidfd, .index = i, .hostname = names[i],
                                    .hosts_path = hosts, .tmp_path = tmp[i], .uid = geteuid(), .gid = getegid(),
                                    .default_route = uplink != NULL};
            char msg[256] = "";
            if (jg_netns_node_enter(&node, msg, sizeof msg) < 0) {
                char line[300];
                int len = snprintf(line, sizeof line, "node %d: %s\n", i, msg);
                (void)!write(STDERR_FILENO, line, (size_t)len);
                (void)!write(pipefd[1], "F", 1);
                _exit(1);
            }
            (void)!write(pipefd[1], "K", 1);
            for (;;)
                pause();
        }
        kids[n_kids++] = pid;
    }
    bool ok = true;
    for (int i = 0; i < NODES; i++) {
        char c = 'F';
        if (read(pipefd[0], &c, 1) != 1 || c != 'K')
            ok = false;
    }
    *setup = now_ms() - t0;
    if (!ok)
        goto done;

    double t1 = now_ms();
    for (int i = 0; i < n_kids; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < n_kids; i++)
        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    n_kids = 0;
    if (jg_netns_hub_destroy(&hub, 2000, &err) < 0) {
        fprintf(stderr, "bench_netns: %s\n", err.text);
        goto done;
    }
    *down = now_ms() - t1;
    rc = 0;
done:
    for (int i = 0; i < n_kids; i++) {
        kill(kids[i], SIGKILL);
        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    jg_netns_hub_destroy(&hub, 2000, NULL);
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    return rc;
}

/* `rounds` round trips; prints their medians.  0, or 1 if one failed. */
static int series(const jg_netns_caps_t *caps, const jg_netns_uplink_t *uplink, const char *dir,
                  int rounds, const char *what)
{
    double *setup = calloc((size_t)rounds, sizeof *setup);
    double *down = calloc((size_t)rounds, sizeof *down);
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++)
        if (round_trip(caps, uplink, dir, &setup[r], &down[r]) < 0)
            rc = 1;
    if (rc == 0) {
        qsort(setup, (size_t)rounds, sizeof *setup, cmp);
        qsort(down, (size_t)rounds, sizeof *down, cmp);
        printf("bench_netns: %d-node group network, %d rounds, mode %s%s\n", NODES, rounds,
               caps->mode == JG_NETNS_ROOT ? "root" : "user namespace", what);
        printf("  setup:    median %.2f ms (min %.2f, max %.2f)\n", setup[rounds / 2], setup[0],
               setup[rounds - 1]);
        printf("  teardown: median %.2f ms (min %.2f, max %.2f)\n", down[rounds / 2], down[0],
               down[rounds - 1]);
    }
    free(setup);
    free(down);
    return rc;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (rounds < 1)
        rounds = 1;
    jg_netns_caps_t caps;
    jg_netns_probe(&caps);
    if (caps.mode == JG_NETNS_HOST) {
        fprintf(stderr, "bench_netns: no network namespaces here (%s)\n", caps.why);
        return 1;
    }
    char dir[] = "/tmp/jg-bench-netns-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/hosts", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("127.0.0.1\tlocalhost\n", f);
        for (int i = 0; i < NODES; i++) {
            char ip[32];
            jg_netns_node_address(i, ip, sizeof ip);
            fprintf(f, "%s\tnode-%d.bench node-%d\n", ip, i, i);
        }
        fclose(f);
    }
    for (int i = 0; i < NODES; i++) {
        snprintf(path, sizeof path, "%s/tmp%d", dir, i);
        mkdir(path, 01777);
    }

    int rc = series(&caps, NULL, dir, rounds, "");
    if (rc == 0 && caps.mode == JG_NETNS_ROOT) {
        jg_netns_uplink_t up;
        jg_error_t err;
        jg_netns_uplink_parse(JG_NETNS_UPLINK_DEFAULT, &up, err.text, sizeof err.text);
        if (unshare(CLONE_NEWNET) < 0) {
            perror("bench_netns: unshare");
            rc = 1;
        } else if (jg_netns_nat_host_enable(NULL, 0, &err) < 0) {
            fprintf(stderr, "bench_netns: %s\n", err.text);
            rc = 1;
        } else {
            rc = series(&caps, &up, dir, rounds, ", with NAT (uplink + masquerade per hub)");
        }
    }
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return rc;
}
