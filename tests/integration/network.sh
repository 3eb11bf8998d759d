#!/usr/bin/env bash
# network.sh - every node has its own address and hostname, and
# <job>-<rank>.<group> connects: seed plan 2.2 (HTTP by hostname), 2.3 (ping
# between nodes), 4 (the 7-node RL architecture, every node reaching every
# other), the hostname references of 3.2, then port reuse, isolation of two
# concurrent groups with the same name, /tmp kept across a recovery (6.1), and
# nothing left behind (namespaces, links, processes) after cancel and after a
# daemon killed with -9.  Fast copies of the seed files (sleeps divided by 5).
#
# Needs network namespaces (root, or unprivileged user namespaces); where the
# daemon announces that nodes share the host network, the checks that need
# isolation are reported as skipped.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
GROUPS_DIR="$JGSCHED_HOME/state/groups"

if grep -q "nodes share the host network\|network isolation is off" "$JGSCHED_HOME/jgschedd.log" 2>/dev/null; then
    echo "skip - nodes share the host network here: $(grep -m1 'local backend' "$JGSCHED_HOME/jgschedd.log")"
    jg_done
    exit 0
fi

# ---------------------------------------------------------------- helpers

netns_ino() {       # PID -> inode of its network namespace ("" if gone)
    stat -L -c %i "/proc/$1/ns/net" 2>/dev/null
}

HOST_NS=$(netns_ino $$)

# alive PID: the process runs (a zombie does not: the init of some containers
# never reaps the orphans it inherits).
alive() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    st=${st##*) }
    case "${st%% *}" in Z | X) return 1 ;; *) return 0 ;; esac
}

keeper_pid() {      # GID -> the pid of the group's network keeper ("" if none)
    awk '/^keeper/ { print $2 }' "$GROUPS_DIR/$1/net" 2>/dev/null
}

# group_namespaces GID NAME: the network namespaces of the group's keeper and
# processes (one inode a line, the host's left out).
group_namespaces() {
    local p k
    k=$(keeper_pid "$1")
    for p in $k $(pids_with_env "SKYPILOT_JOBGROUP_NAME=$2" "JGSCHED_GROUP_ID=$1") \
        $(pgrep -f -- "$(jg_regex_escape "$GROUPS_DIR/$1/")"); do
        netns_ino "$p"
    done | grep -vx "$HOST_NS" | sort -u
}

