#!/usr/bin/env bash
# nat.sh - nodes reach beyond their group through NAT when the daemon is root:
# a node fetches a page from a server outside the host and the server sees the
# host's own address (masqueraded twice: in the group's hub, then on the
# host); two groups do so at once; a node cannot reach another group's hub;
# every uplink goes with its group; with `nat: false` nothing leaves; a host
# firewall that drops forwarded packets (as Docker's) is named, with the rules
# that allow jgsched, and those rules work.
#
# No packet leaves the namespaces this test creates: the daemon runs in a
# network namespace "host" of the test's own, whose only way out is a veth to
# a second namespace "wan" holding the server on 198.51.100.1 (TEST-NET-2).
# Forwarding and the nftables rules the daemon turns on are those of "host";
# the real host's are checked to be untouched.
#
# Needs root (NAT is a root-only feature): skipped otherwise.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/tools/daemon.sh
. "$(dirname "$0")/tools/daemon.sh"

if [ "$(id -u)" -ne 0 ]; then
    echo "skip - outbound NAT needs root"
    echo "# 0 passed"
    exit 0
fi
command -v nsenter >/dev/null || { echo "not ok - nsenter (util-linux) is needed" >&2; exit 1; }
command -v nft >/dev/null || { echo "not ok - nft (nftables) is needed" >&2; exit 1; }

HNS=jgnat-h-$$          # the daemon's "host"
WNS=jgnat-w-$$          # the world outside it
SERVER_IP=198.51.100.1
HOST_IP=198.51.100.2
REAL_FORWARD=$(cat /proc/sys/net/ipv4/ip_forward)
real_uplinks() { find /sys/class/net -mindepth 1 -maxdepth 1 -name 'jgu*' | wc -l; }
REAL_UPLINKS=$(real_uplinks)

# jg_teardown (jg_setup's EXIT trap) calls this first; each namespace lives
# on until its last process (the daemon, the server) is gone.
jg_extra_teardown() {
    ip netns del "$HNS" 2>/dev/null
    ip netns del "$WNS" 2>/dev/null
}
trap jg_teardown EXIT

ip netns add "$HNS" && ip netns add "$WNS" || fail "cannot create the test's network namespaces"
ip -n "$HNS" link set lo up
ip -n "$WNS" link set lo up
ip link add "jgnw$$" netns "$WNS" type veth peer name "jgnh$$" netns "$HNS" ||
    fail "cannot create the test's veth pair"
ip -n "$WNS" addr add "$SERVER_IP/24" dev "jgnw$$"
ip -n "$WNS" link set "jgnw$$" up
ip -n "$HNS" addr add "$HOST_IP/24" dev "jgnh$$"
ip -n "$HNS" link set "jgnh$$" up
ip -n "$HNS" route add default via "$SERVER_IP"

# ---------------------------------------------------------------- NAT on (the default)
JG_CONFIG='backends:
  local:
    capacity: {cpus: 64, memory: 256GB}'
JG_DAEMON_WRAP="nsenter --net=/run/netns/$HNS"
jg_setup

# The outside server answers every request with the address it came from.
ip netns exec "$WNS" python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("seen from " + self.client_address[0] + "\n").encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
        print(self.client_address[0], flush=True)
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], 8080), H).serve_forever()' "$SERVER_IP" \
    >>"$JG_WORK/server.log" 2>&1 &  # appending: the test truncates it
for ((i = 0; i < 50; i++)); do
    ip netns exec "$WNS" curl -s -o /dev/null "http://$SERVER_IP:8080/" && break
    sleep 0.1
done
: >"$JG_WORK/server.log"

jgc_ok infra
assert_contains "$OUT" "outbound: NAT" "infra's notes"
assert_eq "$(ip netns exec "$HNS" cat /proc/sys/net/ipv4/ip_forward)" 1 "forwarding in the daemon's namespace"
ok "the daemon (root, nat by default) turns on forwarding and says so in infra"

# fetch_yaml FILE SECONDS: a group of two nodes that fetch from and ping the
# outside server, giving up after SECONDS (short where nothing may get out).
fetch_yaml() {
    cat >"$1" <<EOF
name: reach-out
execution: parallel
---
name: fetch
num_nodes: 2
run: |
  curl -s --max-time $2 http://$SERVER_IP:8080/ || echo "curl failed: \$?"
  ping -c1 -W$2 $SERVER_IP >/dev/null && echo PING_OK
  head -n1 /etc/resolv.conf
  ip route | grep '^default' || true
EOF
}
fetch_yaml "$JG_WORK/out.yaml" 10
fetch_yaml "$JG_WORK/blocked.yaml" 2
submit_follow "$JG_WORK/out.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "the group fetching from outside exited $RC"
jgc_ok logs "$GID"
assert_eq "$(printf '%s\n' "$OUT" | grep -c "seen from $HOST_IP\$")" 2 "nodes answered as the host's address"
assert_eq "$(printf '%s\n' "$OUT" | grep -c 'PING_OK$')" 2 "nodes pinging outside"
assert_contains "$OUT" "(fetch-0) # jgsched: the host's resolv.conf" "the node's /etc/resolv.conf"
assert_contains "$OUT" "(fetch-0) default via 10.200.0.1 dev eth0" "the node's default route"
assert_eq "$(sort -u "$JG_WORK/server.log")" "$HOST_IP" "addresses the server saw"
ok "both nodes fetch a page and ping outside; the server sees only the host's address"

