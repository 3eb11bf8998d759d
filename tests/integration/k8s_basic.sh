#!/usr/bin/env bash
# k8s_basic.sh - the kubernetes backend end to end through the real CLI,
# against the test API server (tests/k8s/apiserver/, whose kubelet runs each
# pod's containers as local processes in network namespaces of their own):
#   - a kubeconfig that is missing stops jgschedd at start, naming the file
#     and the field;
#   - `jgsched infra` lists kubernetes with the Nodes' capacity;
#   - seed 2.1 and 2.2, unchanged (`infra: kubernetes`, no --infra): they
#     SUCCEED, their output is in `jgsched logs`, the hosts resolve inside the
#     pods (the job's own getent/curl output says so), and once a group ended
#     none of its pods, ConfigMaps, Secrets or Services is left;
#   - seed 7.1, unchanged: before its PersistentVolumeClaim shared-volume
#     exists the pods are pending with kube-scheduler's reason (shown by
#     `jgsched show`); once the claim is created both pods mount it and the
#     reader's log has the line the writer wrote into it;
#   - cancel of a running group leaves nothing;
#   - kill -9 of jgschedd while a group runs: the restarted daemon finds its
#     pods again (same uids: nothing made twice), reports their exits and
#     resumes their logs without repeating a line;
#   - seed 2.1 again with faults (20 ms per request, 10% 429s, watches cut);
#   - cancel while the pods are still being created leaves nothing;
#   - --infra kubernetes/<a context the kubeconfig lacks> is refused at
#     submit with the reason.
# Skips (77) without root (the kubelet makes network namespaces) or node/npm.
# Its own server setup (default namespace, two small nodes), but k8s_lib.sh's
# checks, waits and failure dump.
# shellcheck source=SCRIPTDIR/k8s_lib.sh
. "$(dirname "$0")/k8s_lib.sh"
# shellcheck source=SCRIPTDIR/tools/daemon.sh
. "$(dirname "$0")/tools/daemon.sh"

k8s_need
K8S_NS=default

START_HOME=""
AGENT_DIR=""
early_cleanup() {
    jk_stop
    [ -n "$START_HOME" ] && rm -rf "$START_HOME"
    [ -n "$AGENT_DIR" ] && rm -rf "$AGENT_DIR"
}
trap early_cleanup EXIT
# Once jg_setup installed its teardown: the daemon cancels its groups while
# the server still runs, then the server goes (it removes what it made).
jg_final_teardown() { early_cleanup; }

# ---- a kubeconfig that is not there: jgschedd refuses to start
START_HOME=$(mktemp -d /tmp/jgk8s-start.XXXXXX)
cat >"$START_HOME/config.yaml" <<'CFG'
backends:
  local:
    nat: false
  kubernetes:
    kubeconfig: /nonexistent/jgsched-test/kubeconfig
CFG
JGSCHED_HOME=$START_HOME JGSCHED_TEST_HOME=$START_HOME timeout -k 5 30 "$JGSCHEDD" \
    >"$START_HOME/start.out" 2>&1
rc=$?
out=$(cat "$START_HOME/start.out")
if [ "$rc" -eq 0 ]; then
    # It started (wrongly): stop it before failing.
    stray=$(tr -dc '0-9' <"$START_HOME/jgschedd.pid" 2>/dev/null)
    [ -n "$stray" ] && kill -TERM "$stray" 2>/dev/null && sleep 1
    fail "jgschedd started with a missing kubeconfig (exit 0): $out"
fi
assert_contains "$out" "/nonexistent/jgsched-test/kubeconfig" "the start error"
assert_contains "$out" "backends.kubernetes.kubeconfig" "the start error"
ok "a missing kubeconfig stops jgschedd at start (exit $rc), naming the file and the field"

# ---- the test cluster: two nodes of 4 CPUs / 8Gi; the agent image's files
AGENT_DIR=$(mktemp -d /var/tmp/jgk8s-agent.XXXXXX)
cp "$JGSCHED_AGENT" "$AGENT_DIR/jgsched-agent"
chmod 755 "$AGENT_DIR" "$AGENT_DIR/jgsched-agent"
jk_start --image-files "jgsched/agent=$AGENT_DIR" || fail "the test API server did not start"
ok "test API server up (port $JK_PORT, prefix $JK_PREFIX)"

