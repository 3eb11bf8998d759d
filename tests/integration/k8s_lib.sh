# shellcheck shell=bash
# shellcheck disable=SC2034  # END_STATE, POD, K8S_NS: read by the tests that source this
# k8s_lib.sh - shared setup of the integration tests that run jgsched's
# Kubernetes backend against the test API server (tests/k8s/apiserver, sourced,
# not run).  It sources lib.sh (jg_setup, jgc, fail, wait_state ...) and the
# server's lib.sh (jk_start, jk_api, jk_exec).
#
#   k8s_need                  exit 77 (skip) without root, node/npm or nsenter
#   k8s_setup [SERVER OPT...] starts the server (its kubelet runs pods as local
#                             processes, the agent image's files come from the
#                             build), writes config.yaml with backends.kubernetes
#                             and starts the daemon with jg_setup; returns once
#                             `jgsched infra` shows kubernetes reachable.  Sets K8S_NS,
#                             the namespace the kubeconfig's context names (the
#                             backend's default: the config does not repeat it).
#   k8s_pods GID              the group's pods (JSON array), by label
#   k8s_pod GID JOB RANK      name of the node's live pod ("" if none)
#   k8s_wait_pod GID JOB RANK TIMEOUT_S   waits until that pod is Running; sets POD
#   k8s_exec GID JOB RANK CMD...          CMD inside the node's pod (jk_exec)
#   k8s_node_ips GID...       "GID:JOB:RANK IP" of the groups' live pods
#   k8s_check_names GID JOB RANK NAME=GID:JOB:RANK...
#                             inside the node's pod: every NAME resolves
#                             (getent hosts) to the IP of that node's pod
#   k8s_wait_clean GID TIMEOUT_S          nothing of the group remains
#   k8s_pod_uids GID JOB RANK the distinct pods (uids) the node ever had
#
# Teardown: jg_teardown (lib.sh) cancels the groups and stops the daemon while
# the server still runs (so the backend deletes what it made), then calls
# jg_final_teardown, which stops the server (it removes its pods' processes,
# network namespaces and bridge) and the agent image directory.  A test that
# needs its own jg_final_teardown must call k8s_teardown from it.
#
# Environment: JGSCHED_AGENT (meson: the built jgsched-agent), K8S_NODES (JSON
# for --nodes; default: four nodes of 32 CPUs and 128Gi), K8S_CONFIG_EXTRA
# (lines appended to config.yaml, after backends.kubernetes: indented by four
# spaces they are keys of that section, unindented top-level keys such as
# `stop_grace: 2`).

# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=SCRIPTDIR/../k8s/apiserver/lib.sh
. "$JG_SOURCE_ROOT/tests/k8s/apiserver/lib.sh"

K8S_AGENT_IMAGE=jgsched-test/agent:test
K8S_IMAGE_DIR=""
K8S_NS=""
# Polling interval of the waits here: several groups are watched at once on a
# 2-core machine, so not every 0.2 s as lib.sh's waits do.
K8S_POLL=1

k8s_need() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "# skip: ${0##*/} needs root (the test API server's kubelet makes network namespaces)"
        exit 77
    fi
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "# skip: ${0##*/} needs node and npm for the test API server (scripts/deps.sh)"
        exit 77
    fi
    local tool
    for tool in nsenter curl jq ip; do
        command -v "$tool" >/dev/null || { echo "not ok - $tool is needed" >&2; exit 1; }
    done
    : "${JGSCHED_AGENT:?JGSCHED_AGENT must name the built jgsched-agent}"
    [ -x "$JGSCHED_AGENT" ] || { echo "not ok - JGSCHED_AGENT=$JGSCHED_AGENT is not executable" >&2; exit 1; }
}

k8s_teardown() {
    # the directory first: it must go even if a second signal cuts jk_stop short
    # (running containers keep their bind mount of the agent)
    [ -z "$K8S_IMAGE_DIR" ] || rm -rf "$K8S_IMAGE_DIR"
    K8S_IMAGE_DIR=""
    jk_stop
}

