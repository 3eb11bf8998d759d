/* test_netns.c - the namespaces a local node lives in (src/netns.c).
 *
 * The pure parts (addresses, indexes, the hosts file) always run.  The rest
 * needs namespaces: as root they are made in the host's user namespace, and
 * one test drops to `nobody` to check the unprivileged (user namespace) path.
 * Nodes are forked children of the test that enter their namespaces and then
 * run a small C check (listen, connect, read /etc/hosts), reporting through a
 * pipe; fini kills every child and keeper and removes the temporary
 * directory, whatever happened.
 */
#include <criterion/criterion.h>

#include "jgsched/fsutil.h"
#include "jgsched/netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_KIDS 32
#define PORT 7000

static char dir[128];
static pid_t kids[MAX_KIDS];
static int n_kids;
static jg_netns_hub_t hubs[8];
static bool nodes_route_out;        /* node(): default route through the hub (NAT tests) */
static int n_hubs;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/jg-netns-XXXXXX");
    cr_assert(mkdtemp(dir));
    chmod(dir, 0755);
    n_kids = 0;
    n_hubs = 0;
}

static void teardown(void)
{
    for (int i = 0; i < n_kids; i++) {
        kill(kids[i], SIGKILL);
        while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < n_hubs; i++)
        jg_netns_hub_destroy(&hubs[i], 2000, NULL);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(netns, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------ */

static jg_group_spec_t *make_spec(void)
{
    static jg_job_spec_t jobs[2];
    static jg_group_spec_t spec;
    memset(jobs, 0, sizeof jobs);
    jobs[0].name = "trainer";
    jobs[0].num_nodes = 2;
    jobs[1].name = "replay-buffer";
    jobs[1].num_nodes = 1;
    spec = (jg_group_spec_t){.name = "rl", .jobs = jobs, .n_jobs = 2};
    return &spec;
}

static void need_namespaces(jg_netns_caps_t *caps)
{
    jg_netns_probe(caps);
    if (caps->mode == JG_NETNS_HOST)
        cr_skip_test("no network namespaces here: %s", caps->why);
}

/* The keeper program the hubs are made by (tests/meson.build sets it). */
static const char *keeper_exe(void)
{
    const char *k = getenv("JGSCHED_KEEPER");
    return k && *k ? k : "jgsched-keeper-not-set";
}

static jg_netns_hub_t *new_hub(jg_netns_mode_t mode)
{
    cr_assert_lt(n_hubs, 8);
    jg_error_t err;
    cr_assert_eq(jg_netns_hub_create(keeper_exe(), mode, NULL, NULL, &hubs[n_hubs], &err), 0, "%s", err.text);
    return &hubs[n_hubs++];
}

static jg_netns_hub_t *new_hub_up(const jg_netns_uplink_t *up, jg_error_t *err)
{
    cr_assert_lt(n_hubs, 8);
    if (jg_netns_hub_create(keeper_exe(), JG_NETNS_ROOT, up, NULL, &hubs[n_hubs], err) < 0)
        return NULL;
    return &hubs[n_hubs++];
}

typedef int (*check_f)(int index, void *arg);

/* Forks a node child: it enters (hub, index) and runs check; the result (0
 * ok, else a code) is written as one byte to *result_fd's pipe; stay: the
 * child lives on (a server) until killed. */
static pid_t node(jg_netns_mode_t mode, const jg_netns_hub_t *hub, int index, check_f check,
                  void *arg, bool stay, int *result_fd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char name[32], tmp[256], hosts[256];
    snprintf(name, sizeof name, "node-%d", index);
    snprintf(tmp, sizeof tmp, "%s/tmp-%d-%d", dir, hub ? hub->pid : 0, index);
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    mkdir(tmp, 01777);
    chmod(tmp, 01777);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        jg_netns_node_t n = {.mode = mode, .own_mounts = true,
                             .hub_pidfd = hub ? hub->pidfd : -1, .index = index,
                             .hostname = name, .hosts_path = access(hosts, F_OK) == 0 ? hosts : NULL,
                             .tmp_path = tmp, .keep_path = dir, .uid = geteuid(), .gid = getegid(),
                             .default_route = nodes_route_out};
        char msg[256];
        unsigned char code = 0;
        if (jg_netns_node_enter(&n, msg, sizeof msg) < 0) {
            fprintf(stderr, "node %d: %s\n", index, msg);
            code = 200;
        } else if (check) {
            code = (unsigned char)check(index, arg);
        }
        (void)!write(p[1], &code, 1);
        if (stay && code == 0)
            for (;;)
                pause();
        _exit(code);
    }
    close(p[1]);
    cr_assert_lt(n_kids, MAX_KIDS);
    kids[n_kids++] = pid;
    *result_fd = p[0];
    return pid;
}

/* The byte a node child reported (-1 if it died without one). */
static int result(int fd)
{
    unsigned char c;
    ssize_t n = read(fd, &c, 1);
    close(fd);
    return n == 1 ? c : -1;
}

static int listen_on(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 8) < 0)
        return -1;
    return s;
}