JG_CONFIG="backends:
  local:
    nat: false
  kubernetes:
    kubeconfig: $JK_KUBECONFIG
    agent_image: jgsched/agent:test
stop_grace: 2"
jg_setup

# ---- jgsched infra: kubernetes, reachable, with the Nodes' capacity
k8s_wait_reachable 60
cpus=$(jq -r '(.backends // .)[] | select(.name == "kubernetes") | .capacity.cpus' <<<"$OUT")
assert_eq "$cpus" 8 "kubernetes cpus in jgsched infra (two nodes of 4)"
jgc_ok infra
assert_match "$OUT" "kubernetes" "jgsched infra"
ok "jgsched infra lists kubernetes, reachable, with 8 cpus from the Nodes"

# nothing_left ID: no pod, ConfigMap, Secret or Service of group ID is left
# (waits up to the stop grace + 10 s, as the issue promises).
nothing_left() {
    local id=$1 kind n deadline=$((SECONDS + 12)) left
    while :; do
        left=""
        for kind in pods configmaps secrets services; do
            n=$(jk_api GET "/api/v1/namespaces/default/$kind?labelSelector=jgsched.io%2Fgroup-id%3D$id" |
                jq '.items | length')
            [ "$n" = 0 ] || left="$left $kind=$n"
        done
        [ -z "$left" ] && return 0
        [ $SECONDS -lt $deadline ] || fail_group "$id" "group $id left objects behind:$left"
        sleep 0.3
    done
}

# submit_k8s FILE [OPTIONS]: detached submit without --infra (the YAML's own).
submit_k8s() {
    local file=$1
    shift
    jgc submit "$file" "$@" -d
    [ "$RC" -eq 0 ] || fail "submit -d of $file exited $RC"
    [[ $OUT =~ ^[0-9]+$ ]] || fail "submit -d printed '$OUT', expected only a numeric id"
    GID=$OUT
}

# ---- seed 2.1, unchanged
submit_k8s "$JG_SEED/2_1_test_job_group.yaml"
G21=$GID
wait_end "$G21" 120
[ "$END_STATE" = SUCCEEDED ] || fail_group "$G21" "seed 2.1 ended $END_STATE"
show_json "$G21"
assert_eq "$(sq 'grp.infra // empty')" kubernetes "seed 2.1's infra"
jgc_ok logs "$G21"
for needle in "Job A Starting" "Job B Starting" "SKYPILOT_JOBGROUP_NAME: test-job-group" \
    "Hostname: job-a-0" "Hostname: job-b-0" "Job A done" "Job B done"; do
    assert_contains "$OUT" "$needle" "logs of seed 2.1"
done
ok "seed 2.1 on kubernetes: SUCCEEDED, hostnames job-a-0/job-b-0, output in jgsched logs"
nothing_left "$G21"
ok "seed 2.1: no pod, ConfigMap, Secret or Service left"

# ---- seed 2.2, unchanged: names resolve inside the pods
submit_k8s "$JG_SEED/2_2_networking.yaml"
G22=$GID
wait_end "$G22" 180
[ "$END_STATE" = SUCCEEDED ] || fail_group "$G22" "seed 2.2 ended $END_STATE"
jgc_ok logs "$G22" client
clog=$OUT
assert_contains "$clog" "Server host: server-0.k8s-network-test" "client log"
assert_contains "$clog" "SUCCESS: Connected to server" "client log"
assert_not_contains "$clog" "DNS lookup failed" "client log"
# getent printed "<ip> server-0.k8s-network-test ..."; it must be the server pod's.
getent_ip=$(grep -oE '[0-9]+(\.[0-9]+){3}[[:space:]]+server-0\.k8s-network-test' <<<"$clog" | head -n 1 | awk '{print $1}')
[ -n "$getent_ip" ] || fail_group "$G22" "no getent line for server-0.k8s-network-test in the client's log"
show_json "$G22"
server_ip=$(sq '[grp.nodes[] | select(.job == "server") | .address][0] // empty')
[ -n "$server_ip" ] || fail_group "$G22" "no address recorded for server-0"
assert_eq "$getent_ip" "$server_ip" "server-0.k8s-network-test resolves to the server pod"
jgc_ok logs "$G22" server
assert_contains "$OUT" "Server starting on server-0" "server log"
ok "seed 2.2 on kubernetes: SUCCEEDED; server-0.k8s-network-test resolved ($getent_ip) and curl connected"
nothing_left "$G22"
ok "seed 2.2: nothing left"

