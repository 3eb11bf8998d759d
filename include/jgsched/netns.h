/* netns.h - the network and host identity of local nodes (Linux namespaces).
 *
 * Only the local backend (and its bench and tests) uses this module; the core
 * never sees a namespace.
 *
 * A group's private network is a *hub*: a network namespace holding one bridge
 * (br0, JG_NETNS_GATEWAY/16).  It is held by a small keeper process
 * (`jgsched-shim --hold DIR`) in a session of its own, so it outlives a daemon
 * that dies and is found again from the keeper's pid and start time; killing
 * the keeper removes the hub and, with it, every link of the group.
 *
 * A node joins from its first process (jgsched-shim --node), about to exec its shim
 * (jg_netns_node_enter): it enters the hub, creates a veth pair whose hub end
 * `n<index>` is a port of br0 and whose other end becomes `eth0` of a fresh
 * network namespace of its own, with address jg_netns_node_address(index) and
 * loopback up; it gets its own UTS namespace (hostname `<job>-<rank>`) and
 * mount namespace, where the group's hosts file covers /etc/hosts and a
 * per-node directory covers /tmp: the node sees none of the host's /tmp, only
 * what it writes there itself, kept in that directory across its attempts.
 * The one host path under /tmp it still sees is keep_path (its own directory,
 * when the instance's state lives under /tmp: its shim works there).  Shared
 * volumes (jg_netns_bind_t, whose sources may lie in the host's /tmp) are then
 * bound on their mount points (made when missing only under the node's own
 * /tmp; any other must exist: the backend makes it, as the user).  Those namespaces are held by the shim and
 * its descendants: when the node ends they go, and its veth pair with them.
 * Nothing else is named in the host: two instances, or two groups with the
 * same name, cannot collide.
 *
 * Outbound traffic (mode ROOT, when asked for): the hub also gets an *uplink*,
 * a veth pair whose hub end `up0` is its default route and whose host end
 * `jgu<address in hex>` carries the hub's own address from the uplink network
 * (JG_NETNS_UPLINK_DEFAULT).  The hub masquerades what its nodes send out of
 * up0 (every hub uses the same node network); the host, set up once by
 * jg_netns_nat_host_enable(), forwards and masquerades what comes from any
 * jgu* link, and drops what one hub sends to another.  The host end's name is
 * the claim on the address: creating it fails while another hub (of any
 * instance) holds that address, and it goes with the hub.  Nodes of such a hub
 * get a default route through br0.
 *
 * Three modes, found by jg_netns_probe() at backend start:
 *   ROOT    the daemon is real root: namespaces in the host's user namespace;
 *   USERNS  unprivileged: the keeper also creates a user namespace mapping the
 *           daemon's uid and gid to themselves; nodes join it first, so they
 *           run as the same user with the same isolation;
 *   HOST    neither is possible (or asked for): nodes share the host network;
 *           when mount and UTS namespaces still work (root), hostnames map to
 *           127.0.0.1 in a per-node /etc/hosts.  The backend announces it.
 */
#ifndef JGSCHED_NETNS_H
#define JGSCHED_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "jgsched/error.h"
#include "jgsched/spec.h"

#define JG_NETNS_GATEWAY "10.200.0.1"   /* br0 in every hub; nodes from .0.2 on */
#define JG_NETNS_PREFIX 16
#define JG_NETNS_MAX_NODES 65000        /* nodes of one group that get an address */
#define JG_NETNS_UPLINK_DEFAULT "10.201.0.0/16"     /* host <-> hub links, when NAT is on */

typedef enum {
    JG_NETNS_HOST = 0,
    JG_NETNS_ROOT,
    JG_NETNS_USERNS,
} jg_netns_mode_t;

typedef struct {
    jg_netns_mode_t mode;
    bool own_mounts;        /* nodes get their own mount + UTS namespace */
    char why[256];          /* mode HOST: why isolation is not possible ("" otherwise) */
} jg_netns_caps_t;

