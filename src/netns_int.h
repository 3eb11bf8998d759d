/* netns_int.h - what netns.c and netns_nat.c share; not a public contract. */
#ifndef JGSCHED_NETNS_INT_H
#define JGSCHED_NETNS_INT_H

#include <stddef.h>

/* A hub uplink's host end is named this, then its address in hex. */
#define JG_NETNS_UPLINK_HOST_PREFIX "jgu"

/* Writes text to an existing file such as a /proc/sys knob (no heap: the
 * node child uses it).  0, or -1 with errno. */
int jg_netns_write_text(const char *path, const char *text);

/* In a hub's namespace (the keeper, before it execs): masquerade what leaves
 * by link uplink_if.  0, or -1 with a message in errbuf. */
int jg_netns_nat_hub(const char *uplink_if, char *errbuf, size_t len);

#endif
