#!/usr/bin/env bash
# k8s_seed.sh - every phase of the seed plan (shared/seed/jobgroup-test-plan.md,
# tests/fixtures/seed) on the Kubernetes backend, against the test API server:
# the plan's YAMLs unchanged (they say `infra: kubernetes`; no --infra), through
# the CLI, and the plan's own checks done inside the pods with jk_exec (what
# `kubectl exec` is here): getent hosts of every <job>-<rank>.<group> name,
# /etc/hosts, hostname, ping and curl between pods, the SKYPILOT_* environment.
# After every group: nothing of it remains on the server (pods, services,
# configmaps, secrets) within stop_grace + 10 s, and `jgsched logs` still
# shows what its (gone) pods printed.
#
# The phases run two at a time (K8S_CONCURRENCY), each in a background
# subshell with its own log (printed in order at the end), so the plan takes
# about half the sum of its groups' times (2.2 and 4 are a minute each:
# about 4-5 minutes in all); 5.5 and 5.2 run first, the node-loss variant of 6.2 last and alone
# (it takes a node away).
#
# K8S_FAULTS=1 (k8s_seed_faults.sh) runs the same against a server that
# delays every request 20 ms, answers 10% of them 429 and cuts every watch
# every 5 s; 6.2 then evicts the pod instead of deleting it.
# K8S_PHASES="2.1 6.2" runs only those phases (for debugging).
# The job scripts are single-quoted on purpose: they expand in the pods.
# shellcheck disable=SC2016
# shellcheck source=SCRIPTDIR/k8s_lib.sh
. "$(dirname "$0")/k8s_lib.sh"
k8s_need

FAULTS=${K8S_FAULTS:-0}
MODE=plain
SERVER_OPTS=()
if [ "$FAULTS" = 1 ]; then
    MODE=faults
    SERVER_OPTS=(--latency-ms 20 --fail-429 0.1 --cut-watches-every 5)
fi

# Seed 3.2 wants a GPU: as on local it runs only on a host that has one (the
# pods are this host's processes, so nvidia-smi inside them sees its GPUs);
# the cluster then has a node advertising them as nvidia.com/gpu.
GPU_TYPE=""
if command -v nvidia-smi >/dev/null 2>&1; then
    GPU_COUNT=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -c .)
    GPU_TYPE=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 |
        sed -E 's/^ *//; :a; s/^(NVIDIA|Tesla|GeForce) +//; ta; s/[- ].*//')
    if [ "${GPU_COUNT:-0}" -gt 0 ] && [ -n "$GPU_TYPE" ]; then
        node() { printf '{"name":"%s","allocatable":{"cpu":"32","memory":"128Gi","pods":"110"%s}}' "$1" "$2"; }
        K8S_NODES="[$(node node-1 ''),$(node node-2 ''),$(node node-3 ''),$(node node-4 ''),$(node gpu-1 ",\"nvidia.com/gpu\":\"$GPU_COUNT\"")]"
        unset -f node
    else
        GPU_TYPE=""
    fi
fi

k8s_setup "${SERVER_OPTS[@]}"

# stop_grace (config default 5 s) + 10 s: by then nothing of an ended group
# may remain on the server.
CLEAN_S=15

want_phase() { [ -z "${K8S_PHASES:-}" ] || [[ " $K8S_PHASES " == *" $1 "* ]]; }

# ---------------------------------------------------------------- helpers

# k8s_submit FILE [OPTION...]: `jgsched submit FILE OPTION...` in the
# background, following the group as the plan's `sky jobs launch` does; sets
# GID and GNAME from its first line, FOLLOW_PID and FOLLOW_OUT.
k8s_submit() {
    local file=$1 first="" i
    shift
    FOLLOW_OUT=$(mktemp "$JG_WORK/follow.XXXXXX")
    LAST_CMD="jgsched submit $file $*"
    timeout -k 5 900 "$JGSCHED" submit "$file" "$@" >"$FOLLOW_OUT" 2>&1 </dev/null &
    FOLLOW_PID=$!
    for ((i = 0; i < 240; i++)); do
        first=$(head -n 1 "$FOLLOW_OUT")
        [[ $first =~ ^Submitted\ group\ ([0-9]+)\ \((.*)\)$ ]] && break
        kill -0 "$FOLLOW_PID" 2>/dev/null || break
        sleep "$K8S_POLL"
    done
    if [[ $first =~ ^Submitted\ group\ ([0-9]+)\ \((.*)\)$ ]]; then
        GID=${BASH_REMATCH[1]}
        GNAME=${BASH_REMATCH[2]}
    else
        OUT=$(cat "$FOLLOW_OUT")
        fail "'$LAST_CMD' did not print 'Submitted group ID (NAME)': $OUT"
    fi
}

# follow_end TIMEOUT_S: waits for the following submit; FOLLOW_RC, OUT.
follow_end() {
    local limit=$1 t0
    t0=$(date +%s)
    while kill -0 "$FOLLOW_PID" 2>/dev/null; do
        [ $(($(date +%s) - t0)) -lt "$limit" ] || fail_group "$GID" "the following submit did not end within ${limit}s"
        sleep "$K8S_POLL"
    done
    wait "$FOLLOW_PID"
    FOLLOW_RC=$?
    OUT=$(cat "$FOLLOW_OUT")
}

# ended GID STATE FOLLOW_RC: the group ended in STATE, its following submit
# exited FOLLOW_RC, and within CLEAN_S nothing of it is left on the server or
# on this host; then `jgsched logs` (the pods are gone) is in $LOGS.
ended() {
    local gid=$1 want=$2 want_rc=$3 name
    follow_end 300
    k8s_wait_end "$gid" 60
    [ "$END_STATE" = "$want" ] || fail_group "$gid" "group $gid ended $END_STATE, expected $want"
    [ "$FOLLOW_RC" = "$want_rc" ] || fail_group "$gid" "the following submit exited $FOLLOW_RC, expected $want_rc: $OUT"
    k8s_wait_clean "$gid" "$CLEAN_S"
    name=$(group_name "$gid")
    assert_no_leftovers "$name" "$gid"
    jgc_ok logs "$gid"
    LOGS=$OUT
    ok "$PHASE group $gid ($name) $want; nothing of it left on the server within ${CLEAN_S}s nor on the host"
}