/* Finds what this process may do, by trying it in a short-lived child (one
 * fork; nothing is left behind).  Never fails: the worst case is HOST. */
void jg_netns_probe(jg_netns_caps_t *caps);

/* The address of node `index` of a group (0-based over every job's nodes, in
 * job order, then rank): "10.200.0.2" for 0.  -1 if index is out of range. */
int jg_netns_node_address(int index, char *buf, size_t len);

/* The group-wide index of a node (the sum of num_nodes of the jobs before it,
 * plus rank); -1 for a job or rank the spec does not have. */
int jg_netns_node_index(const jg_group_spec_t *spec, int job_index, int rank);

/* The group's hosts file: localhost lines, then one line per node,
 * "<ip>\t<job>-<rank>.<group> <job>-<rank>".  isolated false: every node maps
 * to 127.0.0.1.  Caller frees. */
char *jg_netns_hosts(const jg_group_spec_t *spec, bool isolated);

typedef struct {
    pid_t pid;              /* the keeper */
    unsigned long long start;   /* its /proc starttime, against pid reuse */
    int pidfd;              /* -1 when closed */
    int ready_fd;           /* jg_netns_hub_start: readable once the keeper is set up
                             * or failed (jg_netns_hub_ready); -1 when known ready */
} jg_netns_hub_t;

/* The network hubs' uplinks take their addresses from (host byte order):
 * `network`/`prefix`; its first address is the host's end of every uplink. */
typedef struct {
    uint32_t network;
    int prefix;             /* JG_NETNS_UPLINK_MIN_PREFIX..JG_NETNS_UPLINK_MAX_PREFIX */
} jg_netns_uplink_t;

#define JG_NETNS_UPLINK_MIN_PREFIX 8
#define JG_NETNS_UPLINK_MAX_PREFIX 29

/* Parses "a.b.c.d/p" into an uplink network: 0, or -1 with a message in why
 * (not an IPv4 network, host bits set, a prefix out of range, or overlapping
 * the nodes' own 10.200.0.0/16). */
int jg_netns_uplink_parse(const char *text, jg_netns_uplink_t *out, char *why, size_t len);

/* Prepares this process's network namespace (the host's, for the daemon) for
 * hub uplinks: turns on IPv4 forwarding and installs the nftables table
 * `ip jgsched` (masquerade what comes from jgu* and leaves by another link;
 * drop jgu* to jgu*).  Idempotent, shared by every instance on the host (the
 * rules do not depend on any instance), left in place at exit.  Needs root.
 * Then looks for another table's forward chain that drops by default (which
 * would drop the nodes' traffic whatever ours accepts): warning gets a
 * sentence naming it and saying how to allow the uplinks, or "" (warning
 * NULL: no look).
 * 0, or -1 + err (nothing half-installed: the rules go in one transaction). */
int jg_netns_nat_host_enable(char *warning, size_t warning_len, jg_error_t *err);

/* Starts a group's hub: posix_spawns the keeper program keeper_exe
 * (jgsched-keeper, src/keeper.c; the daemon is never copied), which in new
 * namespaces of its own (mode USERNS: a user namespace first) creates the
 * network namespace and br0 (uplink not NULL, mode ROOT only: and the uplink,
 * see the top), then lives until killed.  label (may be NULL) names it on its
 * command line (`--hold LABEL`).  Returns at once, with the keeper's pid,
 * start time and pidfd set (so it can be recorded before it does anything)
 * and hub->ready_fd to watch: when it is readable, jg_netns_hub_ready says
 * how the set-up went.  Fails (-1 + err, nothing left) only if no keeper
 * could be started.  The hub's descriptors are close-on-exec. */
int jg_netns_hub_start(const char *keeper_exe, jg_netns_mode_t mode,
                       const jg_netns_uplink_t *uplink, const char *label, jg_netns_hub_t *hub,
                       jg_error_t *err);

