/* netns_hub.c - a group hub's set-up, done by its keeper (src/keeper.c) in
 * the hub's own new namespaces, and the nftables rules it and the host use.
 *
 * It lives apart from netns.c so that the keeper, a small program the daemon
 * starts with posix_spawn, can link it without the daemon: the daemon never
 * copies itself (fork) to make a hub, which would cost it page-table copies
 * and copy-on-write faults that grow with its size, on every group.
 */
#include "jgsched/netns.h"
#include "netns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int jg_netns_nft_apply(const char *script, char *errbuf, size_t len)
{
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft) {
        snprintf(errbuf, len, "nftables: cannot create a context");
        return -1;
    }
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    int rc = nft_run_cmd_from_buffer(nft, script) == 0 ? 0 : -1;
    if (rc < 0) {
        const char *msg = nft_ctx_get_error_buffer(nft);
        msg = msg && *msg ? msg : "the kernel refused the rules";
        int n = (int)strcspn(msg, "\n");
        snprintf(errbuf, len, "nftables: %.*s", n, msg);
    }
    nft_ctx_free(nft);
    return rc;
}

int jg_netns_nat_hub(const char *uplink_if, char *errbuf, size_t len)
{
    char script[512];
    snprintf(script, sizeof script,
             "table ip " JG_NETNS_NFT_TABLE " {\n"
             "  chain postrouting {\n"
             "    type nat hook postrouting priority srcnat; policy accept;\n"
             "    oifname \"%s\" masquerade\n"
             "  }\n"
             "}\n", uplink_if);
    return jg_netns_nft_apply(script, errbuf, len);
}

/* mode USERNS: the calling process's new user namespace maps its own uid and
 * gid to themselves (all an unprivileged process may map). */
static int enter_own_userns(char *errbuf, size_t len)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    /* /proc/self/uid_map is ours to write only while we are dumpable (a
     * process that changed its uids is not, until told). */
    prctl(PR_SET_DUMPABLE, 1);
    if (unshare(CLONE_NEWUSER) < 0)
        return jg_netns_fail(errbuf, len, "cannot create a user namespace: %s", strerror(errno));
    char map[64];
    if (jg_netns_write_text("/proc/self/setgroups", "deny") < 0)
        return jg_netns_fail(errbuf, len, "cannot write /proc/self/setgroups: %s", strerror(errno));
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (jg_netns_write_text("/proc/self/uid_map", map) < 0)
        return jg_netns_fail(errbuf, len, "cannot write /proc/self/uid_map: %s", strerror(errno));
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (jg_netns_write_text("/proc/self/gid_map", map) < 0)
        return jg_netns_fail(errbuf, len, "cannot write /proc/self/gid_map: %s", strerror(errno));
    return 0;
}

/* In the keeper, in the hub's new namespace: claims an address of the uplink
 * network by creating the pair whose host end is named after it (EEXIST:
 * another hub holds it, try the next), addresses both ends point to point,
 * routes the hub out through it and masquerades there.  host_nl and host_ns
 * were opened in the host's namespace, before the keeper left it. */
static int uplink_setup(int hub_nl, int host_nl, int host_ns, const jg_netns_uplink_t *up,
                        char *errbuf, size_t len)
{
    uint32_t size = 1u << (32 - up->prefix);
    uint32_t usable = size - 3u;    /* less the network, the host's end and broadcast */
    uint32_t gateway = up->network + 1u;
    uint32_t first = ((uint32_t)getpid() * 2654435761u) % usable;  /* spread the claims */
    char host_if[IFNAMSIZ];
    uint32_t addr = 0;
    int e = -EEXIST;
    for (uint32_t i = 0; i < usable && e == -EEXIST; i++) {
        addr = up->network + 2u + (first + i) % usable;
        snprintf(host_if, sizeof host_if, JG_NETNS_UPLINK_HOST_PREFIX "%08" PRIx32, addr);
        e = jg_nl_veth_add(hub_nl, UPLINK_IF, 0, host_if, host_ns);
    }
    if (e == -EEXIST)
        return jg_netns_fail(errbuf, len, "no free address for the group's uplink: all %" PRIu32
                    " of the uplink network are held by running groups (widen "
                    "backends.local.nat_network)", usable);
    if (e < 0)
        return jg_netns_fail(errbuf, len, "cannot create the group's uplink: %s", strerror(-e));
    int host_idx = jg_nl_link_index(host_nl, host_if);
    int hub_idx = (int)if_nametoindex(UPLINK_IF);
    if (host_idx < 0 || hub_idx <= 0)
        return jg_netns_fail(errbuf, len, "cannot find the group's uplink %s: %s", host_if,
                    strerror(host_idx < 0 ? -host_idx : errno));
    if ((e = jg_nl_addr_add(host_nl, host_idx, gateway, addr, 32)) < 0 ||
        (e = jg_nl_link_up(host_nl, host_idx)) < 0 ||
        (e = jg_nl_addr_add(hub_nl, hub_idx, addr, gateway, 32)) < 0 ||
        (e = jg_nl_route_default(hub_nl, hub_idx, gateway)) < 0)
        return jg_netns_fail(errbuf, len, "cannot configure the group's uplink %s: %s", host_if,
                    strerror(-e));
    if (jg_netns_write_text("/proc/sys/net/ipv4/ip_forward", "1") < 0)
        return jg_netns_fail(errbuf, len, "cannot turn on forwarding in the group's network: %s",
                    strerror(errno));
    return jg_netns_nat_hub(UPLINK_IF, errbuf, len);
}