group_name() { timeout 30 "$JGSCHED" show "$1" --json 2>/dev/null | jq -r '(.group // .).name'; }

# inpod GID GROUP NODE...: the plan's checks inside every pod of the nodes
# given (JOB:RANK[:NUM_NODES]), all at once, since the plan's pods may live
# only 10 s: its hostname, its own line in /etc/hosts, its SKYPILOT_*
# environment (`kubectl exec ... env`: the container's), and that every
# node's <job>-<rank>.<group> name resolves (getent hosts) to that node's pod.
# Needs the group released (RUNNING: names are written before the barrier).
inpod() {
    local gid=$1 group=$2 node ips dir=$JG_WORK/inpod.$1.$RANDOM
    shift 2
    local names=() pids=()
    for node in "$@"; do
        IFS=: read -r j r _ <<<"$node"
        names+=("$j-$r.$group")
    done
    ips=$(k8s_node_ips "$gid")
    mkdir -p "$dir"
    for node in "$@"; do
        IFS=: read -r j r _ <<<"$node"
        # shellcheck disable=SC2016
        k8s_exec "$gid" "$j" "$r" sh -c 'hostname; echo @@; cat /etc/hosts; echo @@; env; echo @@
            for n; do printf "%s %s\n" "$n" "$(getent hosts "$n" | awk "{print \$1}" | head -n 1)"; done' \
            sh "${names[@]}" >"$dir/$j-$r" 2>"$dir/$j-$r.err" &
        pids+=($!)
    done
    local i=0 out hostname hosts env got ip want name kv base
    for node in "$@"; do
        IFS=: read -r j r num <<<"$node"
        wait "${pids[$i]}" || fail_group "$gid" "could not exec in the pod of $j-$r (group $gid): $(cat "$dir/$j-$r.err")"
        i=$((i + 1))
        out=$(cat "$dir/$j-$r")
        hostname=$(awk '/^@@$/ {exit} {print}' <<<"$out")
        hosts=$(awk '/^@@$/ {n++; next} n == 1' <<<"$out")
        env=$(awk '/^@@$/ {n++; next} n == 2' <<<"$out")
        got=$(awk '/^@@$/ {n++; next} n == 3' <<<"$out")
        assert_eq "$hostname" "$j-$r" "hostname in the pod of $j-$r"
        ip=$(awk -v t="$gid:$j:$r" '$1 == t {print $2}' <<<"$ips")
        grep -Eq "^${ip}[[:space:]](.*[[:space:]])?$j-$r\\.$group([[:space:]]|\$)" <<<"$hosts" ||
            fail_group "$gid" "/etc/hosts in the pod of $j-$r has no line '$ip ... $j-$r.$group': $hosts"
        for kv in "SKYPILOT_JOBGROUP_NAME=$group" "SKYPILOT_NODE_RANK=$r" "SKYPILOT_NUM_NODES=${num:-1}" \
            "JGSCHED_GROUP_ID=$gid" "JGSCHED_JOB=$j"; do
            grep -qxF "$kv" <<<"$env" || fail_group "$gid" "env in the pod of $j-$r lacks $kv: $(grep -E '^(SKYPILOT|JGSCHED)_' <<<"$env" | tr '\n' ' ')"
        done
        for name in "${names[@]}"; do
            base=${name%%.*}
            want=$(awk -v t="$gid:${base%-*}:${base##*-}" '$1 == t {print $2}' <<<"$ips")
            ip=$(awk -v n="$name" '$1 == n {print $2}' <<<"$got")
            [ -n "$want" ] || fail_group "$gid" "no pod IP for $name (pods: $(tr '\n' ' ' <<<"$ips"))"
            [ "$ip" = "$want" ] || fail_group "$gid" "in the pod of $j-$r, $name resolves to '$ip', want $want"
        done
    done
    rm -rf "$dir"
}

# The objects of a running group: owner ConfigMap jg-<gid>, Secret
# jg-<gid>-token, headless Service jg-<gid>, one pod per node, each with the
# labels the contract names and owned by the ConfigMap.
objects_checks() {
    local gid=$1 npods=$2 ns=/api/v1/namespaces/$K8S_NS owner uid
    owner=$(jk_api GET "$ns/configmaps/jg-$gid")
    uid=$(jq -r '.metadata.uid // empty' <<<"$owner")
    [ -n "$uid" ] || fail_group "$gid" "no owner ConfigMap jg-$gid: $owner"
    jq -e '.metadata.labels["app.kubernetes.io/managed-by"] == "jgsched"' <<<"$owner" >/dev/null ||
        fail_group "$gid" "ConfigMap jg-$gid lacks app.kubernetes.io/managed-by=jgsched"
    jk_api GET "$ns/services/jg-$gid" | jq -e --arg u "$uid" '.spec.clusterIP == "None"
        and any(.metadata.ownerReferences[]?; .uid == $u)' >/dev/null ||
        fail_group "$gid" "Service jg-$gid is not headless or not owned by ConfigMap jg-$gid"
    jk_api GET "$ns/secrets/jg-$gid-token" | jq -e --arg u "$uid" 'any(.metadata.ownerReferences[]?; .uid == $u)' >/dev/null ||
        fail_group "$gid" "Secret jg-$gid-token missing or not owned by ConfigMap jg-$gid"
    k8s_pods "$gid" | jq -e --arg u "$uid" --arg g "$gid" --argjson n "$npods" '
        length == $n and all(.[]; .metadata.labels as $l
            | $l["app.kubernetes.io/managed-by"] == "jgsched" and $l["jgsched.io/group-id"] == $g
            and ($l["jgsched.io/job"] | length > 0) and ($l["jgsched.io/rank"] | test("^[0-9]+$"))
            and ($l["jgsched.io/attempt"] | test("^[0-9]+$"))
            and .metadata.name == "jg-\($g)-\($l["jgsched.io/job"])-\($l["jgsched.io/rank"])"
            and .spec.hostname == "\($l["jgsched.io/job"])-\($l["jgsched.io/rank"])"
            and .spec.subdomain == "jg-\($g)"
            and any(.metadata.ownerReferences[]?; .uid == $u))' >/dev/null ||
        fail_group "$gid" "pods of group $gid (want $npods, one per node, named jg-<gid>-<job>-<rank>, labelled, owned): $(k8s_pods "$gid" | jq -c '[.[] | {name: .metadata.name, labels: .metadata.labels, hostname: .spec.hostname, subdomain: .spec.subdomain}]')"
}

