#!/usr/bin/env bash
# infra_volume.sh - `jgsched infra` and `jgsched volume`, and gang admission
# against a declared capacity, as a user sees them:
#   1. (lib.sh's config: cpus 64, memory 256GB) infra shows the declared
#      capacity and where it comes from, a running group's usage (in use, free,
#      the groups table) and nothing once it is cancelled; volume create / ls /
#      rm round trip, a volume in use cannot be removed, errors for an unknown
#      volume, a bad name, and a submit mounting a volume that does not exist.
#   2. (a second instance, cpus: 2) two groups that cannot run together run one
#      after the other, the second PENDING with a reason naming cpus meanwhile;
#      a group that can never fit ends FAILED_NO_RESOURCE saying what the
#      largest node offers.
# Each part runs in a subshell with its own instance (jg_setup's teardown runs
# when the subshell exits); both run even when the first fails, and the test
# fails if either did.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
ME=$(id -un)

# ij FILTER: a jq filter on the last `infra --json` ($OUT), raw output.
ij() {
    printf '%s' "$OUT" | jq -r "$1"
}

# ---------------------------------------------------------------- part 1
(
jg_setup

jgc_ok infra --json
printf '%s' "$OUT" | jq -e . >/dev/null 2>&1 || fail "infra --json is not valid JSON"
assert_eq "$(ij '.backends[0].name')" local "first backend"
assert_eq "$(ij '.backends[0].capacity.cpus')" 64 "declared cpus"
assert_eq "$(ij '.backends[0].capacity.memory_gb')" 256 "declared memory"
assert_eq "$(ij '.backends[0].source')" config "capacity source"
assert_eq "$(ij '.config')" "$JGSCHED_HOME/config.yaml" "config path"
assert_eq "$(ij '.backends[0].used.cpus')" 0 "cpus in use with no group"
assert_eq "$(ij '.backends[0].groups | length')" 0 "groups holding resources with no group"
jgc_ok infra
assert_contains "$OUT" "backend local" "infra"
assert_contains "$OUT" "capacity:      64 cpus, 256GB memory (declared in $JGSCHED_HOME/config.yaml)" "infra"
assert_contains "$OUT" "largest node:" "infra"
assert_contains "$OUT" "in use:        cpus 0/64, memory 0/256GB" "infra"
assert_contains "$OUT" "no group holds resources" "infra"
ok "infra shows the capacity declared in config.yaml, its source, nothing in use"

cat >"$JG_WORK/busy.yaml" <<EOF
---
name: busy-$TAG
placement: SAME_INFRA
execution: parallel
---
name: wide
num_nodes: 2
resources: {cpus: 3, memory: 5GB}
run: sleep 120
---
name: small
resources: {cpus: 1, memory: 2GB}
run: sleep 120
EOF
submit_detached "$JG_WORK/busy.yaml"
GB=$GID
wait_state "$GB" RUNNING 30
jgc_ok infra --json
assert_eq "$(ij '.backends[0].used.cpus')" 7 "cpus in use (2x3 + 1)"
assert_eq "$(ij '.backends[0].used.memory_gb')" 12 "memory in use (2x5 + 2 GB)"
assert_eq "$(ij '.backends[0].groups[] | select(.id == '"$GB"') | .state')" \
    RUNNING "state of the running group in infra"
assert_eq "$(ij '.backends[0].groups[] | select(.id == '"$GB"') | "\(.name) \(.user) \(.nodes) \(.resources.cpus) \(.resources.memory_gb)"')" \
    "busy-$TAG $ME 3 7 12" "the running group's row in infra --json"
jgc_ok infra
assert_contains "$OUT" "in use:        cpus 7/64, memory 12/256GB" "infra"
assert_contains "$OUT" "free:          57 cpus, 244GB memory" "infra"
assert_contains "$OUT" "groups holding resources:" "infra"
assert_match "$OUT" "ID +NAME +USER +STATE +NODES +CPUS +MEMORY +ACCELERATORS" "infra groups header"
assert_match "$OUT" " $GB +busy-$TAG +$ME +RUNNING +3 +7 +12GB +-" "infra row of group $GB"
ok "infra shows a running group's usage: in use, free and its row in the groups table"

jgc_ok cancel "$GB"
wait_state "$GB" CANCELLED 20
jgc_ok infra --json
assert_eq "$(ij '.backends[0].used.cpus')" 0 "cpus in use after cancel"
assert_eq "$(ij '.backends[0].groups | length')" 0 "groups holding resources after cancel"
ok "a cancelled group releases what it held"

# ---- volumes
VOL=data-$TAG
jgc_ok volume ls
assert_contains "$OUT" "No volumes" "volume ls with none"
jgc_ok volume create "$VOL"
assert_eq "$OUT" "Created volume $VOL at $JGSCHED_HOME/volumes/$VOL" "volume create output"
[ -d "$JGSCHED_HOME/volumes/$VOL" ] || fail "volume create made no directory $JGSCHED_HOME/volumes/$VOL"
jgc volume create "$VOL"
assert_eq "$RC" 1 "exit status of volume create of an existing volume"
assert_contains "$ERR" "already exists" "volume create of an existing volume"
jgc_ok volume ls
assert_match "$OUT" "NAME +SOURCE +OWNER +PATH +USED-BY" "volume ls header"
assert_match "$OUT" "$VOL +created +$ME +$JGSCHED_HOME/volumes/$VOL +-" "volume ls row"
jgc_ok volume ls --json
assert_eq "$(ij '.[] | select(.name == "'"$VOL"'") | "\(.source) \(.owner) \(.used_by) \(.created > 0)"')" \
    "created $ME 0 true" "volume ls --json entry"
ok "volume create makes a directory owned by its creator; ls lists it (table and JSON); a second create fails"

jgc_ok volume rm "$VOL"
assert_eq "$OUT" "Removed volume $VOL" "volume rm output"
[ ! -e "$JGSCHED_HOME/volumes/$VOL" ] || fail "volume rm left $JGSCHED_HOME/volumes/$VOL"
jgc_ok volume ls --json
assert_eq "$(ij '[.[] | select(.name == "'"$VOL"'")] | length')" 0 "volumes named $VOL after rm"
jgc volume rm "$VOL"
assert_eq "$RC" 1 "exit status of a second volume rm"
assert_contains "$ERR" "no volume $VOL" "second volume rm"
jgc volume rm "nope-$TAG"
assert_eq "$RC" 1 "exit status of volume rm of an unknown volume"
assert_contains "$ERR" "no volume nope-$TAG" "volume rm of an unknown volume"
ok "volume rm removes the volume and its directory; rm of an unknown volume fails"

jgc volume create Bad_Name
assert_eq "$RC" 2 "exit status of volume create with a bad name"
assert_contains "$ERR" "invalid volume name 'Bad_Name'" "volume create with a bad name"
assert_contains "$ERR" "lowercase letters, digits and '-'" "volume create with a bad name"
assert_contains "$ERR" "at most 63 characters" "volume create with a bad name"
jgc_ok volume ls --json
assert_eq "$(ij 'length')" 0 "volumes after a refused create"
ok "volume create of a bad name fails (exit 2) naming the rule"

cat >"$JG_WORK/ghost.yaml" <<EOF
---
name: ghost-$TAG
placement: SAME_INFRA
execution: parallel
---
name: reader
volumes: {/data: missing-$TAG}
run: "true"
EOF
jgc submit "$JG_WORK/ghost.yaml" --infra local -d
assert_eq "$RC" 2 "exit status of submit mounting an unknown volume"
assert_contains "$ERR" "volume missing-$TAG" "submit mounting an unknown volume"
assert_contains "$ERR" "jgsched volume create missing-$TAG" "submit mounting an unknown volume"
assert_eq "$(timeout 30 "$JGSCHED" queue -a --json | jq '[.[] | select(.name == "ghost-'"$TAG"'")] | length')" \
    0 "groups stored for a rejected submit"
ok "a submit mounting an unknown volume is rejected (exit 2) naming it and how to create it"

# Last in this part: it needs the daemon to resolve created volumes at submit.
VOL2=shared-$TAG
jgc_ok volume create "$VOL2"
cat >"$JG_WORK/mounts.yaml" <<EOF
---
name: mounts-$TAG
placement: SAME_INFRA
execution: parallel
---
name: user
volumes: {/data: $VOL2}
run: sleep 120
EOF
submit_detached "$JG_WORK/mounts.yaml"
GM=$GID
wait_state "$GM" RUNNING 30
jgc_ok volume ls --json
assert_eq "$(ij '.[] | select(.name == "'"$VOL2"'") | .used_by')" "$GM" "used_by of a mounted volume"
jgc_ok volume ls
assert_match "$OUT" "$VOL2 +created +$ME +[^ ]+ +group $GM" "volume ls USED-BY of a mounted volume"
jgc volume rm "$VOL2"
assert_eq "$RC" 1 "exit status of volume rm of a volume in use"
assert_contains "$ERR" "in use by group $GM" "volume rm of a volume in use"
jgc_ok cancel "$GM"
wait_state "$GM" CANCELLED 20
ok "a volume an active group mounts shows USED-BY and cannot be removed"

jgc_ok volume rm "$VOL2"
ok "once the group ended the volume can be removed"

jg_done
)
part1=$?