/* 0 if a TCP connection to ip:port succeeds within ms. */
static int try_connect(const char *ip, int port, int ms)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    int rc = connect(s, (struct sockaddr *)&a, sizeof a);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = s, .events = POLLOUT};
        int e = 0;
        socklen_t l = sizeof e;
        rc = poll(&pfd, 1, ms) == 1 && getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &l) == 0 && e == 0
                 ? 0
                 : -1;
    }
    close(s);
    return rc;
}

/* A server node: listens on PORT (the same port in every node). */
static int serve(int index, void *arg)
{
    (void)index;
    (void)arg;
    static int s;
    s = listen_on(PORT);
    return s < 0 ? 1 : 0;
}

/* A client node: reaches every address in arg (NULL-terminated) on PORT. */
static int reach_all(int index, void *arg)
{
    (void)index;
    for (const char **ip = arg; *ip; ip++)
        if (try_connect(*ip, PORT, 2000) < 0)
            return 10;
    return 0;
}

static int reach_none(int index, void *arg)
{
    (void)index;
    for (const char **ip = arg; *ip; ip++)
        if (try_connect(*ip, PORT, 300) == 0)
            return 11;
    return 0;
}

/* ---- pure parts --------------------------------------------------------- */

Test(netns, addresses_follow_the_node_index)
{
    char ip[32];
    cr_assert_eq(jg_netns_node_address(0, ip, sizeof ip), 0);
    cr_assert_str_eq(ip, "10.200.0.2");
    cr_assert_eq(jg_netns_node_address(253, ip, sizeof ip), 0);
    cr_assert_str_eq(ip, "10.200.0.255");
    cr_assert_eq(jg_netns_node_address(254, ip, sizeof ip), 0);
    cr_assert_str_eq(ip, "10.200.1.0");
    cr_assert_eq(jg_netns_node_address(-1, ip, sizeof ip), -1);
    cr_assert_eq(jg_netns_node_address(JG_NETNS_MAX_NODES, ip, sizeof ip), -1);
    cr_assert_eq(jg_netns_node_address(0, ip, 4), -1, "a short buffer is an error");

    jg_group_spec_t *spec = make_spec();
    cr_assert_eq(jg_netns_node_index(spec, 0, 0), 0);
    cr_assert_eq(jg_netns_node_index(spec, 0, 1), 1);
    cr_assert_eq(jg_netns_node_index(spec, 1, 0), 2);
    cr_assert_eq(jg_netns_node_index(spec, 1, 1), -1);
    cr_assert_eq(jg_netns_node_index(spec, 2, 0), -1);
    cr_assert_eq(jg_netns_node_index(spec, -1, 0), -1);
}

