#!/usr/bin/env bash
# jgsched Kubernetes benchmark (figures, not pass/fail): one 100-node group
# (25 jobs x 4 nodes, `run: "true"`) on the Kubernetes backend against the
# test API server (tests/k8s/apiserver) with 20 ms of latency on every
# request, and the same group on the local backend beside it, R times each:
#   - submit -> every pod created (the API server's pod list of the group
#     reaches 100; polled every 0.1 s; Kubernetes only);
#   - submit -> barrier released: the last node's RUNNING event (every node
#     has finished setup and was released);
#   - submit -> group ended (SUCCEEDED) and -> nothing of it left (pods,
#     services, configmaps, secrets gone; Kubernetes only);
#   - the daemon's CPU time (utime + stime of /proc/PID/stat) from submit to
#     the group's end, per node (= per pod on Kubernetes).
# Medians over R runs (R=3 by default).  The test server's kubelet runs
# every pod as local processes in a network namespace of its own on this
# host, so its cost (and the server's, a Node.js process) shares the CPUs
# with the daemon's: the times are an upper bound of what the daemon needs,
# the daemon CPU per pod is its own.
# Needs root (network namespaces) and node/npm.
# Usage: bench/k8s_100pods.sh [BUILD_DIR]   (R=3 LATENCY_MS=20 JOBS=25 NODES=4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
R=${R:-3}
LATENCY_MS=${LATENCY_MS:-20}
JOBS=${JOBS:-25}
NODES=${NODES:-4}
PODS=$((JOBS * NODES))
JG=$build/jgsched
TICK=$(getconf CLK_TCK)
if [ "$(id -u)" -ne 0 ]; then
  echo "k8s_100pods: needs root (the test API server's kubelet makes network namespaces)" >&2
  exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "k8s_100pods: needs node and npm (scripts/deps.sh)" >&2
  exit 1
fi
"$root/scripts/build.sh" "$build"
# shellcheck source=tests/k8s/apiserver/lib.sh
. "$root/tests/k8s/apiserver/lib.sh"