# objects_checks_bg GID NPODS / objects_checks_wait: objects_checks beside
# the in-pod checks (both must see the group's objects before it ends).
objects_checks_bg() {
    (objects_checks "$@") >"$JG_WORK/objects.$1" 2>&1 &
    OBJECTS_PID=$!
}
objects_checks_wait() {
    wait "$OBJECTS_PID" || { cat "$JG_WORK/objects.$1"; exit 1; }
}

# names GROUP GID NODE...: NAME=GID:JOB:RANK arguments for k8s_check_names,
# NODE being JOB:RANK.
names() {
    local group=$1 gid=$2 n
    shift 2
    for n in "$@"; do printf '%s.%s=%s:%s\n' "${n/:/-}" "$group" "$gid" "$n"; done
}

# wait_log_k8s GID NEEDLE TIMEOUT_S
wait_log_k8s() {
    local gid=$1 needle=$2 limit=$3 t0
    t0=$(date +%s)
    until timeout 10 "$JGSCHED" logs "$gid" 2>/dev/null | grep -qF -- "$needle"; do
        [ $(($(date +%s) - t0)) -lt "$limit" ] || fail_group "$gid" "logs of group $gid do not show '$needle' after ${limit}s"
        sleep "$K8S_POLL"
    done
}

# ---------------------------------------------------------------- phases

p2_1() {
    PHASE=2.1
    k8s_submit "$JG_SEED/2_1_test_job_group.yaml"
    local g=$GID n
    assert_eq "$GNAME" test-job-group "group name"
    k8s_wait_job "$g" job-a RUNNING 120
    k8s_wait_job "$g" job-b RUNNING 30
    # Both sleep 10 s: the pods' checks first.
    objects_checks_bg "$g" 2
    inpod "$g" test-job-group job-a:0 job-b:0
    ok "2.1 in both pods: hostname, /etc/hosts, SKYPILOT_JOBGROUP_NAME, and both names resolve to the right pods"
    objects_checks_wait "$g"
    ok "2.1 owner ConfigMap, token Secret, headless Service and one labelled pod per node, all owned by the ConfigMap"
    ended "$g" SUCCEEDED 0
    show_json "$g"
    assert_eq "$(job_field job-a exit_code)" 0 "job-a exit code"
    assert_eq "$(job_field job-b exit_code)" 0 "job-b exit code"
    for j in a b; do
        assert_contains "$LOGS" "(job-$j-0) SKYPILOT_JOBGROUP_NAME: test-job-group" "logs of group $g"
        assert_contains "$LOGS" "(job-$j-0) Hostname: job-$j-0" "logs of group $g"
        assert_contains "$LOGS" "(job-$j-0) Job ${j^^} done" "logs of group $g"
    done
    ok "2.1 both jobs SUCCEEDED exit 0; logs (after the pods are gone) show the group name, the hostnames and 'done'"
}