jg_final_teardown() { k8s_teardown; }

# On a failure, what the server saw (jg_teardown runs this first, with its
# exit status in rc, while the server and the daemon still run).
k8s_dump_server() {
    # shellcheck disable=SC2154  # rc: jg_teardown's local
    [ "${rc:-0}" -ne 0 ] && [ -n "${JK_PORT:-}" ] || return 0
    {
        echo "# pods in $K8S_NS:"
        jk_api GET "/api/v1/namespaces/$K8S_NS/pods" |
            jq -r '.items[]? | "#   \(.metadata.name) \(.status.phase) node=\(.spec.nodeName) ip=\(.status.podIP) deleting=\(.metadata.deletionTimestamp != null) \([.status.containerStatuses[]?.state | keys[0]] | join(","))"'
        echo "# last events:"
        jk_api GET "/api/v1/namespaces/$K8S_NS/events" |
            jq -r '.items[-25:][]? | "#   \(.involvedObject.name) \(.reason): \(.message)"'
        echo "# server stderr:"
        tail -n 20 "$JK_DIR/server.err" 2>/dev/null | sed 's/^/#   /'
    } >&2
}
jg_extra_teardown() { k8s_dump_server; }

# k8s_setup [SERVER OPTION...]
k8s_setup() {
    k8s_need
    trap k8s_teardown EXIT
    # The agent "image": a directory holding only the agent, which the
    # kubelet bind-mounts at /jgsched-agent in containers of that image (the
    # init container copies it into the pod, as on a real cluster).
    K8S_IMAGE_DIR=$(mktemp -d /tmp/jg-k8s-image.XXXXXX) || fail "mktemp"
    cp "$JGSCHED_AGENT" "$K8S_IMAGE_DIR/jgsched-agent" || fail "copy $JGSCHED_AGENT"
    local nodes='[{"name":"node-1","allocatable":{"cpu":"32","memory":"128Gi","pods":"110"}},
        {"name":"node-2","allocatable":{"cpu":"32","memory":"128Gi","pods":"110"}},
        {"name":"node-3","allocatable":{"cpu":"32","memory":"128Gi","pods":"110"}},
        {"name":"node-4","allocatable":{"cpu":"32","memory":"128Gi","pods":"110"}}]'
    printf '%s\n' "${K8S_NODES:-$nodes}" >"$K8S_IMAGE_DIR/nodes.json"
    K8S_NS=jgsched-test
    jk_start --namespace "$K8S_NS" --nodes "$K8S_IMAGE_DIR/nodes.json" \
        --image-files "$K8S_AGENT_IMAGE=$K8S_IMAGE_DIR" "$@" || fail "the test API server did not start"
    # --image-files mounts every entry of the directory: only the agent.
    rm -f "$K8S_IMAGE_DIR/nodes.json"
    JG_CONFIG="backends:
  local:
    capacity: {cpus: 64, memory: 256GB}
    nat: false
  kubernetes:
    kubeconfig: $JK_KUBECONFIG
    agent_image: $K8S_AGENT_IMAGE
    image: ubuntu:24.04
${K8S_CONFIG_EXTRA:-}"
    jg_setup
    k8s_wait_reachable 60
}

# k8s_wait_reachable TIMEOUT_S: `jgsched infra` lists kubernetes reachable,
# with the capacity of the Nodes (what a user checks before submitting:
# until the backend has listed the Nodes it cannot tell what fits).
k8s_wait_reachable() {
    local limit=$1 t0 row=""
    t0=$(date +%s)
    while :; do
        jgc infra --json
        row=$(jq -c '(.backends // .)[]? | select(.name == "kubernetes")' <<<"$OUT" 2>/dev/null)
        [ -n "$row" ] && jq -e '.reachable == true and (.capacity.cpus // 0) > 0' <<<"$row" >/dev/null && return 0
        [ $(($(date +%s) - t0)) -lt "$limit" ] || fail "jgsched infra does not list kubernetes as reachable with a capacity after ${limit}s: $OUT"
        sleep "$K8S_POLL"
    done
}

