/* backends/local/network.c - the group's network: its hub, kept by a keeper process; NAT at create.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The address of a node, as its peers reach it: its own in its group's
 * network, or the host's loopback when nodes share the host network. */
void node_address(const local_t *b, const jg_group_spec_t *spec, int job_index, int rank,
                  char *buf, size_t len)
{
    int index = jg_netns_node_index(spec, job_index, rank);
    if (!isolated(b) || jg_netns_node_address(index, buf, len) < 0)
        snprintf(buf, len, "127.0.0.1");
}

gnet_t *gnet_find(local_t *b, int64_t group_id)
{
    for (gnet_t *g = b->gnets; g; g = g->next)
        if (g->group_id == group_id)
            return g;
    return NULL;
}

/* Takes the hub's descriptors off the loop (they stay open). */
static void gnet_unwatch(local_t *b, gnet_t *g)
{
    if (g->hub.pidfd >= 0)
        jg_loop_del_fd(b->loop, g->hub.pidfd);
    if (g->hub.ready_fd >= 0)
        jg_loop_del_fd(b->loop, g->hub.ready_fd);
}

/* Stops following a hub; kill: also kills its keeper (the hub goes). */
int gnet_free(local_t *b, gnet_t *g, bool kill_keeper, jg_error_t *err)
{
    for (gnet_t **pp = &b->gnets; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    int rc = 0;
    gnet_unwatch(b, g);
    /* Only on_keeper_dead and a failed set-up kill here, when the keeper is dead already: no wait. */
    if (kill_keeper)
        rc = jg_netns_hub_destroy(&g->hub, CLEANUP_WAIT_MS, err);
    else
        jg_netns_hub_close(&g->hub);
    free(g);
    return rc;
}

/* Kills the live nodes of a group, to be reported lost for `reason`. */
void lose_group_nodes(local_t *b, int64_t group_id, const char *reason)
{
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id != group_id || n->quiet || n->reported_final)
            continue;
        free(n->lost_reason);
        n->lost_reason = jg_xstrdup(reason);
        kill_node_tree(b, n->pid, n->start);
    }
}

/* The keeper of a hub still being set up ended its set-up: ready (r 1) or
 * failed (r -1, why in e; its hub is destroyed).  The group's queued nodes
 * go on, or fail with the reason. */
static void gnet_setup_done(gnet_t *g, int r, const jg_error_t *e)
{
    local_t *b = g->b;
    int64_t group_id = g->group_id;
    if (r > 0) {
        launches_net_settled(b, group_id, NULL);
        return;
    }
    jg_log("warn", "group %" PRId64 ": %s", group_id, e->text);
    gnet_free(b, g, true, NULL);    /* the keeper is ending: the wait is short */
    launches_net_settled(b, group_id, e->text);
}

/* Reads how the keeper's set-up went (jg_netns_hub_ready); once known, its
 * pipe is off the loop (and closed). */
static int gnet_read_setup(gnet_t *g, int wait_ms, jg_error_t *e)
{
    int fd = g->hub.ready_fd;
    int r = jg_netns_hub_ready(&g->hub, wait_ms, e);
    if (r != 0)
        jg_loop_del_fd(g->b->loop, fd);
    return r;
}

/* Whether the hub's keeper has finished setting it up (wait_ms: how long to
 * wait for it, 0 for a look); if so, acts on it (gnet_setup_done) and
 * returns true (g may be freed). */
static bool gnet_check_setup(gnet_t *g, int wait_ms)
{
    jg_error_t e = {{0}};
    int r = gnet_read_setup(g, wait_ms, &e);
    if (r == 0)
        return false;
    gnet_setup_done(g, r, &e);
    return true;
}

static void on_keeper_ready(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    gnet_check_setup(arg, 0);
}

/* The hub's keeper has not finished setting up: waits for it, at most
 * KEEPER_SETUP_MS (it is then killed).  For the rare caller that cannot go on
 * without the group's network settled (stop() of a group whose nodes wait
 * for it). */
void gnet_wait_setup(gnet_t *g)
{
    if (g->hub.ready_fd < 0 || gnet_check_setup(g, KEEPER_SETUP_MS))
        return;
    jg_error_t e;
    jg_errprintf(&e, "group network: its keeper (pid %d) was not ready within %d ms",
                 (int)g->hub.pid, KEEPER_SETUP_MS);
    gnet_setup_done(g, -1, &e);
}

/* A keeper died while its group was not being cleaned up: the group's
 * network went with it, so its nodes cannot talk any more.  One that dies
 * while setting up says why on its ready pipe. */
static void on_keeper_dead(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    gnet_t *g = arg;
    local_t *b = g->b;
    int64_t group_id = g->group_id;
    if (g->hub.ready_fd >= 0) {
        jg_error_t e = {{0}};
        int r = gnet_read_setup(g, 0, &e);
        if (r <= 0) {
            if (r == 0)     /* cannot be: its pipe ended with it */
                jg_errprintf(&e, "group network: its keeper (pid %d) died while setting "
                             "it up", (int)g->hub.pid);
            gnet_setup_done(g, -1, &e);
            return;
        }
    }
    char *reason = jg_xasprintf("the group's network is gone (its keeper, pid %d, died)",
                                (int)g->hub.pid);
    jg_log("warn", "group %" PRId64 ": %s; killing its nodes", group_id, reason);
    lose_group_nodes(b, group_id, reason);
    gnet_free(b, g, true, NULL);
    launches_net_settled(b, group_id, reason);     /* its queued nodes fail */
    free(reason);
}

/* Follows a hub (takes it over, also on failure): its keeper's death, and
 * while it is being set up, the end of that. */