p2_2() {
    PHASE=2.2
    k8s_submit "$JG_SEED/2_2_networking.yaml"
    local g=$GID code="" i
    k8s_wait_job "$g" server RUNNING 120
    k8s_wait_job "$g" client RUNNING 30
    k8s_wait_pod "$g" server 0 30
    # The client's pod lives about 10 s once it runs (sleep 10, then its own
    # curl): every check inside it starts at once, beside the others.
    local work=$JG_WORK/p2_2.$g hosts_pid curl_pid
    mkdir -p "$work"
    k8s_exec "$g" client 0 cat /etc/hosts >"$work/hosts" 2>&1 &
    hosts_pid=$!
    # the plan's client: curl http://server-0.<group>:8080/ from the client pod
    (
        for ((i = 0; i < 60; i++)); do
            code=$(k8s_exec "$g" client 0 curl -s -o /dev/null -w '%{http_code}' --connect-timeout 5 http://server-0.k8s-network-test:8080/)
            [ "$code" = 200 ] && break
            sleep "$K8S_POLL"
        done
        echo "$code"
    ) >"$work/curl" 2>&1 &
    curl_pid=$!
    inpod "$g" k8s-network-test server:0 client:0
    wait "$hosts_pid"
    grep -q "server-0.k8s-network-test" "$work/hosts" ||
        fail_group "$g" "/etc/hosts of the client pod has no server-0.k8s-network-test line: $(cat "$work/hosts")"
    wait "$curl_pid"
    code=$(tail -n 1 "$work/curl")
    assert_eq "$code" 200 "HTTP status of http://server-0.k8s-network-test:8080/ from the client pod"
    ok "2.2 in the client pod server-0.k8s-network-test resolves to the server pod (getent, /etc/hosts) and curl gets 200 from its port 8080"
    ended "$g" SUCCEEDED 0
    assert_contains "$LOGS" "(client-0) SUCCESS: Connected to server" "logs of group $g"
    assert_contains "$LOGS" "(server-0) Server done" "logs of group $g"
    ok "2.2 the plan's client connected by name; both jobs SUCCEEDED"
}

p2_3() {
    PHASE=2.3
    k8s_submit "$JG_SEED/2_3_multinode.yaml"
    local g=$GID r n
    k8s_wait_job "$g" workers RUNNING 120
    k8s_wait_job "$g" coordinator RUNNING 30
    # the plan's ping, from the coordinator's pod, beside the other checks
    # (the pods live 20 s)
    local pings=()
    for r in 0 1; do
        k8s_exec "$g" coordinator 0 ping -c 1 -W 5 "workers-$r.k8s-multinode-group" >"$JG_WORK/2_3.ping$r" 2>&1 &
        pings+=($!)
    done
    objects_checks_bg "$g" 3
    inpod "$g" k8s-multinode-group workers:0:2 workers:1:2 coordinator:0
    objects_checks_wait "$g"
    for r in 0 1; do
        wait "${pings[$r]}" ||
            fail_group "$g" "the coordinator pod cannot ping workers-$r.k8s-multinode-group: $(cat "$JG_WORK/2_3.ping$r")"
    done
    ok "2.3 2 worker pods (rank/num_nodes in env, hostnames); the coordinator pod resolves and pings workers-0 and workers-1"
    ended "$g" SUCCEEDED 0
    [ "$(printf '%s\n' "$LOGS" | grep -c '^(coordinator-0)   Reachable$')" = 2 ] ||
        fail_group "$g" "the coordinator's own ping did not report both workers Reachable: $(printf '%s\n' "$LOGS" | grep coordinator-0)"
    assert_contains "$LOGS" "(workers-1) SKYPILOT_NODE_RANK: 1" "logs of group $g"
    assert_contains "$LOGS" "(workers-0) SKYPILOT_NUM_NODES: 2" "logs of group $g"
    ok "2.3 the coordinator's script reached both workers; all SUCCEEDED"
}

p3_1() {
    PHASE=3.1
    k8s_submit "$JG_SEED/3_1_heterogeneous.yaml"
    local g=$GID j want got
    for j in compute-heavy memory-heavy lightweight; do k8s_wait_job "$g" "$j" RUNNING 120; done
    # inside the pods first (they live 20 s), then what the API server
    # showed of them at that time (the pods go once the group ended)
    local pods
    pods=$(k8s_pods "$g")
    inpod "$g" k8s-hetero-test compute-heavy:0 memory-heavy:0 lightweight:0
    # cpus: N -> request N, no CPU limit; memory: N+ -> request NGi, no limit
    for want in "compute-heavy 4 4Gi" "memory-heavy 2 8Gi" "lightweight 1 2Gi"; do
        read -r job cpu mem <<<"$want"
        set -- "$job" "$cpu" "$mem"
        got=$(jq --arg n "jg-$g-$1-0" '.[] | select(.metadata.name == $n)' <<<"$pods" | jq -c '[.spec.containers[] | select(.name == "main") | .resources][0]')
        jq -e --arg c "$2" --arg m "$3" '.requests.cpu == $c and .requests.memory == $m
            and (.limits.cpu == null) and (.limits.memory == null)' <<<"$got" >/dev/null ||
            fail_group "$g" "resources of $1's pod are $got, want requests cpu $2 memory $3 and no limits"
        jq --arg n "jg-$g-$1-0" '.[] | select(.metadata.name == $n)' <<<"$pods" | jq -e '.spec.nodeName != null and
            any(.status.conditions[]; .type == "PodScheduled" and .status == "True")' >/dev/null ||
            fail_group "$g" "$1's pod is not scheduled onto a node"
    done
    ok "3.1 each pod requests its job's cpus and memory (no limits for 'N+') and was scheduled onto a node"
    ended "$g" SUCCEEDED 0
    for j in compute-heavy memory-heavy lightweight; do assert_contains "$LOGS" "($j-0) Done" "logs of group $g"; done
    assert_contains "$LOGS" "(memory-heavy-0) Memory info:" "logs of group $g"
    ok "3.1 all three SUCCEEDED and printed their output"
}

p3_2() {
    PHASE=3.2
    if [ -z "$GPU_TYPE" ]; then
        echo "skip - no GPU on this machine (nvidia-smi not found): seed 3.2"
        return 0
    fi
    # As on local: the host's GPU type in place of T4 ("or available GPU type").
    sed -e "s/accelerators: T4:1.*/accelerators: $GPU_TYPE:1/" "$JG_SEED/3_2_gpu_cpu.yaml" >"$JG_WORK/3_2.yaml"
    grep -q "accelerators: $GPU_TYPE:1" "$JG_WORK/3_2.yaml" || fail "could not rewrite 3.2's accelerators"
    k8s_submit "$JG_WORK/3_2.yaml"
    local g=$GID
    k8s_wait_job "$g" gpu-trainer RUNNING 120
    k8s_wait_pod "$g" gpu-trainer 0 30
    k8s_pod_json "$POD" | jq -e '.spec.containers[] | select(.name == "main") | .resources.limits["nvidia.com/gpu"] == "1"' >/dev/null ||
        fail_group "$g" "the gpu-trainer pod does not ask for 1 nvidia.com/gpu"
    assert_eq "$(k8s_pod_json "$POD" | jq -r .spec.nodeName)" gpu-1 "node of the gpu-trainer pod"
    k8s_check_names "$g" cpu-preprocessor 0 "$(names k8s-gpu-cpu-group "$g" gpu-trainer:0)"
    ok "3.2 the gpu-trainer pod asks for nvidia.com/gpu: 1 and runs on the GPU node; the preprocessor resolves it"
    ended "$g" SUCCEEDED 0
    assert_contains "$LOGS" "GPU trainer done" "logs of group $g"
}

p4() {
    PHASE=4
    k8s_submit "$JG_SEED/4_rl_architecture.yaml"
    local g=$GID j
    for j in trainer data-processor replay-buffer env-worker; do k8s_wait_job "$g" "$j" RUNNING 180; done
    objects_checks_bg "$g" 7
    inpod "$g" rl-experiment trainer:0:2 trainer:1:2 data-processor:0:2 data-processor:1:2 replay-buffer:0 env-worker:0:2 env-worker:1:2
    ok "4 in each of the 7 pods: its hostname and env, and all 7 <job>-<rank>.rl-experiment names resolve to the right pods"
    objects_checks_wait "$g"
    ok "4 exactly 7 pods (trainer 2, data-processor 2, replay-buffer 1, env-worker 2)"
    ended "$g" SUCCEEDED 0
    for j in "trainer-0) Trainer done" "trainer-1) Trainer done" "data-processor-1) Data processor done" \
        "replay-buffer-0) Replay buffer done" "env-worker-1) Env worker done"; do
        assert_contains "$LOGS" "($j" "logs of group $g"
    done
    # The plan's scripts are bash (SkyPilot runs them with bash, and so does
    # jgsched on local): `for i in {1..10}` counts to 10.
    assert_contains "$LOGS" "(trainer-1) Training iteration 10" "logs of group $g (run by bash?)"
    assert_contains "$LOGS" "(env-worker-0) Environment step 10" "logs of group $g (run by bash?)"
    ok "4 all four jobs SUCCEEDED, their loops ran to the end"
}

p5_1() {
    PHASE=5.1
    k8s_submit "$JG_SEED/5_1_failure.yaml"
    local g=$GID i st=""
    k8s_wait_job "$g" failing-job RUNNING 120
    k8s_wait_pod "$g" failing-job 0 30
    local pod=$POD
    # The exit code is the container's terminated state; the pod is deleted
    # soon after, so its events are watched.
    jk_watch "/api/v1/namespaces/$K8S_NS/pods?fieldSelector=metadata.name%3D$pod" "$JG_WORK/5_1.watch"
    for ((i = 0; i < 120; i++)); do
        st=$(jq -c 'select(.type == "MODIFIED" or .type == "DELETED") | .object.status.containerStatuses[]?
            | select(.name == "main") | .state.terminated // empty' "$JG_WORK/5_1.watch" 2>/dev/null | head -n 1)
        [ -n "$st" ] && break
        sleep "$K8S_POLL"
    done
    jk_watch_stop
    jq -e '.exitCode == 1' <<<"$st" >/dev/null || fail_group "$g" "the failing-job pod's container did not terminate with exit code 1: '$st'"
    [ "$(job_state "$g" success-job)" = RUNNING ] || fail_group "$g" "success-job is $(job_state "$g" success-job) once failing-job's pod ended"
    ok "5.1 the failing-job pod's container terminated with exit code 1 while success-job runs on"
    ended "$g" FAILED 1
    show_json "$g"
    assert_eq "$(job_field failing-job state)" FAILED "failing-job state"
    assert_eq "$(job_field failing-job exit_code)" 1 "failing-job exit code"
    assert_eq "$(job_field success-job state)" SUCCEEDED "success-job state"
    assert_contains "$LOGS" "(failing-job-0) About to fail..." "logs of group $g"
    assert_contains "$LOGS" "(success-job-0) Success job completed" "logs of group $g"
    ok "5.1 failing-job FAILED exit 1, success-job SUCCEEDED, logs show why"
}

p5_2() {
    PHASE=5.2
    jgc submit "$JG_SEED/5_2_resource_unavailable.yaml" -d
    local g why
    if [[ $OUT =~ ^[0-9]+$ ]]; then
        g=$OUT
        [ "$RC" -eq 1 ] || fail "submit -d of a group that can never fit exited $RC, expected 1"
        k8s_wait_end "$g" 30
        [ "$END_STATE" = FAILED_NO_RESOURCE ] || fail_group "$g" "group ended $END_STATE, expected FAILED_NO_RESOURCE"
        show_json "$g"
        why=$(sq '[grp.reason, (grp.jobs[].reason), (grp.events[]?.reason)] | map(select(. != null)) | join(" ")')
        contains_ci "$why" cpu || fail_group "$g" "no reason mentions the cpus asked for: $why"
        # all or nothing: no object of the group was ever made
        [ -z "$(k8s_leftovers "$g")" ] || fail_group "$g" "objects of the group exist: $(k8s_leftovers "$g")"
        [ "$(jk_api GET "/api/v1/namespaces/$K8S_NS/events" | jq --arg p "jg-$g-" '[.items[]? | select(.involvedObject.name | startswith($p))] | length')" = 0 ] ||
            fail_group "$g" "a pod of group $g was created"
    else
        [ "$RC" -ne 0 ] || fail "submit of a group that can never fit exited 0 without an id"
        contains_ci "$ERR" cpu || fail "submit does not say what cannot fit: $ERR"
    fi
    ok "5.2 impossible-job (1000 cpus) fails the group early naming cpus; no pod, no object made"
}

p5_3() {
    PHASE=5.3
    k8s_submit "$JG_SEED/5_3_cancel.yaml"
    local g=$GID t0
    k8s_wait_job "$g" long-job-a RUNNING 120
    k8s_wait_job "$g" long-job-b RUNNING 30
    inpod "$g" k8s-cancel-test long-job-a:0 long-job-b:0
    wait_log_k8s "$g" "Long job B starting" 30
    ok "5.3 both long jobs run in their pods"
    t0=$(date +%s)
    jgc_ok cancel "$g"
    ended "$g" CANCELLED 1
    show_json "$g"
    assert_eq "$(job_field long-job-a state)" CANCELLED "long-job-a state"
    assert_eq "$(job_field long-job-b state)" CANCELLED "long-job-b state"
    assert_contains "$LOGS" "(long-job-a-0) Long job A starting" "logs of group $g"
    ok "5.3 cancel: both jobs CANCELLED, everything gone $(($(date +%s) - t0)) s after the cancel"
}

p5_4() {
    PHASE=5.4
    k8s_submit "$JG_SEED/5_4_empty_run.yaml"
    local g=$GID
    k8s_wait_job "$g" normal-job RUNNING 120
    k8s_wait_job "$g" empty-job SUCCEEDED 60
    inpod "$g" k8s-empty-run normal-job:0
    ended "$g" SUCCEEDED 0
    show_json "$g"
    assert_eq "$(job_field empty-job state)" SUCCEEDED "empty-job state"
    assert_eq "$(job_field normal-job state)" SUCCEEDED "normal-job state"
    assert_contains "$LOGS" "(normal-job-0) Normal job" "logs of group $g"
    ok "5.4 the job without run SUCCEEDED, normal-job SUCCEEDED"
}

p5_5() {
    PHASE=5.5
    local before after
    before=$(jk_api GET "/api/v1/namespaces/$K8S_NS/configmaps" | jq '.items | length')
    jgc submit "$JG_SEED/5_5_duplicate_names.yaml"
    assert_eq "$RC" 2 "exit status of submit with duplicate job names"
    contains_ci "$ERR" duplicate || fail "stderr does not mention 'duplicate': $ERR"
    [ -z "$(queue_json | jq -r '.[] | select(.name == "k8s-duplicate-test") | .id')" ] || fail "a group with duplicate job names was stored"
    after=$(jk_api GET "/api/v1/namespaces/$K8S_NS/configmaps" | jq '.items | length')
    assert_eq "$after" "$before" "ConfigMaps on the server after the refused submit"
    ok "5.5 duplicate job names rejected at submit (exit 2), nothing stored, nothing made on the server"
}

p6_1() {
    PHASE=6.1
    local marker_before=0
    [ -e /tmp/recovery_marker ] && marker_before=1
    k8s_submit "$JG_SEED/6_1_recovery.yaml"
    local g=$GID
    k8s_wait_job "$g" normal-job RUNNING 120
    inpod "$g" k8s-recovery-test normal-job:0
    ended "$g" SUCCEEDED 0
    show_json "$g"
    assert_eq "$(job_field recoverable-job state)" SUCCEEDED "recoverable-job state"
    assert_eq "$(job_field recoverable-job attempt)" 2 "recoverable-job attempt"
    assert_eq "$(job_field normal-job attempt)" 1 "normal-job attempt"
    assert_contains "$LOGS" "(recoverable-job-0) First attempt, simulating recoverable error" "logs of group $g"
    assert_contains "$LOGS" "(recoverable-job-0) Recovery successful!" "logs of group $g"
    assert_eq "$(k8s_pod_uids "$g" recoverable-job 0 | grep -c .)" 1 "pods recoverable-job-0 had (an in-place restart keeps the pod)"
    [ "$marker_before" = 1 ] || [ ! -e /tmp/recovery_marker ] || fail "6.1 the marker landed in the host's /tmp"
    ok "6.1 exit 29 restarted in place (same pod, its /tmp marker kept): 'Recovery successful!' on attempt 2, group SUCCEEDED"
}

# 6.2 the plan's way: the recovery group, and one of its pods taken away from
# outside (deleted, or evicted under faults; $1=node: its node is lost).
# recoverable-job's pod goes once attempt 2 runs; its replacement (new pod,
# empty /tmp: exit 29 again, then recovers in place) must be what
# recoverable-job-0.<group> names in normal-job's pod (30 s long).  The group
# has the same name as 6.1's, which runs at the same time: each resolves only
# its own pods.
p6_2() {
    local how=${1:-delete}
    [ "$FAULTS" = 1 ] && [ "$how" = delete ] && how=evict
    PHASE="6.2 ($how)"
    k8s_submit "$JG_SEED/6_1_recovery.yaml"
    local g=$GID old uid node="" i reason
    wait_log_k8s "$g" "Recovery successful!" 120
    k8s_wait_pod "$g" recoverable-job 0 10
    old=$POD
    uid=$(k8s_pod_json "$old" | jq -r .metadata.uid)
    case $how in
        delete) jk_api DELETE "/api/v1/namespaces/$K8S_NS/pods/$old" >/dev/null ;;
        evict) jk_api POST "/api/v1/namespaces/$K8S_NS/pods/$old/eviction" \
            "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"$old\",\"namespace\":\"$K8S_NS\"}}" |
            jq -e '.status == "Success" or .kind == "Eviction" or .code == 201' >/dev/null || fail_group "$g" "eviction of $old refused" ;;
        node)
            node=$(k8s_pod_json "$old" | jq -r .spec.nodeName)
            jk_api POST "/admin/nodes/$node/kill" | jq -e .node >/dev/null || fail_group "$g" "could not kill node $node" ;;
    esac
    # a new pod (new uid), Running, whose name resolves in normal-job's pod
    for ((i = 0; i < 120; i++)); do
        POD=$(k8s_pod "$g" recoverable-job 0)
        [ -n "$POD" ] && k8s_pod_json "$POD" | jq -e --arg u "$uid" '.metadata.uid != $u and .status.phase == "Running"' >/dev/null && break
        sleep "$K8S_POLL"
    done
    k8s_pod_json "$POD" | jq -e --arg u "$uid" '.metadata.uid != $u and .status.phase == "Running"' >/dev/null ||
        fail_group "$g" "no new Running pod of recoverable-job-0 after its pod was taken ($how)"
    [ "$how" != node ] || [ "$(k8s_pod_json "$POD" | jq -r .spec.nodeName)" != "$node" ] || fail_group "$g" "the replacement runs on the lost node $node"
    k8s_wait_job "$g" normal-job RUNNING 30
    k8s_wait_pod "$g" normal-job 0 60
    # The replacement's IP reaches its peers' /etc/hosts when it is released
    # (its run starts), each peer's update on its own request: allow 15 s for
    # those (retried under 429s) once the replacement runs.
    k8s_wait_job "$g" recoverable-job RUNNING 60
    local t0
    t0=$(date +%s)
    until (k8s_check_names "$g" normal-job 0 "$(names k8s-recovery-test "$g" recoverable-job:0)" \
        "$(names k8s-recovery-test "$g" normal-job:0)") >"$JG_WORK/6_2.names" 2>&1; do
        [ $(($(date +%s) - t0)) -lt 15 ] || { cat "$JG_WORK/6_2.names"; exit 1; }
        sleep "$K8S_POLL"
    done
    ok "6.2 ($how) the pod of recoverable-job-0 is replaced by a new pod; recoverable-job-0.k8s-recovery-test names it in normal-job's pod (and not the same-named group's pods)"
    ended "$g" SUCCEEDED 0
    show_json "$g"
    assert_eq "$(job_field recoverable-job state)" SUCCEEDED "recoverable-job state"
    # at least the original and its replacement (the replacement's exit 29
    # is restarted in place, or in a new pod if its agent cannot be reached)
    local npods
    npods=$(k8s_pod_uids "$g" recoverable-job 0 | grep -c .)
    [ "$npods" -ge 2 ] || fail_group "$g" "recoverable-job-0 had $npods pod(s), expected its original and a replacement"
    reason=$(sq '[grp.events[]? | select((.subject | tostring) | test("recoverable-job-0")) | .reason // empty
        | select(test("lost"; "i"))] | join(" | ")')
    [ -n "$reason" ] || fail_group "$g" "no event of node recoverable-job-0 says it was lost"
    [[ $reason != *"143"* && $reason != *"137"* ]] || fail_group "$g" "the lost pod is reported as an exit code: $reason"
    assert_contains "$LOGS" "(recoverable-job-0) Recovery successful!" "logs of group $g"
    ok "6.2 ($how) reported lost ($(printf '%s' "$reason" | tr -s ' ' | cut -c1-120)), recovered, group SUCCEEDED"
}

