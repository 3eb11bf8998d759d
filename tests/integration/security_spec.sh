#!/usr/bin/env bash
# security_spec.sh - hostile JobGroup YAML from an unprivileged user against a
# shared `jgschedd --system` (issue 10: parsing must be linear and bounded;
# issue 11: validate and submit apply the same bounds).
#
# A throwaway user H sends what used to block root's daemon for tens of
# seconds: 40,000 envs keys, 100,000 nesting levels, 1 MiB of keys, a job of
# 2,000,000 nodes without cpus, a 5 MB file.  Each goes through `jgsched
# validate` and `jgsched submit` (both must refuse it with the same
# file:line:column: field: message naming the bound) and, bypassing every CLI
# check, straight over the socket (tools/jgproto.py): the daemon refuses it
# itself.  While H keeps sending hostile submits, another user O's `daemon
# status` must answer promptly every time; afterwards the queue answers and
# holds nothing.  Users and their processes are removed on any exit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools python3 jq

UH=jgts_h_$$
UO=jgts_o_$$
PROTO=$(cd "$(dirname "$0")" && pwd)/tools/jgproto.py
# Every answer must come well within this (seconds); the old parser took 5 to
# 30 s per file here, the bounded one a few milliseconds.
PROMPT=10

# The hostile submitters in the background stop at $W/stop-hostile.
jg_extra_teardown() {
    local p
    [ -n "${W:-}" ] && : >"$W/stop-hostile" 2>/dev/null
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
}

jg_throwaway_user "$UH"
jg_throwaway_user "$UO"

JG_CONFIG="backends:
  local:
    capacity: {cpus: 8, memory: 16GB}
    nat: false"
JG_DAEMON_ARGS=--system
jg_setup
SOCK=$JGSCHED_HOME/jgsched.sock
W=$JG_WORK
chmod 755 "$W"

# raw USER FILE: FILE's bytes as a submit straight over the socket, as USER;
# the reply goes to REPLY (JSON), its time to TOOK.
raw() {
    local user=$1 file=$2 out
    LAST_CMD="(as $user) jgproto.py submit $file"
    out=$(timeout -k 5 60 runuser -u "$user" -- python3 "$PROTO" "$SOCK" submit "$file" 30 2>&1)
    RC=$?
    OUT=$out
    ERR=""
    [ "$RC" -eq 0 ] || fail "raw submit of $(basename "$file") as $user got no reply"
    REPLY=$(sed -n 's/^reply: //p' <<<"$out")
    TOOK=$(sed -n 's/^seconds: //p' <<<"$out")
}

# ---- the hostile files, readable by H
python3 - "$W" <<'EOF'
import sys
w = sys.argv[1]
def write(name, text):
    with open("%s/%s" % (w, name), "w") as f:
        f.write(text)
write("envs40k.yaml", "name: envs40k\nrun: echo\nenvs:\n" +
      "".join("  K%d: v\n" % i for i in range(40000)))
write("nest100k.yaml", "name: nest100k\nrun: echo\nenvs: " + "[" * 100000 + "]" * 100000 + "\n")
def keys(size):
    out, i = ["name: keys\nrun: echo\n"], 0
    n = len(out[0])
    while n < size:
        line = "k%07d: v\n" % i
        out.append(line)
        n += len(line)
        i += 1
    return "".join(out)[:size]