gnet_t *gnet_watch(local_t *b, int64_t group_id, jg_netns_hub_t *hub, jg_error_t *err)
{
    gnet_t *g = jg_xcalloc(1, sizeof *g);
    g->b = b;
    g->group_id = group_id;
    g->hub = *hub;
    if (jg_loop_add_fd(b->loop, g->hub.pidfd, EPOLLIN, on_keeper_dead, g, err) < 0 ||
        (g->hub.ready_fd >= 0 &&
         jg_loop_add_fd(b->loop, g->hub.ready_fd, EPOLLIN, on_keeper_ready, g, err) < 0)) {
        jg_loop_del_fd(b->loop, g->hub.pidfd);
        jg_netns_hub_close(&g->hub);    /* a keeper of ours is recorded: cleanup kills it */
        free(g);
        return NULL;
    }
    g->next = b->gnets;
    b->gnets = g;
    return g;
}

/* The keeper recorded in <group dir>/net; -1 if there is none. */
int read_net_file(const local_t *b, int64_t group_id, pid_t *pid,
                  unsigned long long *start)
{
    char *gdir = group_dir(b, group_id);
    char *path = jg_xasprintf("%s/" GROUP_NET, gdir);
    jg_error_t err;
    int fd = open_own_record(path, O_RDONLY, &err);     /* a keeper only we recorded */
    if (fd < 0 && errno != ENOENT)
        jg_log("warn", "%s", err.text);
    free(path);
    free(gdir);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int p = 0;
    int n = fscanf(f, "keeper %d %llu", &p, start);
    fclose(f);
    *pid = p;
    return n == 2 && p > 0 ? 0 : -1;
}

/* Hands over the group's hub, to be killed by its cleanup: the followed one
 * (no longer followed: its death is no loss now) or the one its net record
 * names.  False when there is none. */
bool group_hub_take(local_t *b, int64_t group_id, jg_netns_hub_t *out)
{
    gnet_t *g = gnet_find(b, group_id);
    pid_t pid;
    unsigned long long start;
    if (!g)
        return read_net_file(b, group_id, &pid, &start) == 0 &&
               jg_netns_hub_open(pid, start, out, NULL) == 0;
    for (gnet_t **pp = &b->gnets; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    gnet_unwatch(b, g);
    *out = g->hub;
    free(g);
    return true;
}

/* The group's hub: followed already, found again from <group dir>/net, or
 * started (its keeper recorded there at once, before it does anything).
 * A started one is being set up while the loop goes on: its hub.ready_fd is
 * then >= 0, and launches_net_settled() tells when it is up or failed.
 * NULL + err if none can be had. */
gnet_t *group_hub(local_t *b, int64_t group_id, jg_error_t *err)
{
    gnet_t *g = gnet_find(b, group_id);
    if (g)
        return g;
    jg_netns_hub_t hub;
    pid_t pid;
    unsigned long long start;
    if (read_net_file(b, group_id, &pid, &start) == 0 &&
        jg_netns_hub_open(pid, start, &hub, NULL) == 0)
        return gnet_watch(b, group_id, &hub, err);

    char *gdir = group_dir(b, group_id);
    char *text = NULL;
    const creds_t none = {0};
    char exe[32];
    snprintf(exe, sizeof exe, "/proc/self/fd/%d", b->keeper_fd);
    if (jg_netns_hub_start(exe, b->net.mode, b->nat ? &b->uplink : NULL, gdir, &hub, err) < 0)
        goto done;
    text = jg_xasprintf("keeper %d %llu\n", (int)hub.pid, hub.start);
    if (write_file(&none, gdir, GROUP_NET, text, strlen(text), 0644, err) < 0) {
        jg_netns_hub_destroy(&hub, CLEANUP_WAIT_MS, NULL);
        goto done;
    }
    g = gnet_watch(b, group_id, &hub, err);
done:
    free(text);
    free(gdir);
    return g;
}

/* Decides whether hubs get an uplink, and prepares the host for it.  Fails
 * only on a bad nat_network; a host that refuses NAT is noted and logged. */
int setup_nat(local_t *b, const jg_local_config_t *cfg, jg_error_t *err)
{
    const char *network = cfg->nat_network ? cfg->nat_network : JG_NETNS_UPLINK_DEFAULT;
    char why[200], firewall[512];
    if (jg_netns_uplink_parse(network, &b->uplink, why, sizeof why) < 0)
        return jg_errprintf(err, "local backend: nat_network: %s", why);
    jg_error_t e = {{0}};
    if (!isolated(b))
        b->nat_note = jg_xstrdup("outbound: the host's own network (nodes share it)");
    else if (!cfg->nat)
        b->nat_note = jg_xstrdup("outbound: none, NAT is off by configuration "
                                 "(backends.local.nat); nodes reach only their own group");
    else if (b->net.mode != JG_NETNS_ROOT)
        b->nat_note = jg_xstrdup("outbound: none, NAT needs a daemon running as root; nodes "
                                 "reach only their own group");
    else if (jg_netns_nat_host_enable(firewall, sizeof firewall, &e) < 0) {
        b->nat_note = jg_xasprintf("outbound: none (%s); nodes reach only their own group",
                                   e.text);
        jg_log("warn", "local backend: %s", b->nat_note);
    } else {
        b->nat = true;
        b->nat_note = jg_xasprintf("outbound: NAT, each group's uplink from %s (nftables table "
                                   "ip jgsched, IPv4 forwarding on)%s%s", network,
                                   firewall[0] ? ", but " : "", firewall);
        if (firewall[0])
            jg_log("warn", "local backend: outbound NAT is on, but %s", firewall);
    }
    return 0;
}
