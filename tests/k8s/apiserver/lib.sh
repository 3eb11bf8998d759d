# shellcheck shell=bash
# Sourced by test scripts that need the test Kubernetes API server:
#   . tests/k8s/apiserver/lib.sh
#   jk_start [server options...]   # sets JK_PID JK_PORT JK_PREFIX JK_DNS JK_TOKEN JK_KUBECONFIG JK_CA JK_DIR
#   jk_api METHOD PATH [JSON [CONTENT-TYPE]]   # curl with the token; PATH from /api/...
#   jk_exec [-c CONTAINER] NS POD CMD...       # CMD inside a running container (not pods/exec: nsenter)
#   jk_watch PATH FILE             # a watch's events appended to FILE (background, resumed)
#   jk_watch_stop                  # ends this shell's watchers (a subshell must call it itself)
#   jk_stop                        # SIGTERM, wait; the server removes what it created
# jk_start runs setup.sh (npm ci when needed) and waits for the READY line.
# The caller's EXIT trap should call jk_stop.
JK_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

jk_start() {
  "$JK_HERE/setup.sh" || return 1
  JK_DIR=$(mktemp -d /tmp/jk-client.XXXXXX)
  JK_TOKEN=${JK_TOKEN:-jk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}
  JK_KUBECONFIG=$JK_DIR/kubeconfig
  node "$JK_HERE/server.js" --port 0 --kubeconfig-out "$JK_KUBECONFIG" --token "$JK_TOKEN" "$@" \
    >"$JK_DIR/server.out" 2>"$JK_DIR/server.err" &
  JK_PID=$!
  local ready="" _
  for _ in $(seq 600); do
    ready=$(grep -m1 '^READY ' "$JK_DIR/server.out" 2>/dev/null) && break
    kill -0 "$JK_PID" 2>/dev/null || { echo "jk_start: server exited: $(tail -5 "$JK_DIR/server.err")" >&2; return 1; }
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "jk_start: no READY line after 60 s" >&2; return 1; }
  JK_PORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$ready")
  JK_PREFIX=$(sed -n 's/.*prefix=\([a-z0-9]*\).*/\1/p' <<<"$ready")
  JK_DNS=$(sed -n 's/.*dns=\([0-9.]*\).*/\1/p' <<<"$ready")
  JK_CA=$JK_DIR/ca.crt
  sed -n 's/.*certificate-authority-data: //p' "$JK_KUBECONFIG" | base64 -d >"$JK_CA"
}

# Prints the response body whatever its status (a Status object for errors),
# as kubectl's raw mode would, once the response is complete (so not for
# following a watch or a log).  429 and 500 (the server's injected faults)
# are retried for up to 30 s, so that a test's own requests do not flake
# under --fail-429/--fail-500.  A request may take JK_API_MAX_TIME seconds
# (default 60).  Exit status: curl's.
jk_api() {
  local out code i rc
  for i in $(seq 60); do
    out=$(curl -sS --max-time "${JK_API_MAX_TIME:-60}" --cacert "$JK_CA" -H "Authorization: Bearer $JK_TOKEN" -X "$1" -w '\n%{http_code}' \
      ${3:+-H "Content-Type: ${4:-application/json}" --data-binary "$3"} "https://127.0.0.1:$JK_PORT$2")
    rc=$?
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    case $code in 429 | 500) [ "$i" -lt 60 ] && { sleep 0.5; continue; } ;; esac
    break
  done
  [ -z "$out" ] || printf '%s\n' "$out"
  return $rc
}