Test(netns, hosts_file_names_every_node_with_and_without_its_own_address)
{
    char *h = jg_netns_hosts(make_spec(), true);
    cr_assert(strstr(h, "127.0.0.1\tlocalhost\n"), "%s", h);
    cr_assert(strstr(h, "::1\tlocalhost"), "%s", h);
    cr_assert(strstr(h, "10.200.0.2\ttrainer-0.rl trainer-0\n"), "%s", h);
    cr_assert(strstr(h, "10.200.0.3\ttrainer-1.rl trainer-1\n"), "%s", h);
    cr_assert(strstr(h, "10.200.0.4\treplay-buffer-0.rl replay-buffer-0\n"), "%s", h);
    free(h);
    h = jg_netns_hosts(make_spec(), false);
    cr_assert(strstr(h, "127.0.0.1\ttrainer-1.rl trainer-1\n"), "%s", h);
    cr_assert_null(strstr(h, "10.200."), "%s", h);
    free(h);
}

Test(netns, uplink_network_is_parsed_and_checked)
{
    jg_netns_uplink_t up;
    char why[200];
    cr_assert_eq(jg_netns_uplink_parse(JG_NETNS_UPLINK_DEFAULT, &up, why, sizeof why), 0, "%s", why);
    cr_assert_eq(up.network, 0x0ac90000u);
    cr_assert_eq(up.prefix, 16);
    cr_assert_eq(jg_netns_uplink_parse("100.64.8.0/29", &up, why, sizeof why), 0, "%s", why);
    cr_assert_eq(up.network, 0x64400800u);
    const char *bad[] = {"", "10.201.0.0", "10.201.0.0/", "10.201.0.0/x", "10.201.0/16",
                         "10.201.0.0/7", "10.201.0.0/30", "10.201.0.1/16", "10.0.0.0/8",
                         "10.200.5.0/24", "10.201.0.0/16 ", NULL};
    for (size_t i = 0; bad[i]; i++) {
        why[0] = '\0';
        cr_expect_eq(jg_netns_uplink_parse(bad[i], &up, why, sizeof why), -1, "'%s' accepted",
                     bad[i]);
        cr_expect(why[0], "no reason for '%s'", bad[i]);
    }
    cr_assert_eq(jg_netns_uplink_parse(NULL, &up, why, sizeof why), -1);
}

Test(netns, resolv_conf_leaves_out_loopback_nameservers)
{
    char *r = jg_netns_resolv_conf("search lab\nnameserver 127.0.0.53\nnameserver ::1\n"
                                   "nameserver 192.0.2.53\noptions edns0\n", NULL);
    cr_assert(strstr(r, "search lab\n"), "%s", r);
    cr_assert(strstr(r, "\nnameserver 192.0.2.53\n"), "%s", r);
    cr_assert(strstr(r, "options edns0\n"), "%s", r);
    cr_assert(strstr(r, "# (left out: on the host's loopback) nameserver 127.0.0.53\n"), "%s", r);
    cr_assert_null(strstr(r, "\nnameserver 127."), "%s", r);
    cr_assert_null(strstr(r, "\nnameserver ::1"), "%s", r);
    cr_assert_null(strstr(r, "the host's resolver forwards"), "%s", r);
    free(r);

    /* systemd-resolved's stub only: its upstream list is used instead. */
    r = jg_netns_resolv_conf("nameserver 127.0.0.53\noptions edns0 trust-ad\n",
                             "nameserver 198.51.100.53\nnameserver 127.0.0.1\n");
    cr_assert(strstr(r, "\nnameserver 198.51.100.53\n"), "%s", r);
    cr_assert_null(strstr(r, "\nnameserver 127."), "%s", r);
    free(r);

    /* A nameserver on a name that merely starts like loopback stays. */
    r = jg_netns_resolv_conf("nameserver 1270.0.0.1\nnameserver ::10\n", NULL);
    cr_assert(strstr(r, "\nnameserver ::10\n"), "%s", r);
    free(r);
    r = jg_netns_resolv_conf(NULL, NULL);
    cr_assert(strstr(r, "# jgsched:"), "%s", r);
    free(r);
}

/* ---- namespaces --------------------------------------------------------- */

