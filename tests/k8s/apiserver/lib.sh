# Sourced by test scripts that need the test Kubernetes API server:
#   . tests/k8s/apiserver/lib.sh
#   jk_start [server options...]   # sets JK_PID JK_PORT JK_PREFIX JK_DNS JK_TOKEN JK_KUBECONFIG JK_CA JK_DIR
#   jk_api METHOD PATH [JSON [CONTENT-TYPE]]   # curl with the token; PATH from /api/...
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

jk_api() {
  curl -sS --cacert "$JK_CA" -H "Authorization: Bearer $JK_TOKEN" -X "$1" \
    ${3:+-H "Content-Type: ${4:-application/json}" --data-binary "$3"} "https://127.0.0.1:$JK_PORT$2"
}

jk_stop() {
  if [ -n "${JK_PID:-}" ] && kill -0 "$JK_PID" 2>/dev/null; then
    kill -TERM "$JK_PID"
    wait "$JK_PID" 2>/dev/null || true
  fi
  JK_PID=""
  [ -n "${JK_DIR:-}" ] && rm -rf "$JK_DIR"
  JK_DIR=""
}