# jk_exec [-c CONTAINER] NS POD CMD...: runs CMD inside a running container of
# the pod as `kubectl exec POD -c CONTAINER -- CMD` would: in the container's
# network, UTS and mount namespaces (so its IP, hostname, /etc/hosts,
# /etc/resolv.conf and volumes), with the environment and working directory
# the container was started with, stdin/stdout/stderr passed through; exits
# with CMD's status.  It is not the pods/exec subresource (this server has
# none): GET /admin/pods/NS/POD/containers/C/pid gives the container's process,
# which nsenter enters.  CONTAINER defaults to the pod's first container.
# Waits up to JK_EXEC_WAIT_S (default 10) for a container that is starting;
# fails (status 126, a message on stderr) if it does not run.  CMD is killed
# after JK_EXEC_TIMEOUT seconds (default 120; status 124), so that a hung
# command cannot hang the test.
jk_exec() {
  local container="" ns pod info="" pid wd i
  if [ "${1:-}" = -c ]; then container=$2; shift 2; fi
  ns=$1 pod=$2
  shift 2
  if [ -z "$container" ]; then
    container=$(jk_api GET "/api/v1/namespaces/$ns/pods/$pod" | jq -r '.spec.containers[0].name // empty')
    [ -n "$container" ] || { echo "jk_exec: no pod $ns/$pod" >&2; return 126; }
  fi
  for ((i = 0; i < ${JK_EXEC_WAIT_S:-10} * 10; i++)); do
    info=$(jk_api GET "/admin/pods/$ns/$pod/containers/$container/pid")
    jq -e '.pid' >/dev/null 2>&1 <<<"$info" && break
    [ "$(jq -r '.code // empty' 2>/dev/null <<<"$info")" = 409 ] || break
    sleep 0.1
  done
  pid=$(jq -r '.pid // empty' 2>/dev/null <<<"$info")
  [ -n "$pid" ] || { echo "jk_exec: $ns/$pod container $container: $(jq -r '.message // .' 2>/dev/null <<<"$info")" >&2; return 126; }
  wd=$(jq -r '.workingDir // ""' <<<"$info")
  local -a envs=()
  mapfile -d '' envs < <(jq -j '.env | to_entries[] | "\(.key)=\(.value)\u0000"' <<<"$info")
  timeout -k 5 "${JK_EXEC_TIMEOUT:-120}" nsenter -t "$pid" -n -u -m --wd="${wd:-/}" -- env -i "${envs[@]}" "$@"
}

# jk_watch PATH FILE: follows the watch PATH (a list URL, e.g. pods with a
# fieldSelector; ?watch=1 is added) in the background, appending its events
# to FILE one JSON a line; a stream that ends (--cut-watches-every, timeouts,
# an injected 429) is resumed from the last resourceVersion seen.  Prints
# nothing; the watcher's pid is added to JK_WATCH_PIDS (jk_stop ends them).
JK_WATCH_PIDS=()
jk_watch() {
  local url=$1 file=$2 sep='?'
  [[ $url == *\?* ]] && sep='&'
  (
    rv=""
    while :; do
      curl -sSN --cacert "$JK_CA" -H "Authorization: Bearer $JK_TOKEN" \
        "https://127.0.0.1:$JK_PORT$url${sep}watch=1${rv:+&resourceVersion=$rv}" >>"$file" 2>/dev/null
      last=$(tail -n 1 "$file" | jq -r 'select(.type != "ERROR") | .object.metadata.resourceVersion // empty' 2>/dev/null)
      [ -n "$last" ] && rv=$last
      sleep 0.2
    done
  ) &
  JK_WATCH_PIDS+=($!)
}

# jk_watch_stop: ends the watchers jk_watch started in this shell.
jk_watch_stop() {
  local p
  for p in "${JK_WATCH_PIDS[@]}"; do
    kill "$p" 2>/dev/null
    pkill -P "$p" 2>/dev/null
  done
  JK_WATCH_PIDS=()
}

jk_stop() {
  jk_watch_stop
  if [ -n "${JK_PID:-}" ] && kill -0 "$JK_PID" 2>/dev/null; then
    kill -TERM "$JK_PID"
    wait "$JK_PID" 2>/dev/null || true
  fi
  JK_PID=""
  [ -n "${JK_DIR:-}" ] && rm -rf "$JK_DIR"
  JK_DIR=""
}
