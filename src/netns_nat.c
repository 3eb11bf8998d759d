/* netns_nat.c - the nftables rules behind a node's outbound traffic.
 *
 * Every hub uses the same node network (10.200.0.0/16), so a node's packet is
 * masqueraded twice: in its hub, to the hub's own uplink address (unique on
 * the host), then on the host, to whatever address the host leaves by.  The
 * rules go in through libnftables in one transaction each; the netlink socket
 * it opens belongs to the caller's network namespace, which is how the same
 * code serves the host (the daemon) and a hub (its keeper).
 *
 * The host's table names links by the uplink prefix only, never by instance
 * or address, so every jgsched daemon on the host installs the very same
 * rules and any of them may (re)install them at any time.
 */
#include "jgsched/netns.h"
#include "netns_int.h"

#include <errno.h>
#include <jansson.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TABLE JG_NETNS_NFT_TABLE
#define UPLINKS JG_NETNS_UPLINK_HOST_PREFIX "*"     /* every hub's host end */
#define UPLINKS_IPTABLES JG_NETNS_UPLINK_HOST_PREFIX "+"    /* the same, as iptables says it */

static int set_ip_forward(char *errbuf, size_t len)
{
    if (jg_netns_write_text("/proc/sys/net/ipv4/ip_forward", "1") == 0)
        return 0;
    snprintf(errbuf, len, "cannot turn on IPv4 forwarding (/proc/sys/net/ipv4/ip_forward): %s",
             strerror(errno));
    return -1;
}

/* Names (in list, "" if none) the base chains of other tables that drop
 * forwarded IPv4 packets by default, as Docker's `ip filter FORWARD` does: a
 * packet any base chain drops is dropped, whatever ours accepts.  Best
 * effort: a ruleset that cannot be listed names nothing. */
static void find_forward_drops(char *list, size_t len)
{
    list[0] = '\0';
    struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!nft)
        return;
    nft_ctx_output_set_flags(nft, NFT_CTX_OUTPUT_JSON);
    nft_ctx_buffer_output(nft);
    nft_ctx_buffer_error(nft);
    json_t *root = NULL;
    if (nft_run_cmd_from_buffer(nft, "list chains") == 0)
        root = json_loads(nft_ctx_get_output_buffer(nft), 0, NULL);
    size_t i, off = 0;
    json_t *item;
    json_array_foreach(json_object_get(root, "nftables"), i, item) {
        json_t *c = json_object_get(item, "chain");
        const char *family = json_string_value(json_object_get(c, "family"));
        const char *table = json_string_value(json_object_get(c, "table"));
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *hook = json_string_value(json_object_get(c, "hook"));
        const char *policy = json_string_value(json_object_get(c, "policy"));
        if (!family || !table || !name || !hook || !policy || strcmp(hook, "forward") != 0 ||
            strcmp(policy, "drop") != 0 || (strcmp(family, "ip") != 0 &&
                                             strcmp(family, "inet") != 0) ||
            (strcmp(family, "ip") == 0 && strcmp(table, TABLE) == 0))
            continue;
        int n = snprintf(list + off, len - off, "%s%s %s %s", off ? ", " : "", family, table, name);
        if (n < 0 || (size_t)n >= len - off)
            break;
        off += (size_t)n;
    }
    json_decref(root);
    nft_ctx_free(nft);
}

int jg_netns_nat_host_enable(char *warning, size_t warning_len, jg_error_t *err)
{
    /* Declaring the chains is idempotent; flushing them first makes the
     * rules exactly these, however many daemons ran this before. */
    static const char script[] =
        "table ip " TABLE " {\n"
        "  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
        "  chain forward { type filter hook forward priority filter; policy accept; }\n"
        "}\n"
        "flush chain ip " TABLE " postrouting\n"
        "flush chain ip " TABLE " forward\n"
        "add rule ip " TABLE " forward iifname \"" UPLINKS "\" oifname \"" UPLINKS "\" drop\n"
        "add rule ip " TABLE " postrouting iifname \"" UPLINKS "\" oifname != \"" UPLINKS "\" "
        "masquerade\n";
    char why[512];
    if (jg_netns_nft_apply(script, why, sizeof why) < 0 || set_ip_forward(why, sizeof why) < 0)
        return jg_errprintf(err, "outbound NAT: %s", why);
    if (!warning || warning_len == 0)
        return 0;
    char drops[256];
    find_forward_drops(drops, sizeof drops);
    if (drops[0])
        snprintf(warning, warning_len,
                 "the host's firewall drops forwarded packets by default (nftables chain %s, "
                 "policy drop; Docker sets this), so nodes' outbound traffic is dropped there "
                 "unless it is allowed, e.g. iptables -I DOCKER-USER -i " UPLINKS_IPTABLES
                 " -j ACCEPT; iptables -I DOCKER-USER -o " UPLINKS_IPTABLES " -m conntrack "
                 "--ctstate RELATED,ESTABLISHED -j ACCEPT", drops);
    else
        warning[0] = '\0';
    return 0;
}
