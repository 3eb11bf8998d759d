#!/usr/bin/env bash
# End-to-end check of the test Kubernetes API server with plain curl: a
# 2-pod group behind a headless service, DNS between the pods (getent inside
# a pod, entered with jk_exec), jk_exec itself, a pod's log, a watch that gets 410, garbage collection
# by owner deletion, and nothing left behind once the server is stopped.
# Exit 77 (skip) without root or without node/npm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm missing (scripts/deps.sh)"; exit 77; }

. "$here/lib.sh"
tmp=$(mktemp -d /tmp/jg-k8s-selftest.XXXXXX)
cleanup() {
  local rc=$?
  jk_stop
  rm -rf "$tmp"
  exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -n "${JK_DIR:-}" ] && tail -20 "$JK_DIR/server.err" >&2; exit 1; }

jk_start --history 20 || fail "server did not start"
prefix=$JK_PREFIX
k() { jk_api "$1" "/api/v1/namespaces/default/$2" "${@:3}"; }
wait_for() { # wait_for DESCRIPTION COMMAND...: polls until COMMAND succeeds (60 s)
  local what=$1; shift
  for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out: $what"
}

# unauthenticated requests are refused
[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$JK_CA" "https://127.0.0.1:$JK_PORT/api/v1/pods")" = 401 ] || fail "no 401 without token"

# the group: an owner ConfigMap; a headless Service and two pods owned by it
owner_uid=$(k POST configmaps '{"metadata":{"name":"jg-g1"}}' | jq -r .metadata.uid)
[ -n "$owner_uid" ] && [ "$owner_uid" != null ] || fail "owner not created"
ref="{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"jg-g1\",\"uid\":\"$owner_uid\",\"controller\":true,\"blockOwnerDeletion\":true}"
k POST services "{\"metadata\":{\"name\":\"jg-g1\",\"ownerReferences\":[$ref]},\"spec\":{\"clusterIP\":\"None\",\"publishNotReadyAddresses\":true,\"selector\":{\"jgsched.io/group-id\":\"g1\"},\"ports\":[{\"name\":\"agent\",\"port\":7411}]}}" | jq -e '.spec.clusterIP == "None"' >/dev/null || fail "service"
start_rv=$(k GET pods | jq -r .metadata.resourceVersion)
for r in 0 1; do
  k POST pods "{\"metadata\":{\"name\":\"jg-g1-w-$r\",\"labels\":{\"jgsched.io/group-id\":\"g1\"},\"ownerReferences\":[$ref]},
    \"spec\":{\"hostname\":\"w-$r\",\"subdomain\":\"jg-g1\",\"restartPolicy\":\"Never\",\"terminationGracePeriodSeconds\":2,
    \"volumes\":[{\"name\":\"tmp\",\"emptyDir\":{}}],
    \"containers\":[{\"name\":\"main\",\"image\":\"busybox\",\"workingDir\":\"/tmp\",\"env\":[{\"name\":\"GREETING\",\"value\":\"hi \$(HOSTNAME)\"}],\"volumeMounts\":[{\"name\":\"tmp\",\"mountPath\":\"/tmp\"}],
      \"command\":[\"sh\",\"-c\",\"echo hello from \$(hostname); exec sleep 600\"]}]}}" | jq -e '.metadata.uid' >/dev/null || fail "pod $r"
done
running() { [ "$(k GET "pods/$1" | jq -r .status.phase)" = Running ]; }
wait_for "pods running" eval 'running jg-g1-w-0 && running jg-g1-w-1'
ip1=$(k GET pods/jg-g1-w-1 | jq -r .status.podIP)

# DNS from inside pod w-0, entered with jk_exec (its network, mount and UTS
# namespaces, as kubectl exec would)
in_pod() { jk_exec default jg-g1-w-0 "$@"; }
[ "$(in_pod hostname)" = w-0 ] || fail "jk_exec: hostname in w-0 is $(in_pod hostname)"
got=$(in_pod getent hosts w-1.jg-g1 | awk '{print $1}') || fail "w-1.jg-g1 does not resolve in w-0"
[ "$got" = "$ip1" ] || fail "w-1.jg-g1 resolved to $got, want $ip1"
in_pod getent hosts jg-g1.default.svc.cluster.local | grep -q "$ip1" || fail "service name misses w-1"
! in_pod getent hosts w-9.jg-g1 >/dev/null || fail "an unknown name resolved"
in_pod grep -q "w-0.jg-g1.default.svc.cluster.local" /etc/hosts || fail "/etc/hosts lacks the pod's own name"
in_pod ping -c1 -W2 "$ip1" >/dev/null || fail "w-0 cannot ping w-1"

# jk_exec: the container's environment and working directory, its own /tmp
# (the emptyDir), stdin passed through, CMD's exit status, refusal for a pod
# whose container does not run
[ "$(in_pod sh -c 'echo "$GREETING:$(pwd)"')" = "hi w-0:/tmp" ] || fail "jk_exec: env/workdir: $(in_pod sh -c 'echo "$GREETING:$(pwd)"')"
echo "from the test" | in_pod sh -c 'cat > /tmp/jk-exec-mark' || fail "jk_exec: write into the pod's /tmp"
[ "$(jk_exec default jg-g1-w-0 cat /tmp/jk-exec-mark)" = "from the test" ] || fail "jk_exec: the pod's /tmp lost the file"
[ ! -e /tmp/jk-exec-mark ] || fail "jk_exec: the file landed in the host's /tmp"
! jk_exec default jg-g1-w-1 test -e /tmp/jk-exec-mark || fail "jk_exec: w-1 sees w-0's /tmp"
set +e; in_pod sh -c 'exit 3'; rc=$?; set -e
[ "$rc" = 3 ] || fail "jk_exec: exit status $rc, want 3"
k POST pods '{"metadata":{"name":"done"},"spec":{"restartPolicy":"Never","containers":[{"name":"main","image":"x","command":["true"]}]}}' >/dev/null
wait_for "pod done Succeeded" eval '[ "$(k GET pods/done | jq -r .status.phase)" = Succeeded ]'
set +e; JK_EXEC_WAIT_S=1 jk_exec default done true 2>"$tmp/exec.err"; rc=$?; set -e
[ "$rc" = 126 ] && grep -q "not running" "$tmp/exec.err" || fail "jk_exec into a finished container: exit $rc, $(cat "$tmp/exec.err")"

# the log subresource
wait_for "log of w-1" eval '[ "$(k GET "pods/jg-g1-w-1/log?container=main")" = "hello from w-1" ]'

# a watch from before the history window gets an ERROR event with 410 Expired
for i in $(seq 25); do k POST configmaps "{\"metadata\":{\"name\":\"fill-$i\"}}" >/dev/null; done
k GET "pods?watch=1&resourceVersion=$start_rv&timeoutSeconds=5" >"$tmp/watch.out"
jq -e 'select(.type == "ERROR") | .object.code == 410 and .object.reason == "Expired"' "$tmp/watch.out" >/dev/null || fail "no 410 on an expired watch: $(cat "$tmp/watch.out")"

# deleting the owner garbage-collects the group
k DELETE configmaps/jg-g1 >/dev/null
gone() { [ "$(k GET "$1" | jq -r .code)" = 404 ]; }
wait_for "group collected" eval 'gone services/jg-g1 && gone pods/jg-g1-w-0 && gone pods/jg-g1-w-1'

# stopping the server leaves nothing
jk_stop
! ip netns list | grep -q "^$prefix-" || fail "network namespaces left"
! ip link show | grep -q "$prefix" || fail "links left"
[ ! -e "/run/jg-test-apiserver/$prefix" ] || fail "state left"
echo "PASS: k8s apiserver end-to-end check"

# the server's own unit tests (node:test)
(cd "$here" && node --test test/*.test.js) >"$tmp/unit.out" 2>&1 || { tail -60 "$tmp/unit.out" >&2; fail "node --test"; }
grep -E '^# (tests|pass|fail)' "$tmp/unit.out"
echo "PASS: k8s apiserver selftest"