p7_1() {
    PHASE=7.1
    # "Prerequisites: NFS server or PVC available": on Kubernetes a named
    # volume is the PersistentVolumeClaim of that name, made by the admin.
    local pvcs="/api/v1/namespaces/$K8S_NS/persistentvolumeclaims"
    jk_api POST "$pvcs" '{"metadata":{"name":"shared-volume"},"spec":{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"1Gi"}}}}' >/dev/null \
        || fail "creating the claim shared-volume failed"
    k8s_submit "$JG_SEED/7_1_shared_volume.yaml"
    local g=$GID
    ended "$g" SUCCEEDED 0
    assert_contains "$LOGS" "Hello from writer" "logs of group $g"
    assert_not_contains "$LOGS" "Still not found" "logs of group $g"
    jk_api DELETE "$pvcs/shared-volume" >/dev/null || fail "deleting the claim shared-volume failed"
    ok "7.1 both pods mount the claim shared-volume; the reader reads the file the writer wrote"
}

# Not a seed phase: the barrier, as the issue states it.  One node's setup
# takes seconds longer than the others'; no `run` may start before it ended.
# Ordering only (the pods are processes of this host: one clock), no timing.
p_barrier() {
    PHASE=barrier
    cat >"$JG_WORK/barrier.yaml" <<'EOF'
---
name: k8s-barrier
placement: SAME_INFRA
execution: parallel
---
name: slow
resources:
  cpus: 0.5
  infra: kubernetes
setup: |
  sleep 4
  echo "SETUP_END $(date +%s%N)"
run: |
  echo "RUN_START $(date +%s%N)"
---
name: fast
resources:
  cpus: 0.5
  infra: kubernetes
num_nodes: 2
setup: echo "fast setup"
run: |
  echo "RUN_START $(date +%s%N)"
EOF
    k8s_submit "$JG_WORK/barrier.yaml"
    local g=$GID setup_end first_run runs
    ended "$g" SUCCEEDED 0
    setup_end=$(grep -o 'SETUP_END [0-9]*' <<<"$LOGS" | awk '{print $2}' | head -n 1)
    runs=$(grep -c 'RUN_START [0-9]' <<<"$LOGS")
    first_run=$(grep -o 'RUN_START [0-9]*' <<<"$LOGS" | awk '{print $2}' | sort -n | head -n 1)
    [ -n "$setup_end" ] && [ "$runs" = 3 ] || fail_group "$g" "expected the slow setup's end and 3 runs in the logs: $LOGS"
    [ "$first_run" -ge "$setup_end" ] || fail_group "$g" "a run started at $first_run, before the slow setup ended at $setup_end"
    ok "barrier: none of the 3 runs started before the slowest setup ended ($(((first_run - setup_end) / 1000000)) ms after it)"
}