# ---- seed 7.1, unchanged: a named volume is the PVC of that name
PVCS="/api/v1/namespaces/default/persistentvolumeclaims"
submit_k8s "$JG_SEED/7_1_shared_volume.yaml"
G71=$GID
# The admin has not created the claim yet: the user sees why nothing runs.
missing='persistentvolumeclaim \"shared-volume\" not found'
for ((i = 0; i < 300; i++)); do
    show_json "$G71"
    [[ $SHOW == *"$missing"* ]] && break
    is_terminal "$(sq 'grp.state')" && fail_group "$G71" "seed 7.1 ended without its claim"
    sleep 0.2
done
[[ $SHOW == *"$missing"* ]] || fail_group "$G71" "jgsched show never said the claim is missing"
ok "seed 7.1 without its claim: pending, jgsched show gives the scheduler's reason: persistentvolumeclaim \"shared-volume\" not found"
created=$(jk_api POST "$PVCS" '{"metadata":{"name":"shared-volume"},"spec":{"accessModes":["ReadWriteMany"],"resources":{"requests":{"storage":"1Gi"}}}}')
assert_eq "$(jq -r '.status.phase' <<<"$created")" Bound "the claim shared-volume"
wait_state "$G71" RUNNING 120
claims=$(k8s_pods "$G71" |
    jq -r '.[] | .metadata.labels["jgsched.io/job"] + " " + ([.spec.volumes[] | select(.persistentVolumeClaim) | .persistentVolumeClaim.claimName] | join(",")) + " " + ([.spec.containers[0].volumeMounts[] | select(.name | startswith("jg-vol-")) | .mountPath] | join(","))' | sort)
assert_eq "$claims" "reader shared-volume /mnt/shared
writer shared-volume /mnt/shared" "each pod's claim and mount path"
wait_end "$G71" 180
[ "$END_STATE" = SUCCEEDED ] || fail_group "$G71" "seed 7.1 ended $END_STATE"
jgc_ok logs "$G71" writer
assert_contains "$OUT" "File written" "writer log"
assert_contains "$OUT" "test_file.txt" "writer log (ls of /mnt/shared)"
jgc_ok logs "$G71" reader
assert_contains "$OUT" "Hello from writer at" "reader log"
assert_not_contains "$OUT" "Still not found" "reader log"
ok "seed 7.1 on kubernetes: SUCCEEDED, both pods mount claim shared-volume at /mnt/shared, the reader read the writer's file"
nothing_left "$G71"
jk_api DELETE "$PVCS/shared-volume" >/dev/null
[ "$(jk_api GET "$PVCS" | jq '.items | length')" = 0 ] || fail "the claim shared-volume is still there"
ok "seed 7.1: nothing left, claim deleted"

# ---- cancel of a running group leaves nothing
cat >"$JG_WORK/long.yaml" <<'YAML'
---
name: k8s-cancel
placement: SAME_INFRA
execution: parallel
---
name: sleeper
num_nodes: 2
resources:
  cpus: 1
  infra: kubernetes
setup: echo "setup of $(hostname)"
run: |
  echo "sleeper $(hostname) running"
  sleep 300
YAML
submit_k8s "$JG_WORK/long.yaml"
GC=$GID
wait_state "$GC" RUNNING 90
wait_log "$GC" "sleeper sleeper-1 running" 60
wait_log "$GC" "setup of sleeper-0" 10
jgc_ok cancel "$GC"
wait_end "$GC" 60
assert_eq "$END_STATE" CANCELLED "state after cancel"
nothing_left "$GC"
ok "cancel of a running 2-pod group: CANCELLED, setup output kept in logs, nothing left"