write("keys1m.yaml", keys(1 << 20))             # 1 MiB of keys: over every bound
write("keys900k.yaml", keys(900 * 1024))        # fits one protocol message (escaped), not max_bytes
write("keys500k.yaml", keys(500 * 1024))        # within max_bytes: refused by the key bound
write("nodes.yaml", "name: nodes\nnum_nodes: 2000000\nrun: echo\n")
line = "  echo " + "x" * 70 + "\n"
write("big5m.yaml", "name: big\nrun: |\n" + line * (5 * 1024 * 1024 // len(line) + 1))
# Where each too-large file passes max_bytes (512 KiB): line and column.
with open("%s/passes" % w, "w") as out:
    for name in ("keys1m", "keys900k", "big5m"):
        with open("%s/%s.yaml" % (w, name)) as f:
            head = f.read(512 * 1024)
        out.write("%s %d:%d\n" % (name, head.count("\n") + 1, len(head) - head.rfind("\n")))
EOF
chmod 644 "$W"/*.yaml
size_of() { stat -c %s "$1"; }
passes() { sed -n "s/^$1 //p" "$W/passes"; }

# One expected message per file: file:line:column: field: message naming the bound.
declare -A WANT=(
    [envs40k]="envs40k.yaml:1028:3: envs: more than 1024 keys in one mapping, the limit (spec_limits.max_keys_per_mapping)"
    [nest100k]="nest100k.yaml:3:70: envs[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]...: nested more than 64 levels deep, the limit (spec_limits.max_depth)"
    [keys1m]="keys1m.yaml:$(passes keys1m): size: the YAML is $(size_of "$W/keys1m.yaml") bytes, over the limit of 512 KiB (spec_limits.max_bytes = 524288); the limit is passed here"
    [keys900k]="keys900k.yaml:$(passes keys900k): size: the YAML is $(size_of "$W/keys900k.yaml") bytes, over the limit of 512 KiB (spec_limits.max_bytes = 524288); the limit is passed here"
    [keys500k]="keys500k.yaml:1025:1: document: more than 1024 keys in one mapping, the limit (spec_limits.max_keys_per_mapping)"
    [nodes]="nodes.yaml:2:12: num_nodes: 2000000 nodes, over the limit of 1024 nodes per job (spec_limits.max_nodes_per_job)"
    [big5m]="big5m.yaml:$(passes big5m): size: the YAML is $(size_of "$W/big5m.yaml") bytes, over the limit of 512 KiB (spec_limits.max_bytes = 524288); the limit is passed here"
)

# ---- validate and submit, as H: both refuse with the same message
for f in envs40k nest100k keys1m keys500k nodes big5m; do
    jg_as "$UH" validate "$W/$f.yaml"
    assert_eq "$RC" 2 "exit status of validate $f.yaml"
    assert_contains "$ERR" "$W/${WANT[$f]}" "stderr of validate $f.yaml"
    vline=$(grep -F "$W/$f.yaml:" <<<"$ERR" | head -n 1)
    fle "$TOOK" "$PROMPT" || fail "validate $f.yaml took ${TOOK}s (more than ${PROMPT}s)"
    jg_as "$UH" submit "$W/$f.yaml" --infra local -d
    assert_eq "$RC" 2 "exit status of submit $f.yaml"
    assert_contains "$ERR" "$W/${WANT[$f]}" "stderr of submit $f.yaml"
    sline=$(grep -F "$W/$f.yaml:" <<<"$ERR" | head -n 1)
    assert_eq "$sline" "$vline" "submit's and validate's message for $f.yaml"
    fle "$TOOK" "$PROMPT" || fail "submit $f.yaml took ${TOOK}s (more than ${PROMPT}s)"
done
ok "validate and submit refuse every hostile file with the same file:line:column: field: message"

jg_as "$UO" queue --json
assert_eq "$RC" 0 "queue after the hostile submits"
assert_eq "$(jq length <<<"$OUT")" 0 "groups in the queue after the hostile submits"
fle "$TOOK" "$PROMPT" || fail "queue took ${TOOK}s"
ok "num_nodes 2000000 without cpus is refused at validation; the queue answers and is empty"

# ---- straight over the socket: the daemon refuses on its own
for f in envs40k nest100k keys900k keys500k nodes; do
    raw "$UH" "$W/$f.yaml"
    assert_eq "$(jq -r .ok <<<"$REPLY")" false "ok of the raw submit of $f.yaml"
    assert_eq "$(jq -r '.errors[0]' <<<"$REPLY")" "$W/${WANT[$f]}" "first error of the raw submit of $f.yaml"
    assert_eq "$(jq -r '.errors | length' <<<"$REPLY")" 1 "errors of the raw submit of $f.yaml"
    fle "$TOOK" "$PROMPT" || fail "the daemon took ${TOOK}s to refuse $f.yaml"
done
# A whole MiB of keys does not even fit one protocol message.
raw "$UH" "$W/keys1m.yaml"
assert_eq "$(jq -r .ok <<<"$REPLY")" false "ok of the raw submit of keys1m.yaml"
assert_contains "$(jq -r .error <<<"$REPLY")" "1048576" "error of the raw submit of keys1m.yaml"
ok "the daemon itself refuses hostile YAML sent past the CLI, each bound named"

# ---- while H keeps sending hostile submits, O's daemon status answers promptly
rm -f "$W/stop-hostile" "$W/hostile-count" "$W/hostile-started"
(
    n=0
    while [ ! -e "$W/stop-hostile" ]; do
        for f in nest100k envs40k keys500k; do
            : >"$W/hostile-started"
            out=$(timeout -k 5 60 runuser -u "$UH" -- python3 "$PROTO" "$SOCK" submit "$W/$f.yaml" 60 2>&1) ||
                { echo "no reply to $f: $out" >"$W/hostile-failed"; exit 1; }
            r=$(sed -n 's/^reply: //p' <<<"$out")
            [ "$(jq -r .ok <<<"$r")" = false ] || { echo "$f accepted: $r" >"$W/hostile-failed"; exit 1; }
            n=$((n + 1))
            echo "$n" >"$W/hostile-count"
        done
    done
) &
HOSTILE=$!
# Probes start once the first hostile submit is on its way (bounded wait, on
# a state); the count of answered ones, before and after, shows they overlap.
for _ in $(seq 1 300); do
    [ -e "$W/hostile-started" ] && break
    sleep 0.1
done
[ -e "$W/hostile-started" ] || fail "the hostile submitter did not start"
before=$(cat "$W/hostile-count" 2>/dev/null || echo 0)
slowest=0
for i in 1 2 3 4 5 6 7 8; do
    jg_as "$UO" daemon status
    assert_eq "$RC" 0 "daemon status #$i as $UO during the hostile submits"
    assert_contains "$OUT" "is running" "daemon status #$i"
    fle "$TOOK" "$PROMPT" || fail "daemon status #$i took ${TOOK}s during the hostile submits (more than ${PROMPT}s)"
    fle "$TOOK" "$slowest" || slowest=$TOOK
done
after=$(cat "$W/hostile-count" 2>/dev/null || echo 0)
: >"$W/stop-hostile"
wait "$HOSTILE"
rc=$?
[ ! -e "$W/hostile-failed" ] || fail "a hostile submit: $(cat "$W/hostile-failed")"
[ "$rc" -eq 0 ] || fail "the hostile submitter exited $rc"
[ "$after" -gt "$before" ] ||
    fail "no hostile submit was answered while the status probes ran ($before before, $after after): they did not overlap"
ok "another user's daemon status answered promptly (slowest ${slowest}s) during $(cat "$W/hostile-count") hostile submits"

jg_as "$UO" queue --json
assert_eq "$RC" 0 "queue after the flood"
assert_eq "$(jq length <<<"$OUT")" 0 "groups in the queue after the flood"
ok "nothing hostile was stored"

jg_done