export JGSCHED_HOME=""
WORK=$(mktemp -d /tmp/jgbench-k8s.XXXXXX)
stop_daemon() {
  [ -n "$JGSCHED_HOME" ] || return 0
  "$JG" cancel -a >/dev/null 2>&1 || true
  "$JG" daemon stop >/dev/null 2>&1 || true
  pkill -9 -f "$JGSCHED_HOME" 2>/dev/null || true
  rm -rf "$JGSCHED_HOME"
  JGSCHED_HOME=""
}
cleanup() {
  stop_daemon
  jk_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "-"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
state_of() { "$JG" show "$1" --json | jq -r '(.group // .).state'; }

# the group: JOBS jobs of NODES nodes, trivial commands
{
  printf -- '---\nname: bench-100\nplacement: SAME_INFRA\nexecution: parallel\n'
  for j in $(seq "$JOBS"); do
    printf -- '---\nname: job-%d\nnum_nodes: %d\nresources:\n  cpus: 0.1\n  infra: @INFRA@\nrun: "true"\n' "$j" "$NODES"
  done
} >"$WORK/group.yaml.in"
sed 's/@INFRA@/kubernetes/' "$WORK/group.yaml.in" >"$WORK/k8s.yaml"
sed 's/@INFRA@/local/' "$WORK/group.yaml.in" >"$WORK/local.yaml"

# simulated nodes with room for every pod
mkdir -p "$WORK/agent"
cp "$build/jgsched-agent" "$WORK/agent/jgsched-agent"
printf '[%s]\n' "$(for n in 1 2 3 4; do printf '{"name":"node-%d","allocatable":{"cpu":"64","memory":"256Gi","pods":"110"}}\n' "$n"; done | paste -sd,)" >"$WORK/nodes.json"
jk_start --namespace jgbench --nodes "$WORK/nodes.json" --latency-ms "$LATENCY_MS" \
  --image-files "jgsched-bench/agent=$WORK/agent" >/dev/null
rm -f "$WORK/nodes.json"

JGSCHED_HOME=$(mktemp -d /tmp/jgbench-k8s-home.XXXXXX)
cat >"$JGSCHED_HOME/config.yaml" <<CFG
backends:
  local:
    capacity: {cpus: 64, memory: 256GB}
    nat: false
  kubernetes:
    kubeconfig: $JK_KUBECONFIG
    agent_image: jgsched-bench/agent:test
CFG
"$build/jgschedd"
pid=$(cat "$JGSCHED_HOME/jgschedd.pid")

group_pods() { jk_api GET "/api/v1/namespaces/jgbench/pods?labelSelector=jgsched.io%2Fgroup-id%3D$1" | jq '.items | length'; }
group_left() {
  local k n=0
  for k in pods services configmaps secrets; do
    n=$((n + $(jk_api GET "/api/v1/namespaces/jgbench/$k?labelSelector=jgsched.io%2Fgroup-id%3D$1" | jq '.items | length')))
  done
  echo "$n"
}

# run INFRA: one group; appends "created released ended clean cpu_ms_per_node" to $WORK/INFRA.
run() {
  local infra=$1 t0 c0 gid t_created=- t_end t_clean=- c1 st released
  c0=$(cpu_ticks "$pid"); t0=$(now)
  gid=$("$JG" submit -d "$WORK/$infra.yaml")
  while :; do
    if [ "$infra" = k8s ] && [ "$t_created" = - ] && [ "$(group_pods "$gid")" -ge "$PODS" ]; then t_created=$(now); fi
    st=$(state_of "$gid")
    case $st in SUCCEEDED | FAILED* | CANCELLED) break ;; esac
    sleep 0.1
  done
  t_end=$(now); c1=$(cpu_ticks "$pid")
  [ "$st" = SUCCEEDED ] || { echo "group $gid ($infra) ended $st" >&2; "$JG" show "$gid" >&2; exit 1; }
  if [ "$infra" = k8s ]; then
    while [ "$(group_left "$gid")" != 0 ]; do sleep 0.1; done
    t_clean=$(now)
  fi
  released=$("$JG" show "$gid" --json | jq -r '[(.group // .).events[] | select(.what == "RUNNING" and (.subject | startswith("node ")))] | map(.ts) | max')
  awk -v t0="$t0" -v a="$t_created" -v r="$released" -v e="$t_end" -v c="$t_clean" -v cpu="$((c1 - c0))" -v tk="$TICK" -v n="$PODS" 'BEGIN {
    printf "%s %.3f %.3f %s %.2f\n", (a == "-" ? "-" : sprintf("%.3f", a - t0)), r - t0, e - t0,
      (c == "-" ? "-" : sprintf("%.3f", c - t0)), 1000 * cpu / tk / n }' >>"$WORK/$infra"
}

echo "jgsched Kubernetes bench: one group of $JOBS jobs x $NODES nodes ($PODS pods), run: true;" \
     "test API server with ${LATENCY_MS} ms per request; $(nproc) cores; $R runs each"
for i in $(seq "$R"); do
  run k8s
  run local
  printf '  run %d: kubernetes %s | local %s\n' "$i" "$(tail -n 1 "$WORK/k8s")" "$(tail -n 1 "$WORK/local")"
done
col() { awk -v c="$2" '{print $c}' "$WORK/$1" | grep -v '^-$' | median; }
printf '%-12s %14s %14s %14s %14s %18s\n' "median of $R" "pods created" "barrier" "ended" "all deleted" "daemon CPU/node"
for infra in k8s local; do
  printf '%-12s %13ss %13ss %13ss %13ss %15s ms\n' "$([ $infra = k8s ] && echo kubernetes || echo local)" \
    "$(col $infra 1)" "$(col $infra 2)" "$(col $infra 3)" "$(col $infra 4)" "$(col $infra 5)"
done
echo "(times from submit; 'barrier': the last node's RUNNING event; '-': does not apply)"