p8_1() {
    PHASE=8.1
    k8s_submit "$JG_SEED/8_1_scale.yaml"
    local g=$GID i running=0
    for ((i = 0; i < 240; i++)); do
        running=$(k8s_pods "$g" | jq '[.[] | select(.status.phase == "Running")] | length')
        [ "$running" = 5 ] && break
        sleep "$K8S_POLL"
    done
    assert_eq "$running" 5 "pods of the 5 jobs Running at the same time"
    k8s_wait_job "$g" job-5 RUNNING 60
    inpod "$g" k8s-scale-test job-1:0 job-2:0 job-3:0 job-4:0 job-5:0
    ok "8.1 5 pods Running at once; each resolves all 5 names"
    ended "$g" SUCCEEDED 0
    for i in 1 2 3 4 5; do assert_contains "$LOGS" "(job-$i-0) Job $i" "logs of group $g"; done
    ok "8.1 all 5 jobs SUCCEEDED"
}

p8_2() {
    PHASE=8.2
    local g1 g2 p1 p2 o1 o2 i
    k8s_submit "$JG_SEED/2_1_test_job_group.yaml" -n group-1
    g1=$GID p1=$FOLLOW_PID o1=$FOLLOW_OUT
    k8s_submit "$JG_SEED/2_1_test_job_group.yaml" -n group-2
    g2=$GID p2=$FOLLOW_PID o2=$FOLLOW_OUT
    assert_ne "$g1" "$g2" "ids of the two groups"
    # both groups at once (their pods live 10 s)
    local cpids=()
    for gg in "$g1:group-1:group-2" "$g2:group-2:group-1"; do
        (
            IFS=: read -r g own other <<<"$gg"
            k8s_wait_job "$g" job-b RUNNING 120
            inpod "$g" "$own" job-a:0 job-b:0
            ! k8s_exec "$g" job-a 0 getent hosts "job-b-0.$other" >/dev/null ||
                fail_group "$g" "job-b-0.$other resolves in a pod of $own"
        ) >"$JG_WORK/8_2.${gg%%:*}" 2>&1 &
        cpids+=($!)
    done
    for i in 0 1; do
        wait "${cpids[$i]}" || { cat "$JG_WORK/8_2.$([ $i = 0 ] && echo "$g1" || echo "$g2")"; exit 1; }
    done
    ok "8.2 two concurrent groups: each pod resolves its own group's names, not the other's"
    FOLLOW_PID=$p1 FOLLOW_OUT=$o1
    ended "$g1" SUCCEEDED 0
    FOLLOW_PID=$p2 FOLLOW_OUT=$o2
    ended "$g2" SUCCEEDED 0
    assert_contains "$LOGS" "(job-a-0) SKYPILOT_JOBGROUP_NAME: group-2" "logs of group $g2"
    ok "8.2 both groups SUCCEEDED, independently"
}