uplinks() { ip -n "$HNS" -o addr show 2>/dev/null | awk '$2 ~ /^jgu/ && $3 == "inet" { sub(/\/.*/, "", $6); print $6 }'; }
wait_no_uplinks() {
    for ((i = 0; i < 25; i++)); do
        [ -z "$(uplinks)" ] && return 0
        sleep 0.2
    done
    fail "uplinks left in the daemon's namespace: $(uplinks | tr '\n' ' ')"
}
wait_no_uplinks
ok "the group's uplink went with it"

# ---------------------------------------------------------------- two groups, isolated
cat >"$JG_WORK/hold.yaml" <<'EOF'
name: holder
execution: parallel
---
name: hold
run: sleep 60
EOF
submit_detached "$JG_WORK/hold.yaml"
HOLD=$GID
wait_state "$HOLD" RUNNING 30
HOLD_UPLINK=$(uplinks)
[ "$(printf '%s\n' "$HOLD_UPLINK" | grep -c .)" = 1 ] || fail "expected one uplink while one group runs, got: $HOLD_UPLINK"

cat >"$JG_WORK/probe.yaml" <<EOF
name: prober
execution: parallel
---
name: probe
run: |
  curl -s --max-time 10 http://$SERVER_IP:8080/ || echo "curl failed: \$?"
  if ping -c1 -W2 $HOLD_UPLINK >/dev/null 2>&1; then echo "REACHED the other group"; else echo "other group unreachable"; fi
EOF
submit_follow "$JG_WORK/probe.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "the probing group exited $RC"
jgc_ok logs "$GID"
assert_contains "$OUT" "seen from $HOST_IP" "the second group, while the first runs"
assert_contains "$OUT" "other group unreachable" "a node pinging another group's uplink ($HOLD_UPLINK)"
ok "a second group reaches out at the same time, and cannot reach the first group's hub"

jgc_ok cancel "$HOLD"
wait_end "$HOLD" 30
wait_no_uplinks
ok "cancel removes the uplink"

# ---------------------------------------------------------------- nat: false
jgc_ok daemon stop
wait_pid_gone "$JG_DAEMON_PID" 10 || fail "the daemon (pid $JG_DAEMON_PID) is alive after 'daemon stop'"
printf 'backends:\n  local:\n    capacity: {cpus: 64, memory: 256GB}\n    nat: false\n' \
    >"$JGSCHED_HOME/config.yaml"
daemon_start
jgc_ok infra
assert_contains "$OUT" "NAT is off by configuration" "infra's notes with nat: false"
: >"$JG_WORK/server.log"
submit_follow "$JG_WORK/blocked.yaml"
jgc_ok logs "$GID"
assert_eq "$(printf '%s\n' "$OUT" | grep -c 'curl failed: 7$')" 2 "nodes fetching with nat: false"
assert_not_contains "$OUT" "PING_OK" "nodes pinging outside with nat: false"
assert_eq "$(cat "$JG_WORK/server.log")" "" "requests the server saw with nat: false"
ok "with nat: false nothing leaves the group (no route out)"

# ---------------------------------------------------------------- a firewall that drops forwarding
# As Docker leaves it: a forward chain of another table with policy drop.  The
# daemon says so at start, and the nodes' traffic is dropped until allowed.
ip netns exec "$HNS" nft 'add table ip filter
add chain ip filter FORWARD { type filter hook forward priority filter; policy drop; }' ||
    fail "cannot add the test's drop-by-default forward chain"
jgc_ok daemon stop
wait_pid_gone "$JG_DAEMON_PID" 10 || fail "the daemon (pid $JG_DAEMON_PID) is alive after 'daemon stop'"
printf 'backends:\n  local:\n    capacity: {cpus: 64, memory: 256GB}\n' >"$JGSCHED_HOME/config.yaml"
daemon_start
jgc_ok infra
assert_contains "$OUT" "drops forwarded packets by default (nftables chain ip filter FORWARD" "infra's notes under a dropping firewall"
assert_contains "$OUT" "iptables -I DOCKER-USER -i jgu+ -j ACCEPT" "infra's advice"
grep -q "outbound NAT is on, but the host's firewall drops" "$JGSCHED_HOME/jgschedd.log" ||
    fail "the daemon's log does not warn about the dropping firewall"
: >"$JG_WORK/server.log"
submit_follow "$JG_WORK/blocked.yaml"
jgc_ok logs "$GID"
assert_eq "$(printf '%s\n' "$OUT" | grep -c 'curl failed')" 2 "nodes fetching through a dropping firewall"
ok "a firewall that drops forwarded packets is named in infra and the log, with the way to allow jgsched"

# The advice, in nft's words (the test has no iptables): then it works.
ip netns exec "$HNS" nft 'add rule ip filter FORWARD iifname "jgu*" accept
add rule ip filter FORWARD oifname "jgu*" ct state related,established accept' ||
    fail "cannot add the allowing rules"
submit_follow "$JG_WORK/out.yaml"
jgc_ok logs "$GID"
assert_eq "$(printf '%s\n' "$OUT" | grep -c "seen from $HOST_IP\$")" 2 "nodes fetching once the firewall allows jgu*"
ok "allowing jgu* in that firewall, as advised, lets the nodes out"

# ---------------------------------------------------------------- the real host
assert_eq "$(cat /proc/sys/net/ipv4/ip_forward)" "$REAL_FORWARD" "the real host's ip_forward"
assert_eq "$(real_uplinks)" "$REAL_UPLINKS" "uplinks in the real host's namespace"
ok "the real host's forwarding and links are untouched"

jg_done