# ---------------------------------------------------------------- part 2
(
JG_CONFIG='backends: {local: {capacity: {cpus: 2}, nat: false}}'
jg_setup

jgc_ok infra --json
assert_eq "$(ij '.backends[0].capacity.cpus')" 2 "declared cpus"
assert_eq "$(ij '.backends[0].source')" config "capacity source"
ok "infra shows the tiny declared capacity (cpus: 2)"

# The first group holds both cpus until the test lets it go.
cat >"$JG_WORK/first.yaml" <<EOF
---
name: first-$TAG
resources: {cpus: 2}
run: |
  for i in \$(seq 600); do [ -e $JG_WORK/release ] && exit 0; sleep 0.1; done
  exit 1
EOF
cat >"$JG_WORK/second.yaml" <<EOF
---
name: second-$TAG
resources: {cpus: 1}
run: echo "second ran"
EOF
submit_detached "$JG_WORK/first.yaml"
G1=$GID
wait_state "$G1" RUNNING 30
submit_detached "$JG_WORK/second.yaml"
G2=$GID
sleep 0.5
q=$(queue_json)
assert_eq "$(printf '%s' "$q" | jq -r '.[] | select(.id == '"$G2"') | .state')" PENDING \
    "queue state of the second group while the first holds every cpu"
reason=$(printf '%s' "$q" | jq -r '.[] | select(.id == '"$G2"') | .reason')
contains_ci "$reason" cpus || fail "queue reason of the pending group does not mention cpus: '$reason'"
jgc_ok show "$G2"
assert_match "$OUT" "State: +PENDING" "show of the pending group"
line=$(printf '%s\n' "$OUT" | grep -m1 'Reason:')
contains_ci "$line" cpus || fail "show of the pending group: its Reason line does not mention cpus"
jgc_ok infra --json
assert_eq "$(ij '.backends[0].pending | map(.id) | index('"$G2"') != null')" true \
    "the second group among infra's pending groups"
assert_eq "$(ij '.backends[0].used.cpus')" 2 "cpus in use while the first group runs"
jgc_ok infra
assert_contains "$OUT" "pending groups:" "infra"
assert_match "$OUT" " $G2 +second-$TAG +$ME +PENDING +1 +1 " "infra row of the pending group"
assert_eq "$(group_state "$G1")" RUNNING "state of the first group while checking"
ok "a group that does not fit next to a running one is PENDING, its reason naming cpus (queue, show, infra)"

touch "$JG_WORK/release"
wait_end "$G1" 30
assert_eq "$END_STATE" SUCCEEDED "state of the first group"
wait_end "$G2" 30
assert_eq "$END_STATE" SUCCEEDED "state of the second group"
show_json "$G1"
ended1=$(sq 'grp.ended')
show_json "$G2"
started2=$(sq 'grp.started')
fle "$ended1" "$started2" || fail_group "$G2" "the second group started at $started2, before the first ended at $ended1"
ok "the two groups ran one after the other and both SUCCEEDED"

cat >"$JG_WORK/huge.yaml" <<EOF
---
name: huge-$TAG
resources: {cpus: 1000}
run: "true"
EOF
submit_follow "$JG_WORK/huge.yaml"
GH=$GID
assert_eq "$RC" 1 "exit status of submit of a group that can never fit"
show_json "$GH"
assert_eq "$(sq 'grp.state')" FAILED_NO_RESOURCE "state of a group that can never fit"
reason=$(sq 'grp.reason')
assert_contains "$reason" "cpus=1000" "reason of the group that can never fit"
assert_contains "$reason" "largest node" "reason of the group that can never fit"
assert_contains "$reason" "cpus=2" "reason of the group that can never fit"
ok "a group asking 1000 cpus ends FAILED_NO_RESOURCE naming cpus and what the largest node offers"

jg_done
)
part2=$?
[ "$part1" -eq 0 ] && [ "$part2" -eq 0 ]