Test(netns, probe_as_root_finds_root_mode)
{
    if (geteuid() != 0)
        cr_skip_test("needs root");
    jg_netns_caps_t caps;
    jg_netns_probe(&caps);
    cr_assert_eq(caps.mode, JG_NETNS_ROOT, "why: %s", caps.why);
    cr_assert(caps.own_mounts);
    cr_assert_str_eq(caps.why, "");
}

/* arg: a path in the host's /tmp the node must not see. */
static int identity(int index, void *arg)
{
    char buf[256], want[32];
    if (gethostname(buf, sizeof buf) < 0)
        return 20;
    snprintf(want, sizeof want, "node-%d", index);
    if (strcmp(buf, want) != 0)
        return 21;
    FILE *f = fopen("/etc/hosts", "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    if (!strstr(buf, "10.200.0.3\tnode-1.g node-1"))
        return 22;
    if (access("/tmp/mine", F_OK) == 0)
        return 23;              /* another node's /tmp */
    f = fopen("/tmp/mine", "w");
    if (!f)
        return 24;
    fclose(f);
    if (access(dir, F_OK) < 0)
        return 25;              /* the kept path under /tmp must stay visible */
    if (arg && access(arg, F_OK) == 0)
        return 27;              /* the host's /tmp shows through */
    if (try_connect("10.200.0.1", 9, 200) == 0)
        return 26;              /* nothing listens on the bridge */
    return 0;
}

Test(netns, a_node_has_its_name_hosts_and_own_tmp)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    char hosts[256];
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    FILE *f = fopen(hosts, "w");
    fputs("127.0.0.1\tlocalhost\n10.200.0.2\tnode-0.g node-0\n10.200.0.3\tnode-1.g node-1\n", f);
    fclose(f);
    char hidden[64];
    snprintf(hidden, sizeof hidden, "/tmp/jg-netns-hidden-%d", (int)getpid());
    cr_assert_eq(mkdir(hidden, 0755), 0, "%s: %s", hidden, strerror(errno));
    jg_netns_hub_t *hub = new_hub(caps.mode);
    int r0, r1;
    node(caps.mode, hub, 0, identity, hidden, false, &r0);
    int c0 = result(r0);
    node(caps.mode, hub, 1, identity, hidden, false, &r1);
    int c1 = result(r1);
    rmdir(hidden);
    cr_assert_eq(c0, 0, "node 0: check %d failed", c0);
    cr_assert_eq(c1, 0, "node 1 saw node 0's /tmp or lacks its identity (check %d)", c1);
    char mine[512];
    snprintf(mine, sizeof mine, "%s/tmp-%d-1/mine", dir, hub->pid);
    cr_assert_eq(access(mine, F_OK), 0, "the node's /tmp is its directory on the host");
    cr_assert_neq(access("/tmp/mine", F_OK), 0, "a node wrote to the host's /tmp");
}

Test(netns, nodes_of_a_group_reach_each_other_on_the_same_port)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    jg_netns_hub_t *hub = new_hub(caps.mode);
    int r[3];
    node(caps.mode, hub, 0, serve, NULL, true, &r[0]);
    node(caps.mode, hub, 1, serve, NULL, true, &r[1]);
    cr_assert_eq(result(r[0]), 0, "node 0 cannot listen");
    cr_assert_eq(result(r[1]), 0, "node 1 cannot listen on the port node 0 uses");
    const char *both[] = {"10.200.0.2", "10.200.0.3", NULL};
    node(caps.mode, hub, 2, reach_all, both, false, &r[2]);
    cr_assert_eq(result(r[2]), 0, "node 2 cannot reach both servers");
}

/* A node's eth0 is running (operstate up: the kernel's link watcher, which
 * runs asynchronously, has processed it) as soon as it has entered. */
static int link_running(int index, void *arg)
{
    (void)index;
    (void)arg;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "eth0");
    int rc = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_RUNNING) ? 0 : 12;
    if (s >= 0)
        close(s);
    return rc;
}

Test(netns, a_node_s_link_is_running_when_it_has_entered)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    jg_netns_hub_t *hub = new_hub(caps.mode);
    int fds[16];
    for (int i = 0; i < 16; i++)
        node(caps.mode, hub, i, link_running, NULL, false, &fds[i]);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(result(fds[i]), 0, "node %d: eth0 not running when enter returned", i);
}