# ---------------------------------------------------------------- running them

PHASE_PIDS=()
PHASE_NAMES=()
# At most K8S_CONCURRENCY phases at once (default 2): the in-pod checks must
# finish while the plan's 10-20 s pods run, and on a loaded 2-core machine
# three phases at once (each: pods, pollers, TLS handshakes) already made
# them miss.
# The phases' exit statuses go to $JG_WORK/phase.N.rc.
running_phases() {
    local pid n=0
    for pid in "${PHASE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && n=$((n + 1)); done
    echo "$n"
}
start_phase() { # NAME FUNCTION [ARG...]
    local name=$1 i=${#PHASE_NAMES[@]}
    shift
    want_phase "${name%% *}" || return 0
    while [ "$(running_phases)" -ge "${K8S_CONCURRENCY:-2}" ]; do sleep "$K8S_POLL"; done
    ( (trap jk_watch_stop EXIT; "$@"); echo $? >"$JG_WORK/phase.$i.rc") >"$JG_WORK/phase.$i.log" 2>&1 &
    PHASE_PIDS+=($!)
    PHASE_NAMES+=("$name")
}

# Waits for every started phase; prints their logs in order; adds those that
# failed to FAILED_PHASES (the test fails at its end, naming them).
collect_phases() {
    local i failed=() log
    # only the phases: the test API server is a background job of this shell too
    [ ${#PHASE_PIDS[@]} -eq 0 ] || wait "${PHASE_PIDS[@]}"
    for i in "${!PHASE_PIDS[@]}"; do
        log="$JG_WORK/phase.$i.log"
        echo "# ---- seed ${PHASE_NAMES[$i]} ($MODE)"
        cat "$log"
        JG_PASSED=$((JG_PASSED + $(grep -c '^ok - ' "$log")))
        [ "$(cat "$JG_WORK/phase.$i.rc" 2>/dev/null)" = 0 ] || failed+=("${PHASE_NAMES[$i]}")
    done
    PHASE_PIDS=()
    PHASE_NAMES=()
    FAILED_PHASES+=("${failed[@]}")
}
FAILED_PHASES=()

# A test that fails or is killed (meson's timeout) before collect_phases
# printed the phases' logs shows them from the teardown.
k8s_seed_dump_phases() {
    local i
    for i in "${!PHASE_NAMES[@]}"; do
        echo "# ---- seed ${PHASE_NAMES[$i]} ($MODE), unfinished or not yet shown:"
        sed 's/^/#   /' "$JG_WORK/phase.$i.log" 2>/dev/null | tail -n 60
    done >&2
}
jg_extra_teardown() {
    # shellcheck disable=SC2154  # rc: jg_teardown's local
    [ "${rc:-0}" -eq 0 ] || k8s_seed_dump_phases
    k8s_dump_server
}

# quick ones first, on their own
want_phase 5.5 && p5_5
want_phase 5.2 && p5_2

# the longest first; 6.1 beside 6.2 (same group name, both running)
start_phase 2.2 p2_2
start_phase 4 p4
start_phase "6.2 (pod taken)" p6_2 delete
start_phase 6.1 p6_1
start_phase 5.1 p5_1
start_phase 2.3 p2_3
start_phase 3.1 p3_1
start_phase 8.1 p8_1
start_phase 2.1 p2_1
start_phase 8.2 p8_2
start_phase 5.4 p5_4
start_phase 5.3 p5_3
start_phase 7.1 p7_1
start_phase barrier p_barrier
start_phase 3.2 p3_2
collect_phases

# a node lost: alone, since it takes the pods of every group on it
start_phase "6.2 (node lost)" p6_2 node
collect_phases

[ ${#FAILED_PHASES[@]} -eq 0 ] || { LAST_CMD=""; fail "seed phases failed ($MODE): ${FAILED_PHASES[*]}"; }

jg_done