/* After hub->ready_fd became readable (or with wait_ms >= 0: waiting up to
 * that long for it): 1 when the hub is up (ready_fd closed and -1), 0 when
 * the keeper has not finished yet, -1 + err when it failed (its reason; the
 * caller then destroys the hub).  A hub without ready_fd is up: 1. */
int jg_netns_hub_ready(jg_netns_hub_t *hub, int wait_ms, jg_error_t *err);

/* jg_netns_hub_start, then waits for the hub to be up (tests, the bench).
 * Returns 0 once the network is up; on failure nothing is left. */
int jg_netns_hub_create(const char *keeper_exe, jg_netns_mode_t mode,
                        const jg_netns_uplink_t *uplink, const char *label, jg_netns_hub_t *hub,
                        jg_error_t *err);

/* Finds a keeper again (after a daemon restart): fails when no process with
 * that pid and start time runs. */
int jg_netns_hub_open(pid_t pid, unsigned long long start, jg_netns_hub_t *hub, jg_error_t *err);

/* Closes the pidfd and ready_fd; the keeper keeps running.  Accepts a closed hub. */
void jg_netns_hub_close(jg_netns_hub_t *hub);

/* Kills the keeper (the hub and every link in it go), waits up to wait_ms for
 * it to die, reaps it if it is our child, and closes the hub.  Returns 0, or
 * -1 + err if it did not die in time. */
int jg_netns_hub_destroy(jg_netns_hub_t *hub, int wait_ms, jg_error_t *err);

/* A shared volume: the host directory `source` bound read-write on `target`
 * in the node's mount namespace. */
typedef struct {
    const char *source;     /* absolute host directory (symbolic links followed) */
    const char *target;     /* absolute mount point, no "." or ".." component */
} jg_netns_bind_t;

typedef struct {
    jg_netns_mode_t mode;
    bool own_mounts;        /* new UTS + mount namespaces (hostname, hosts, tmp) */
    int hub_pidfd;          /* the group's keeper; unused in mode HOST */
    int index;              /* jg_netns_node_index(): link name and address */
    const char *hostname;   /* "<job>-<rank>" */
    const char *hosts_path; /* bound read-only on /etc/hosts; NULL: none */
    const char *resolv_path;    /* bound read-only on /etc/resolv.conf; NULL: none */
    bool default_route;     /* the hub has an uplink: route everything through br0 */
    const char *tmp_path;   /* covers /tmp, hiding the host's; NULL: the host's /tmp */
    const char *keep_path;  /* a host directory that stays visible at its own path even
                             * under /tmp (the node's directory); NULL: none */
    const jg_netns_bind_t *binds;   /* volumes, bound after /tmp (own_mounts only) */
    size_t n_binds;
    uid_t uid;              /* the node's user: owns the mount points made in its /tmp */
    gid_t gid;              /* its group (mode USERNS: the one allowed to ping) */
} jg_netns_node_t;

/* Puts the calling process into its node's namespaces (see the top).  Meant
 * for a node's first process, which then drops privileges and execs the shim: it
 * changes the process for good, uses no heap, and on failure writes a message
 * into errbuf and returns -1 (the child must then exit). */
int jg_netns_node_enter(const jg_netns_node_t *node, char *errbuf, size_t len);

/* A node's resolv.conf from the host's (host_resolv, NULL if unreadable):
 * the same, less the nameservers on loopback (a local resolver such as
 * systemd-resolved's 127.0.0.53 is unreachable from a node); when that leaves
 * none, upstream (the resolver's own list, e.g. /run/systemd/resolve/
 * resolv.conf, NULL if none) is used the same way.  Caller frees. */
char *jg_netns_resolv_conf(const char *host_resolv, const char *upstream);

/* Sends SIGKILL to every process (but the caller) whose network namespace is
 * the one `nsfd` refers to, as far as we may see and signal them; returns how
 * many were signalled.  For processes that left a node's process group. */
int jg_netns_kill_members(int nsfd);

#endif