Test(netns, groups_are_isolated_from_each_other)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    jg_netns_hub_t *a = new_hub(caps.mode), *b = new_hub(caps.mode);
    int r[3];
    node(caps.mode, a, 0, serve, NULL, true, &r[0]);
    node(caps.mode, a, 1, serve, NULL, true, &r[1]);
    cr_assert_eq(result(r[0]), 0);
    cr_assert_eq(result(r[1]), 0);
    /* Group b's node 0 has group a's node 0 address: it must reach neither. */
    const char *theirs[] = {"10.200.0.3", NULL};
    node(caps.mode, b, 0, reach_none, theirs, false, &r[2]);
    cr_assert_eq(result(r[2]), 0, "a node of another group reached 10.200.0.3");
}

Test(netns, entering_a_gone_hub_fails_with_a_reason)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    jg_netns_hub_t *hub = new_hub(caps.mode);
    int pidfd = dup(hub->pidfd);
    jg_error_t err;
    cr_assert_eq(jg_netns_hub_destroy(hub, 2000, &err), 0, "%s", err.text);
    cr_assert_eq(hub->pidfd, -1);
    jg_netns_hub_t gone = {.pid = 1, .pidfd = pidfd};
    int r;
    node(caps.mode, &gone, 0, NULL, NULL, false, &r);
    cr_assert_eq(result(r), 200);
    close(pidfd);
    cr_assert_eq(jg_netns_hub_open(hubs[0].pid, hubs[0].start, &gone, &err), -1);
    cr_assert(strstr(err.text, "gone"), "%s", err.text);
}

static int spawn_escaper(int index, void *arg)
{
    (void)index;
    int *fd = arg;
    pid_t p = fork();
    if (p == 0) {
        setsid();
        for (;;)
            pause();
    }
    (void)!write(*fd, &p, sizeof p);
    return 0;
}

Test(netns, kill_members_kills_a_node_but_never_its_callers_namespace)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    int own = open("/proc/self/ns/net", O_RDONLY);
    cr_assert_eq(jg_netns_kill_members(own), 0, "it must refuse the caller's namespace");
    close(own);

    jg_netns_hub_t *hub = new_hub(caps.mode);
    int p[2], r;
    cr_assert_eq(pipe(p), 0);
    pid_t n = node(caps.mode, hub, 0, spawn_escaper, &p[1], true, &r);
    cr_assert_eq(result(r), 0);
    pid_t esc;
    cr_assert_eq(read(p[0], &esc, sizeof esc), (ssize_t)sizeof esc);
    close(p[0]);
    close(p[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/net", (int)n);
    int nsfd = open(path, O_RDONLY);
    cr_assert_geq(nsfd, 0);
    cr_assert_eq(jg_netns_kill_members(nsfd), 2, "the node and the process that left it");
    close(nsfd);
    /* Reparented to init, which reaps it (or, in some containers, leaves a zombie). */
    bool dead = false;
    for (int i = 0; i < 200 && !dead; i++) {
        char st[512] = "";
        snprintf(path, sizeof path, "/proc/%d/stat", (int)esc);
        FILE *f = fopen(path, "r");
        if (f) {
            (void)!fread(st, 1, sizeof st - 1, f);
            fclose(f);
        }
        char *paren = strrchr(st, ')');
        dead = !f || (paren && (paren[2] == 'Z' || paren[2] == 'X'));
        if (!dead)
            usleep(10000);
    }
    cr_assert(dead, "the process that left the node survived");
}

/* The whole of a small text file (mountinfo), or "" (static buffer per slot). */
static const char *slurp(const char *path, int slot)
{
    static char bufs[2][65536];
    char *buf = bufs[slot];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof bufs[0] - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The lines of a that b lacks, for a failure message. */
static const char *lines_not_in(const char *a, const char *b)
{
    static char out[8192];
    size_t used = 0;
    out[0] = '\0';
    for (const char *l = a; *l && used < sizeof out - 300;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        char line[1024];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 3 ? len : sizeof line - 3), l);
        size_t ll = strlen(line);
        bool found = !strncmp(b, line, ll) && (b[ll] == '\n' || !b[ll]);
        for (const char *q = strchr(b, '\n'); !found && q; q = strchr(q + 1, '\n'))
            found = !strncmp(q + 1, line, ll) && (q[1 + ll] == '\n' || !q[1 + ll]);
        if (!found)
            used += (size_t)snprintf(out + used, sizeof out - used, "\n  %s", line);
        l += len + (e ? 1 : 0);
    }
    return out;
}