k8s_sel() { # GID -> URL-encoded label selector of the group's objects
    printf 'jgsched.io%%2Fgroup-id%%3D%s' "$1"
}

k8s_pods() {
    jk_api GET "/api/v1/namespaces/$K8S_NS/pods?labelSelector=$(k8s_sel "$1")" | jq -c '.items // []'
}

# k8s_pod GID JOB RANK: the node's pod, jg-<gid>-<job>-<rank> as the contract
# names it (k8s_seed.sh checks the names against the labels); "" once it is
# gone or being deleted.  By name, not by a label query: one request less
# in checks that must finish while the plan's 10-second pods still run.
k8s_pod() {
    local name="jg-$1-$2-$3"
    k8s_pod_json "$name" | jq -e '.kind == "Pod" and .metadata.deletionTimestamp == null' >/dev/null 2>&1 && echo "$name"
}

k8s_pod_json() { # NAME
    jk_api GET "/api/v1/namespaces/$K8S_NS/pods/$1"
}

# k8s_wait_pod GID JOB RANK TIMEOUT_S: the node's pod is Running; POD names it.
k8s_wait_pod() {
    local gid=$1 job=$2 rank=$3 limit=$4 phase="" t0
    POD="jg-$gid-$job-$rank"
    t0=$(date +%s)
    while :; do
        phase=$(k8s_pod_json "$POD" | jq -r 'select(.kind == "Pod" and .metadata.deletionTimestamp == null) | .status.phase // empty')
        [ "$phase" = Running ] && return 0
        [ $(($(date +%s) - t0)) -lt "$limit" ] || break
        sleep "$K8S_POLL"
    done
    fail_group "$gid" "no Running pod $POD (node $job-$rank of group $gid) after ${limit}s (phase '$phase')"
}

# The container jgsched runs a node in (objects.c: the agent, then the job).
K8S_CONTAINER=main

k8s_exec() { # GID JOB RANK CMD...
    local gid=$1 job=$2 rank=$3
    shift 3
    jk_exec -c "$K8S_CONTAINER" "$K8S_NS" "jg-$gid-$job-$rank" "$@" </dev/null
}

# k8s_node_ips GID...: "GID:JOB:RANK IP" lines for the live pods of the groups.
k8s_node_ips() {
    local g
    for g in "$@"; do
        k8s_pods "$g" | jq -r --arg g "$g" '.[] | select(.metadata.deletionTimestamp == null)
            | "\($g):\(.metadata.labels["jgsched.io/job"]):\(.metadata.labels["jgsched.io/rank"]) \(.status.podIP // "")"'
    done
}