# assert_namespaces_gone INODE...: no process on the machine is in any of them.
assert_namespaces_gone() {
    local i p left
    for ((i = 0; i < 25; i++)); do
        left=""
        for p in /proc/[0-9]*; do
            case " $* " in *" $(netns_ino "${p#/proc/}") "*) left="$left ${p#/proc/}" ;; esac
        done
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    # shellcheck disable=SC2086
    fail "processes left in the group's namespaces: $(describe_pids $left)"
}

# Links: every link of a group lives in the group's namespaces (the hub's
# bridge and node ends, each node's eth0); a veth pair dies with either of
# its namespaces, and the one link a hub puts in the host (its NAT uplink,
# off here) is the peer of the hub's up0.  So "the group's namespaces are
# gone" is "the group's links are gone", and it looks only at this group,
# never at what other programs on the machine create meanwhile.

# wait_namespaces GID NAME MIN: waits (10 s) until the group's keeper and
# processes are in at least MIN namespaces; sets NS to them.
wait_namespaces() {
    local i
    for ((i = 0; i < 50; i++)); do
        NS=$(group_namespaces "$1" "$2")
        [ "$(printf '%s\n' "$NS" | grep -c .)" -ge "$3" ] && return 0
        sleep 0.2
    done
    fail_group "$1" "expected $3 namespaces (hub + nodes), found: $NS"
}

# wait_pid_gone PID WHAT: waits (10 s) until PID no longer runs.
wait_pid_gone() {
    local i
    for ((i = 0; i < 50; i++)); do
        alive "$1" || return 0
        sleep 0.2
    done
    fail "$2 (pid $1) still runs"
}

# wait_group_procs_gone NAME GID SECONDS: waits until no process carries the
# group's environment (its nodes ended).
wait_group_procs_gone() {
    local i left
    for ((i = 0; i < $3 * 5; i++)); do
        left=$(pids_with_env "SKYPILOT_JOBGROUP_NAME=$1" "JGSCHED_GROUP_ID=$2")
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    # shellcheck disable=SC2086
    fail "the nodes of group $2 did not end within $3 s: $(describe_pids $left)"
}

# keepers: the pids of this instance's network keepers (jgsched-keeper ... --hold
# <a group directory of this instance>).
keepers() {
    pgrep -f -- "--hold $(jg_regex_escape "$GROUPS_DIR")/[0-9]+\$" 2>/dev/null || true
}

# restart_daemon: starts jgschedd again on this instance (after kill -9).
restart_daemon() {
    timeout -k 5 30 "$JGSCHEDD" >"$JG_WORK/jgschedd.restart" 2>&1 ||
        fail "jgschedd did not restart: $(cat "$JG_WORK/jgschedd.restart")"
    local i
    for ((i = 0; i < 25; i++)); do
        JG_DAEMON_PID=$(tr -dc '0-9' <"$JGSCHED_HOME/jgschedd.pid" 2>/dev/null)
        [ -n "$JG_DAEMON_PID" ] && kill -0 "$JG_DAEMON_PID" 2>/dev/null && return 0
        sleep 0.2
    done
    fail "no live daemon after restart"
}

node_address() {    # JOB RANK -> its address in $SHOW
    # shellcheck disable=SC2016
    sq 'grp.nodes[] | select(.job == $j and .rank == ($r | tonumber)) | .address' --arg j "$1" --arg r "$2"
}

# ---------------------------------------------------------------- 2.2 HTTP by hostname
fast_copy "$JG_SEED/2_2_networking.yaml" "$JG_WORK/2_2.yaml"
submit_follow "$JG_WORK/2_2.yaml"
G22=$GID
[ "$RC" -eq 0 ] || fail_group "$G22" "submit of 2_2_networking.yaml exited $RC, expected 0"
show_json "$G22"
assert_eq "$(sq 'grp.state')" SUCCEEDED "group state"
assert_eq "$(node_address server 0)" 10.200.0.2 "address of server-0 in show --json"
assert_eq "$(node_address client 0)" 10.200.0.3 "address of client-0 in show --json"
jgc_ok logs "$G22"
assert_contains "$OUT" "(server-0) Server starting on server-0" "logs of 2.2 (hostname of the server)"
assert_contains "$OUT" "(client-0) Client starting on client-0" "logs of 2.2 (hostname of the client)"
assert_match "$OUT" "\(client-0\) 10\.200\.0\.2 +server-0\.k8s-network-test" "getent in the client's log"
assert_contains "$OUT" "(client-0) SUCCESS: Connected to server on attempt" "logs of 2.2"
ok "2.2 client resolves server-0.k8s-network-test to the server's own address and fetches its page"

# ---------------------------------------------------------------- 2.3 ping between nodes
fast_copy "$JG_SEED/2_3_multinode.yaml" "$JG_WORK/2_3.yaml"
submit_follow "$JG_WORK/2_3.yaml"
G23=$GID
[ "$RC" -eq 0 ] || fail_group "$G23" "submit of 2_3_multinode.yaml exited $RC, expected 0"
jgc_ok logs "$G23" coordinator
assert_eq "$(printf '%s\n' "$OUT" | grep -c '^(coordinator-0)   Reachable$')" 2 "workers reachable by ping"
assert_not_contains "$OUT" "Not reachable" "logs of the coordinator"
jgc_ok logs "$G23" workers
assert_contains "$OUT" "(workers-0) Worker node workers-0 starting" "logs of workers"
assert_contains "$OUT" "(workers-1) Worker node workers-1 starting" "logs of workers"
ok "2.3 the coordinator pings workers-0 and workers-1 by hostname; each worker knows its name"

# ---------------------------------------------------------------- 4 RL architecture, 7 nodes
# The seed's four jobs and node counts; every node serves on the same port and
# reaches every node of the group (its own name included) by hostname.
# shellcheck disable=SC2016
reach='
  echo "$JGSCHED_JOB node $SKYPILOT_NODE_RANK is $(hostname) in $SKYPILOT_JOBGROUP_NAME"
  python3 -m http.server 7000 >/dev/null 2>&1 &
  SERVER=$!
  for h in $JGSCHED_GROUP_HOSTS; do
    ok=0
    for i in $(seq 50); do
      if curl -sf -o /dev/null "http://$h:7000/" && ping -c1 -W1 "$h" >/dev/null; then ok=1; break; fi
      sleep 0.1
    done
    [ "$ok" = 1 ] && echo "reached $h" || { echo "CANNOT reach $h"; kill $SERVER; exit 1; }
  done
  # Stay until every node (this one too) has pinged this one: a node that
  # ended would take its address with it.  InEchos counts echo requests
  # received in the namespace of this node.
  for i in $(seq 300); do
    [ "$(awk "/^Icmp: [0-9]/ { print \$10 }" /proc/net/snmp)" -ge 7 ] && break
    sleep 0.1
  done
  kill $SERVER'
{
    printf -- '---\nname: rl-experiment\nplacement: SAME_INFRA\nexecution: parallel\n'
    for j in trainer:2 data-processor:2 replay-buffer:1 env-worker:2; do
        printf -- '---\nname: %s\nnum_nodes: %s\nrun: |%s\n' "${j%%:*}" "${j##*:}" "$reach"
    done
} >"$JG_WORK/4_rl.yaml"
submit_follow "$JG_WORK/4_rl.yaml"
G4=$GID
[ "$RC" -eq 0 ] || fail_group "$G4" "submit of the 7-node RL group exited $RC, expected 0"
jgc_ok logs "$G4"
logs4=$OUT
for node in trainer-0 trainer-1 data-processor-0 data-processor-1 replay-buffer-0 env-worker-0 env-worker-1; do
    assert_contains "$logs4" "($node) ${node%-*} node ${node##*-} is $node in rl-experiment" "logs of the RL group"
    assert_eq "$(printf '%s\n' "$logs4" | grep -c "^($node) reached .*\.rl-experiment$")" 7 "hosts reached by $node"
done
assert_not_contains "$logs4" "CANNOT" "logs of the RL group"
show_json "$G4"
assert_eq "$(sq '[grp.nodes[].address] | unique | length')" 7 "distinct node addresses"
ok "4 RL architecture: 7 nodes, each prints its hostname and reaches all 7 by name (HTTP on one port + ping)"

# ---------------------------------------------------------------- 3.2 hostname references
cat >"$JG_WORK/3_2.yaml" <<'EOF'
---
name: k8s-gpu-cpu-group
placement: SAME_INFRA
execution: parallel
---
name: gpu-trainer
run: |
  echo "GPU trainer starting on $(hostname)"
  python3 -m http.server 8000 >/dev/null 2>/tmp/access.log &
  # Serve until the preprocessor has fetched the page (this node's own /tmp).
  for i in $(seq 300); do grep -q "GET /" /tmp/access.log && break; sleep 0.1; done
  kill $!
---
name: cpu-preprocessor
run: |
  echo "Can reach trainer at: gpu-trainer-0.${SKYPILOT_JOBGROUP_NAME}"
  for i in $(seq 30); do
    curl -sf -o /dev/null "http://gpu-trainer-0.${SKYPILOT_JOBGROUP_NAME}:8000/" && { echo "reached the trainer"; exit 0; }
    sleep 0.1
  done
  exit 1
EOF
submit_follow "$JG_WORK/3_2.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "the 3.2 hostname group exited $RC, expected 0"
jgc_ok logs "$GID"
assert_contains "$OUT" "(cpu-preprocessor-0) reached the trainer" "logs of 3.2"
assert_contains "$OUT" "(gpu-trainer-0) GPU trainer starting on gpu-trainer-0" "logs of 3.2"
ok "3.2 the preprocessor reaches gpu-trainer-0.<group> (accelerators left out: no GPU here)"

# ---------------------------------------------------------------- port reuse
cat >"$JG_WORK/ports.yaml" <<'EOF'
---
name: ports
placement: SAME_INFRA
execution: parallel
primary_tasks: [client]
---
name: web
num_nodes: 3
run: exec python3 -m http.server 8080
---
name: client
run: |
  for r in 0 1 2; do
    for i in $(seq 50); do
      curl -sf -o /dev/null "http://web-$r.ports:8080/" && { echo "web-$r answers on 8080"; continue 2; }
      sleep 0.1
    done
    exit 1
  done
EOF
submit_follow "$JG_WORK/ports.yaml"
GP=$GID
jgc_ok logs "$GP" client
for r in 0 1 2; do assert_contains "$OUT" "web-$r answers on 8080" "logs of the client"; done
show_json "$GP"
assert_eq "$(job_field client state)" SUCCEEDED "client state"
ok "three nodes listen on port 8080 at once and each answers by its own name"

# ---------------------------------------------------------------- isolation, same group name
cat >"$JG_WORK/twin-a.yaml" <<'EOF'
---
name: twin
placement: SAME_INFRA
execution: parallel
---
name: s
num_nodes: 2
run: exec python3 -m http.server 8080
---
name: probe
run: |
  until curl -sf -o /dev/null http://s-1.twin:8080/; do sleep 0.1; done
  echo "s-1 is up"
  exec sleep 300
EOF
cat >"$JG_WORK/twin-b.yaml" <<'EOF'
---
name: twin
placement: SAME_INFRA
execution: parallel
---
name: c
run: |
  echo "c-0 of the second twin has $(hostname -I)"
  curl -s -o /dev/null --connect-timeout 2 http://10.200.0.3:8080/ && { echo "LEAK: reached 10.200.0.3"; exit 1; }
  getent hosts s-1.twin && { echo "LEAK: resolved s-1.twin"; exit 2; }
  ping -c1 -W1 10.200.0.3 >/dev/null && { echo "LEAK: pinged 10.200.0.3"; exit 3; }
  echo "isolated"
EOF
submit_detached "$JG_WORK/twin-a.yaml"
GA=$GID
wait_log "$GA" "s-1 is up" 20
submit_follow "$JG_WORK/twin-b.yaml"
GB=$GID
[ "$RC" -eq 0 ] || fail_group "$GB" "the second 'twin' group reached the first (exit $RC)"
jgc_ok logs "$GB"
assert_contains "$OUT" "(c-0) isolated" "logs of the second twin"
assert_contains "$OUT" "(c-0) c-0 of the second twin has 10.200.0.2" "logs of the second twin"
jgc_ok cancel "$GA"
wait_state "$GA" CANCELLED 15
ok "two concurrent groups named 'twin' cannot reach or resolve each other's nodes"

# ---------------------------------------------------------------- 6.1 /tmp kept across recovery
# A decoy marker in the host's /tmp: a node that saw the host's /tmp would
# skip its first, failing attempt.
decoy=0
if [ ! -e /tmp/recovery_marker ]; then touch /tmp/recovery_marker && decoy=1; fi
fast_copy "$JG_SEED/6_1_recovery.yaml" "$JG_WORK/6_1.yaml"
submit_follow "$JG_WORK/6_1.yaml"
G61=$GID
[ "$decoy" = 1 ] && rm -f /tmp/recovery_marker
[ "$RC" -eq 0 ] || fail_group "$G61" "submit of 6_1_recovery.yaml exited $RC, expected 0"
jgc_ok logs "$G61" recoverable-job
assert_contains "$OUT" "First attempt, simulating recoverable error" "logs of recoverable-job"
assert_contains "$OUT" "Recovery successful!" "logs of recoverable-job"
ok "6.1 the marker written in /tmp by attempt 1 is there for attempt 2 (the host's /tmp, holding one, is not seen)"

# ---------------------------------------------------------------- nothing left after cancel
cat >"$JG_WORK/sleepers.yaml" <<'EOF'
---
name: sleepers
placement: SAME_INFRA
execution: parallel
---
name: a
num_nodes: 3
run: |
  setsid -f sleep 300
  exec sleep 300
EOF
submit_detached "$JG_WORK/sleepers.yaml" -n "sleepers-$TAG"
GC=$GID
wait_state "$GC" RUNNING 20
wait_namespaces "$GC" "sleepers-$TAG" 4
ns=$NS
kp=$(keeper_pid "$GC")
{ [ -n "$kp" ] && alive "$kp"; } || fail_group "$GC" "no live network keeper for the group"
jgc_ok cancel "$GC"
wait_state "$GC" CANCELLED 15
# shellcheck disable=SC2086
assert_namespaces_gone $ns
! alive "$kp" || fail "the network keeper $kp survived cancel"
[ ! -e "$GROUPS_DIR/$GC/net" ] || fail "the group's net file survived cancel"
assert_no_leftovers "sleepers-$TAG" "$GC"
ok "cancel leaves no namespace, link, keeper or process (a setsid'd one included)"

# ---------------------------------------------------------------- a daemon killed with -9
submit_detached "$JG_WORK/sleepers.yaml" -n "crash-$TAG"
GK=$GID
wait_state "$GK" RUNNING 20
wait_namespaces "$GK" "crash-$TAG" 4
ns=$NS
kp=$(keeper_pid "$GK")
kill -9 "$JG_DAEMON_PID"
wait_pid_gone "$JG_DAEMON_PID" "the daemon killed with -9"
alive "$kp" || fail "the network keeper died with the daemon"
[ -n "$(pids_with_env "SKYPILOT_JOBGROUP_NAME=crash-$TAG" "JGSCHED_GROUP_ID=$GK")" ] || fail "the nodes died with the daemon"
restart_daemon
wait_state "$GK" RUNNING 10
jgc_ok cancel "$GK"
wait_state "$GK" CANCELLED 15
# shellcheck disable=SC2086
assert_namespaces_gone $ns
! alive "$kp" || fail "the network keeper $kp survived cancel after a daemon restart"
assert_no_leftovers "crash-$TAG" "$GK"
ok "kill -9 of the daemon: nodes and network keep running; after restart, cancel removes everything"

cat >"$JG_WORK/short.yaml" <<'EOF'
---
name: short
placement: SAME_INFRA
execution: parallel
---
name: a
num_nodes: 2
run: |
  until [ -e @GO_FILE@ ]; do sleep 0.1; done
  ping -c1 -W2 a-0.${SKYPILOT_JOBGROUP_NAME} >/dev/null && ping -c1 -W2 a-1.${SKYPILOT_JOBGROUP_NAME} >/dev/null || exit 1
  # Stay until both nodes pinged this one (InEchos: echo requests received
  # in this node's namespace): a node that ended takes its address with it.
  for i in $(seq 100); do
    [ "$(awk '/^Icmp: [0-9]/ { print $10 }' /proc/net/snmp)" -ge 2 ] && exit 0
    sleep 0.1
  done
  exit 2
EOF
GO_FILE=$JG_WORK/go-$TAG     # JG_WORK is not under /tmp: nodes see it
sed -i "s|@GO_FILE@|$GO_FILE|" "$JG_WORK/short.yaml"
submit_detached "$JG_WORK/short.yaml" -n "short-$TAG"
GS=$GID
wait_state "$GS" RUNNING 20
wait_namespaces "$GS" "short-$TAG" 3
ns=$NS
kp=$(keeper_pid "$GS")
kill -9 "$JG_DAEMON_PID"
wait_pid_gone "$JG_DAEMON_PID" "the daemon killed with -9"
# The nodes start pinging only now, and end while no daemon watches.
touch "$GO_FILE"
wait_group_procs_gone "short-$TAG" "$GS" 30
restart_daemon
wait_end "$GS" 20
[ "$END_STATE" = SUCCEEDED ] || fail_group "$GS" "the group that ended while the daemon was down is $END_STATE"
# shellcheck disable=SC2086
assert_namespaces_gone $ns
! alive "$kp" || fail "the network keeper $kp survived the end of its group"
ok "a group that ends while the daemon is down is cleaned up (network included) once it is back"

# ---------------------------------------------------------------- a daemon killed while it launches
# The daemon spawns a group's keeper, then records it in <group dir>/net; killed
# in between, it leaves a keeper no record names.  The test kills it as soon
# as the keeper appears; should the record already be written by then, it is
# removed (as root, like the daemon's own files), which is the state a kill
# in that window leaves.  The restarted daemon must find the keeper by what
# the kernel says of it (its uid, executable and arguments) and kill it.
k0=$(keepers | sort)
jgc submit "$JG_WORK/sleepers.yaml" --infra local -n "launch-$TAG" -d &
submit_pid=$!
kl=""
for ((i = 0; i < 1000; i++)); do
    kl=$(keepers | sort | comm -13 <(printf '%s\n' "$k0") - | head -n1)
    [ -z "$kl" ] || break
    sleep 0.01
done
[ -n "$kl" ] || fail "no network keeper appeared within 10 s of the submit"
kill -9 "$JG_DAEMON_PID"
wait_pid_gone "$JG_DAEMON_PID" "the daemon killed with -9"
wait "$submit_pid" || true
gdir=$(tr '\0' '\n' <"/proc/$kl/cmdline" | tail -n 1)    # jgsched-keeper MODE NETWORK --hold DIR
GL=${gdir##*/}
if [ -e "$gdir/net" ]; then
    echo "# the keeper was recorded before the kill: removing the record"
    rm -f "$gdir/net"
fi
nsl=$(netns_ino "$kl")
restart_daemon
wait_pid_gone "$kl" "the unrecorded network keeper of group $GL"
jgc cancel "$GL" >/dev/null 2>&1 || true
wait_end "$GL" 20
# shellcheck disable=SC2086,SC2046
assert_namespaces_gone $nsl $(group_namespaces "$GL" "launch-$TAG")
assert_no_leftovers "launch-$TAG" "$GL"
[ -z "$(keepers | sort | comm -13 <(printf '%s\n' "$k0") -)" ] || fail "keepers left: $(keepers)"
ok "kill -9 of the daemon while it makes a group's network: the restarted daemon kills the keeper no record names"

jg_done