# ---- kill -9 of the daemon while a group runs
cat >"$JG_WORK/ticks.yaml" <<'YAML'
---
name: k8s-reattach
placement: SAME_INFRA
execution: parallel
---
name: w
num_nodes: 2
resources:
  cpus: 1
  infra: kubernetes
run: |
  for i in 1 2 3 4 5 6 7 8 9 10; do echo "tick $i on $(hostname)"; sleep 1; done
  exit 3
YAML
submit_k8s "$JG_WORK/ticks.yaml"
GR=$GID
wait_log "$GR" "tick 2 on w-1" 60
wait_log "$GR" "tick 2 on w-0" 10
uids_before=$(k8s_pods "$GR" | jq -r '[.[].metadata.uid] | sort | join(",")')
daemon_kill 9
daemon_start
uids_after=$(k8s_pods "$GR" | jq -r '[.[].metadata.uid] | sort | join(",")')
wait_end "$GR" 60
assert_eq "$END_STATE" FAILED "state of the group whose run exits 3"
show_json "$GR"
assert_eq "$(sq '[grp.nodes[].exit_code] | map(tostring) | join(",")')" "3,3" \
    "exit codes after the daemon's restart"
jgc_ok logs "$GR"
for node in w-0 w-1; do
    for i in 1 5 10; do
        n=$(grep -c "tick $i on $node\$" <<<"$OUT")
        assert_eq "$n" 1 "times 'tick $i on $node' is in the logs"
    done
done
ok "kill -9 of jgschedd mid-run: exits (3) and every log line exactly once after the restart"
assert_eq "$(tr ',' '\n' <<<"$uids_before" | grep -c .)" 2 "pods of group $GR before the kill"
assert_eq "$uids_after" "$uids_before" "the pods' uids after the daemon's restart"
nothing_left "$GR"
ok "the restarted daemon made nothing twice (2 pods), and left nothing"

# ---- seed 2.1 again, with faults: 20 ms per request, 10% 429s, watches cut
jk_api POST /admin/faults '{"latencyMs":20,"fail429":0.1,"fail500":0}' >/dev/null ||
    fail "cannot set the test server's faults"
jk_api POST /admin/cut-watches >/dev/null
submit_k8s "$JG_SEED/2_1_test_job_group.yaml"
GF=$GID
jk_api POST /admin/cut-watches >/dev/null
wait_end "$GF" 120
[ "$END_STATE" = SUCCEEDED ] || fail_group "$GF" "seed 2.1 with faults ended $END_STATE"
jgc_ok logs "$GF"
assert_contains "$OUT" "Job A done" "logs of seed 2.1 with faults"
assert_contains "$OUT" "Job B done" "logs of seed 2.1 with faults"
nothing_left "$GF"
jk_api POST /admin/faults '{"latencyMs":0,"fail429":0,"fail500":0}' >/dev/null
ok "seed 2.1 with 20 ms latency, 10% 429s and cut watches: SUCCEEDED, logs complete, nothing left"

# ---- cancel while the pods are being created (300 ms per request)
jk_api POST /admin/faults '{"latencyMs":300,"fail429":0,"fail500":0}' >/dev/null
submit_k8s "$JG_SEED/2_1_test_job_group.yaml"
GE=$GID
jgc_ok cancel "$GE"
wait_end "$GE" 60
assert_eq "$END_STATE" CANCELLED "state after a cancel during the creates"
nothing_left "$GE"
jk_api POST /admin/faults '{"latencyMs":0,"fail429":0,"fail500":0}' >/dev/null
ok "cancel while the pods are still being created: CANCELLED, nothing left"

# ---- a context the kubeconfig lacks: the submit is refused with the reason
jgc submit "$JG_SEED/2_1_test_job_group.yaml" --infra kubernetes/no-such-context -d
[ "$RC" -ne 0 ] || fail "a submit to an unknown context was accepted"
assert_contains "$ERR" "no-such-context" "the refusal"
assert_contains "$ERR" "$JK_KUBECONFIG" "the refusal names the kubeconfig"
ok "--infra kubernetes/no-such-context is refused at submit, naming the context and the kubeconfig"

jg_done