/* Links of this process's network namespace (sysfs would show the namespace
 * it was mounted in). */
static int count_links(void)
{
    struct if_nameindex *all = if_nameindex();
    int n = 0;
    for (struct if_nameindex *i = all; i && i->if_index; i++)
        n++;
    if_freenameindex(all);
    return n;
}

Test(netns, a_hundred_groups_in_a_row_leave_nothing_behind)
{
    jg_netns_caps_t caps;
    need_namespaces(&caps);
    /* As root the test gets a network and mount namespace of its own standing
     * in for the host, so links and mounts that other work on this machine
     * makes meanwhile (a test cluster's veths) are not counted as ours. */
    if (geteuid() == 0) {
        cr_assert_eq(unshare(CLONE_NEWNET | CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
        cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0, "%s", strerror(errno));
    }
    int links = count_links();
    char mounts_before[65536];
    snprintf(mounts_before, sizeof mounts_before, "%s", slurp("/proc/self/mountinfo", 0));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int g = 0; g < 100; g++) {
        jg_netns_hub_t *hub = new_hub(caps.mode);
        int r[2];
        node(caps.mode, hub, 0, NULL, NULL, true, &r[0]);
        node(caps.mode, hub, 1, NULL, NULL, true, &r[1]);
        cr_assert_eq(result(r[0]), 0);
        cr_assert_eq(result(r[1]), 0);
        for (int i = 0; i < n_kids; i++) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
        }
        n_kids = 0;
        jg_error_t err;
        cr_assert_eq(jg_netns_hub_destroy(hub, 2000, &err), 0, "%s", err.text);
        n_hubs = 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
    cr_assert_eq(count_links(), links, "links were left in the host");
    const char *mounts_after = slurp("/proc/self/mountinfo", 1);
    /* Only new mounts are ours: the host's own may still go meanwhile (a test
     * cluster's /run/netns entries leave copies made before they went). */
    const char *new_mounts = lines_not_in(mounts_after, mounts_before);
    cr_assert_str_empty(new_mounts, "mounts were left in the host:%s", new_mounts);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    cr_log_info("100 groups of 2 nodes: %.0f ms", ms);
}

/* ---- uplinks (NAT) ------------------------------------------------------ */

/* The test's own process (Criterion forks one per test) moves to a network
 * namespace of its own, standing in for the host: forwarding, the nftables
 * table and the uplinks' host ends all land there and go with it. */
static void own_host_namespace(void)
{
    if (geteuid() != 0)
        cr_skip_test("uplinks (NAT) need root");
    cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
    jg_error_t err;
    char warning[512];
    cr_assert_eq(jg_netns_nat_host_enable(warning, sizeof warning, &err), 0, "%s", err.text);
    cr_assert_str_eq(warning, "", "a fresh namespace has no firewall");
    char fwd[4] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r");
    cr_assert(f && fgets(fwd, sizeof fwd, f));
    fclose(f);
    cr_assert_eq(fwd[0], '1', "forwarding is on in the daemon's namespace");
}

/* How many uplink host ends (jgu*) this namespace has, once that settles
 * (a dead hub's links go asynchronously) at want, or after 2 s. */
static int uplinks_settled(int want)
{
    int n = -1;
    for (int tries = 0; tries < 100 && n != want; tries++) {
        if (tries)
            usleep(20000);
        struct if_nameindex *all = if_nameindex();
        n = 0;
        for (struct if_nameindex *i = all; i && i->if_index; i++)
            n += strncmp(i->if_name, "jgu", 3) == 0;
        if_freenameindex(all);
    }
    return n;
}