int jg_netns_hub_setup(jg_netns_mode_t mode, const jg_netns_uplink_t *uplink, char *errbuf,
                     size_t len)
{
    if (uplink && mode != JG_NETNS_ROOT)
        return jg_netns_fail(errbuf, len, "an uplink (NAT) needs a daemon running as root");
    if (mode == JG_NETNS_USERNS && enter_own_userns(errbuf, len) < 0)
        return -1;
    int host_ns = -1, host_nl = -1, fd = -1, rc = -1, e;
    if (uplink && ((host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0 ||
                   (host_nl = jg_nl_open()) < 0)) {
        jg_netns_fail(errbuf, len, "cannot open the host's network namespace: %s", strerror(errno));
        goto done;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        jg_netns_fail(errbuf, len, "cannot create the group's network namespace: %s", strerror(errno));
        goto done;
    }
    if ((fd = jg_nl_open()) < 0) {
        jg_netns_fail(errbuf, len, "cannot open a netlink socket: %s", strerror(errno));
        goto done;
    }
    if ((e = jg_nl_bridge_add(fd, BRIDGE)) < 0) {
        jg_netns_fail(errbuf, len, "cannot create the group's bridge: %s", strerror(-e));
        goto done;
    }
    int br = (int)if_nametoindex(BRIDGE);
    if (br <= 0 || (e = jg_nl_addr_add(fd, br, HUB_BASE + 1u, HUB_BASE + 1u, JG_NETNS_PREFIX)) < 0) {
        jg_netns_fail(errbuf, len, "cannot address the group's bridge: %s", strerror(br <= 0 ? errno : -e));
        goto done;
    }
    if (uplink && uplink_setup(fd, host_nl, host_ns, uplink, errbuf, len) < 0)
        goto done;
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (host_nl >= 0)
        close(host_nl);
    if (host_ns >= 0)
        close(host_ns);
    return rc;
}


int jg_netns_uplink_parse(const char *text, jg_netns_uplink_t *out, char *why, size_t len)
{
    char addr[INET_ADDRSTRLEN];
    const char *slash = text ? strchr(text, '/') : NULL;
    struct in_addr a;
    char *end;
    if (!slash || (size_t)(slash - text) >= sizeof addr)
        return jg_netns_fail(why, len, "'%s' is not an IPv4 network: write it as address/prefix, "
                    "e.g. %s", text ? text : "", JG_NETNS_UPLINK_DEFAULT);
    memcpy(addr, text, (size_t)(slash - text));
    addr[slash - text] = '\0';
    errno = 0;
    long prefix = strtol(slash + 1, &end, 10);
    if (inet_pton(AF_INET, addr, &a) != 1 || end == slash + 1 || *end || errno)
        return jg_netns_fail(why, len, "'%s' is not an IPv4 network: write it as address/prefix, "
                    "e.g. %s", text, JG_NETNS_UPLINK_DEFAULT);
    if (prefix < JG_NETNS_UPLINK_MIN_PREFIX || prefix > JG_NETNS_UPLINK_MAX_PREFIX)
        return jg_netns_fail(why, len, "prefix /%ld of '%s' is out of range: it must be between /%d "
                    "and /%d", prefix, text, JG_NETNS_UPLINK_MIN_PREFIX,
                    JG_NETNS_UPLINK_MAX_PREFIX);
    uint32_t net = ntohl(a.s_addr), mask = ~0u << (32 - prefix);
    if (net & ~mask)
        return jg_netns_fail(why, len, "'%s' has host bits set: the network is %u.%u.%u.%u/%ld", text,
                    (net & mask) >> 24, ((net & mask) >> 16) & 255u, ((net & mask) >> 8) & 255u,
                    net & mask & 255u, prefix);
    uint32_t hub_mask = ~0u << (32 - JG_NETNS_PREFIX);
    uint32_t common = prefix < JG_NETNS_PREFIX ? mask : hub_mask;
    if ((net & common) == (HUB_BASE & common))
        return jg_netns_fail(why, len, "'%s' overlaps 10.200.0.0/16, the network of every group's "
                    "nodes", text);
    out->network = net;
    out->prefix = (int)prefix;
    return 0;
}