# k8s_check_names GID JOB RANK NAME=TGID:TJOB:TRANK...: inside the pod of node
# JOB-RANK of group GID, each NAME resolves with getent hosts (what the seed
# plan's scripts use) to the IP of the pod of node TJOB-TRANK of group TGID.
# One exec and one pod list per group: the pods of the plan may live 10 s.
k8s_check_names() {
    local gid=$1 job=$2 rank=$3 spec name target ip want got ips
    shift 3
    local names=() gids=()
    for spec in "$@"; do
        names+=("${spec%%=*}")
        target=${spec#*=}
        [[ " ${gids[*]} " == *" ${target%%:*} "* ]] || gids+=("${target%%:*}")
    done
    # shellcheck disable=SC2016
    got=$(k8s_exec "$gid" "$job" "$rank" sh -c 'for n; do printf "%s %s\n" "$n" "$(getent hosts "$n" | awk "{print \$1}" | head -n 1)"; done' sh "${names[@]}") ||
        fail_group "$gid" "could not run getent in the pod of $job-$rank of group $gid"
    ips=$(k8s_node_ips "${gids[@]}")
    for spec in "$@"; do
        name=${spec%%=*}
        target=${spec#*=}
        want=$(printf '%s\n' "$ips" | awk -v t="$target" '$1 == t {print $2}')
        ip=$(printf '%s\n' "$got" | awk -v n="$name" '$1 == n {print $2}')
        [ -n "$want" ] || fail_group "$gid" "no pod IP for node ${target#*:} of group ${target%%:*} (pods: $(tr '\n' ' ' <<<"$ips"))"
        [ "$ip" = "$want" ] ||
            fail_group "$gid" "in the pod of $job-$rank (group $gid), $name resolves to '$ip', want $want (pod of ${target#*:} of group ${target%%:*})"
    done
}

# k8s_leftovers GID: what of the group is still on the API server (kind/name
# lines): objects labelled with its id, and those named after it.
k8s_leftovers() {
    local gid=$1 kind
    for kind in pods services configmaps secrets; do
        jk_api GET "/api/v1/namespaces/$K8S_NS/$kind" |
            jq -r --arg k "$kind" --arg g "$gid" '.items[]? | select(.metadata.labels["jgsched.io/group-id"] == $g
                or (.metadata.name | test("^jg-" + $g + "($|-)"))) | "\($k)/\(.metadata.name)"'
    done
    for kind in roles rolebindings; do
        jk_api GET "/apis/rbac.authorization.k8s.io/v1/namespaces/$K8S_NS/$kind" |
            jq -r --arg k "$kind" --arg g "$gid" '.items[]? | select(.metadata.labels["jgsched.io/group-id"] == $g
                or (.metadata.name | test("^jg-" + $g + "($|-)"))) | "\($k)/\(.metadata.name)"'
    done
}

# k8s_wait_clean GID TIMEOUT_S: nothing of the group remains on the server.
k8s_wait_clean() {
    local gid=$1 limit=$2 left="" t0
    t0=$(date +%s)
    while :; do
        left=$(k8s_leftovers "$gid")
        [ -z "$left" ] && return 0
        [ $(($(date +%s) - t0)) -lt "$limit" ] || break
        sleep "$K8S_POLL"
    done
    fail_group "$gid" "objects of group $gid left ${limit}s after it ended: $(tr '\n' ' ' <<<"$left")"
}

# k8s_pod_uids GID JOB RANK: the uids of every pod the node had, one a line,
# from the events the scheduler recorded (they outlive the pods).
k8s_pod_uids() {
    local name="jg-$1-$2-$3"
    jk_api GET "/api/v1/namespaces/$K8S_NS/events?fieldSelector=involvedObject.name%3D$name" |
        jq -r '[.items[]? | select(.reason == "Scheduled") | .involvedObject.uid] | unique[]'
}

# k8s_group_wait_end GID TIMEOUT_S: as wait_end, polling less often.
k8s_wait_end() {
    local id=$1 limit=$2 st="" t0
    t0=$(date +%s)
    while :; do
        st=$(group_state "$id")
        if is_terminal "$st"; then
            END_STATE=$st   # read by the caller
            return 0
        fi
        [ $(($(date +%s) - t0)) -lt "$limit" ] || break
        sleep "$K8S_POLL"
    done
    fail_group "$id" "group $id is '$st' after ${limit}s, expected it to have ended"
}

# k8s_wait_job GID JOB STATES TIMEOUT_S: as wait_job_state, polling less often.
k8s_wait_job() {
    local id=$1 job=$2 want=$3 limit=$4 st="" t0
    t0=$(date +%s)
    while :; do
        st=$(job_state "$id" "$job")
        state_in "$st" "$want" && return 0
        [ $(($(date +%s) - t0)) -lt "$limit" ] || break
        sleep "$K8S_POLL"
    done
    fail_group "$id" "job $job of group $id is '$st' after ${limit}s, expected $want"
}