Test(netns, uplinks_take_distinct_addresses_until_their_network_is_full)
{
    own_host_namespace();
    jg_netns_uplink_t up;
    char why[200];
    cr_assert_eq(jg_netns_uplink_parse("10.250.0.0/29", &up, why, sizeof why), 0, "%s", why);
    jg_error_t err;
    for (int i = 0; i < 5; i++)     /* 8 addresses less network, host end, broadcast */
        cr_assert_not_null(new_hub_up(&up, &err), "hub %d: %s", i, err.text);
    cr_assert_eq(uplinks_settled(5), 5, "one host end per hub, each its own address");
    jg_netns_hub_t extra;
    cr_assert_eq(jg_netns_hub_create(keeper_exe(), JG_NETNS_ROOT, &up, NULL, &extra, &err), -1);
    cr_assert(strstr(err.text, "no free address for the group's uplink: all 5"), "%s", err.text);
    cr_assert_eq(uplinks_settled(5), 5, "a failed hub leaves no link");
    for (int i = 0; i < n_hubs; i++)
        cr_assert_eq(jg_netns_hub_destroy(&hubs[i], 2000, &err), 0, "%s", err.text);
    n_hubs = 0;
    cr_assert_eq(uplinks_settled(0), 0, "uplinks go with their hubs");

    /* A hundred in a row: an address comes free with its hub. */
    for (int g = 0; g < 100; g++) {
        jg_netns_hub_t *hub = new_hub_up(&up, &err);
        cr_assert_not_null(hub, "round %d: %s", g, err.text);
        cr_assert_eq(jg_netns_hub_destroy(hub, 2000, &err), 0, "%s", err.text);
        n_hubs = 0;
        cr_assert_eq(uplinks_settled(0), 0, "round %d left its uplink", g);
    }
}

/* A node of an uplinked hub reaches its "host" (the test's namespace) on the
 * uplink network's first address, masqueraded as its hub. */
static int reach_host_end(int index, void *arg)
{
    (void)index;
    return try_connect(arg, PORT, 2000) == 0 ? 0 : 30;
}

Test(netns, a_node_goes_out_through_its_hub_masqueraded_as_the_hub)
{
    own_host_namespace();
    int s = listen_on(PORT);        /* every address of the "host", the uplinks' end too */
    cr_assert_geq(s, 0, "listen: %s", strerror(errno));
    jg_netns_uplink_t up;
    char why[200];
    cr_assert_eq(jg_netns_uplink_parse(JG_NETNS_UPLINK_DEFAULT, &up, why, sizeof why), 0);
    jg_error_t err;
    jg_netns_hub_t *hub = new_hub_up(&up, &err);
    cr_assert_not_null(hub, "%s", err.text);
    nodes_route_out = true;
    int r;
    node(JG_NETNS_ROOT, hub, 0, reach_host_end, "10.201.0.1", false, &r);
    cr_assert_eq(result(r), 0, "the node cannot reach 10.201.0.1 through its hub");
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int c = accept(s, (struct sockaddr *)&peer, &len);
    cr_assert_geq(c, 0, "accept: %s", strerror(errno));
    uint32_t a = ntohl(peer.sin_addr.s_addr);
    cr_assert_eq(a >> 16, 0x0ac9u, "the peer is %u.%u.%u.%u, not the hub's uplink address",
                 a >> 24, (a >> 16) & 255u, (a >> 8) & 255u, a & 255u);
    close(c);
    close(s);
}

/* In a child that became `nobody`: the whole unprivileged path, with a
 * server and a client node in one user namespace.  Exit code 0: it worked;
 * 77: user namespaces are not allowed here. */
static int unprivileged(const struct passwd *pw)
{
    if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
        return 1;
    jg_netns_caps_t caps;
    jg_netns_probe(&caps);
    if (caps.mode != JG_NETNS_USERNS) {
        fprintf(stderr, "unprivileged probe: mode %d: %s\n", (int)caps.mode, caps.why);
        return 77;
    }
    jg_netns_hub_t hub;
    jg_error_t err;
    if (jg_netns_hub_create(keeper_exe(), JG_NETNS_USERNS, NULL, NULL, &hub, &err) < 0) {
        fprintf(stderr, "%s\n", err.text);
        return 2;
    }
    int rc = 0, r[2];
    pid_t s = node(JG_NETNS_USERNS, &hub, 0, serve, NULL, true, &r[0]);
    if (result(r[0]) != 0)
        rc = 3;
    const char *one[] = {"10.200.0.2", NULL};
    pid_t c = node(JG_NETNS_USERNS, &hub, 1, reach_all, one, false, &r[1]);
    if (rc == 0 && result(r[1]) != 0)
        rc = 4;
    kill(s, SIGKILL);
    waitpid(s, NULL, 0);
    waitpid(c, NULL, 0);
    jg_netns_hub_destroy(&hub, 2000, NULL);
    return rc;
}

Test(netns, an_unprivileged_user_gets_the_same_isolation_in_a_user_namespace)
{
    struct passwd *pw = getpwnam("nobody");
    if (geteuid() != 0 || !pw)
        cr_skip_test("needs root (to become nobody) and a `nobody` user");
    cr_assert_eq(chmod(dir, 01777), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        n_kids = 0;
        _exit(unprivileged(pw));
    }
    kids[n_kids++] = pid;
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    n_kids--;
    cr_assert(WIFEXITED(st), "the unprivileged child died");
    if (WEXITSTATUS(st) == 77)
        cr_skip_test("unprivileged user namespaces are not allowed here");
    cr_assert_eq(WEXITSTATUS(st), 0, "unprivileged path failed at step %d", WEXITSTATUS(st));
}

/* ---- jg_fs_open_dir: reaching a mount point without following links ---- */

Test(netns, open_dir_creates_missing_directories_and_never_follows_a_link)
{
    char path[256], target[256];
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    cr_assert_eq(jg_fs_open_dir(path, false, (uid_t)-1, (gid_t)-1), -1);
    cr_assert_eq(errno, ENOENT, "without create nothing is made");
    int fd = jg_fs_open_dir(path, true, (uid_t)-1, (gid_t)-1);
    cr_assert_geq(fd, 0, "%s", strerror(errno));
    close(fd);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    cr_assert_eq(st.st_mode & 0777, 0755 & ~mask);

    /* a/link -> a/b: reaching a/link/c must fail, even though it exists. */
    snprintf(target, sizeof target, "%s/a/link", dir);
    cr_assert_eq(symlink("b", target), 0);
    snprintf(path, sizeof path, "%s/a/link/c", dir);
    cr_assert_eq(jg_fs_open_dir(path, true, (uid_t)-1, (gid_t)-1), -1);
    cr_assert_eq(errno, ELOOP);
    snprintf(path, sizeof path, "%s/a/link/new", dir);
    cr_assert_eq(jg_fs_open_dir(path, true, (uid_t)-1, (gid_t)-1), -1);
    snprintf(path, sizeof path, "%s/a/b/new", dir);
    cr_assert_neq(access(path, F_OK), 0, "nothing was made through the link");

    /* A file in the way, "..", and a relative path are refused. */
    snprintf(path, sizeof path, "%s/a/file", dir);
    close(open(path, O_CREAT | O_WRONLY, 0644));
    snprintf(path, sizeof path, "%s/a/file/x", dir);
    cr_assert_eq(jg_fs_open_dir(path, true, (uid_t)-1, (gid_t)-1), -1);
    cr_assert_eq(errno, ENOTDIR);
    snprintf(path, sizeof path, "%s/a/../a/b", dir);
    cr_assert_eq(jg_fs_open_dir(path, false, (uid_t)-1, (gid_t)-1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(jg_fs_open_dir("tmp", false, (uid_t)-1, (gid_t)-1), -1);
    cr_assert_eq(errno, EINVAL);
}
