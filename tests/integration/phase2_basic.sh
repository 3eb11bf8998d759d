#!/usr/bin/env bash
# phase2_basic.sh - seed plan Phase 2.1 on the original file (two parallel jobs,
# ~10 s), then what every node sees (DESIGN section 4 environment), the setup
# barrier, a setup failure, and the quick-start example.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

# ---- 2.1 minimal JobGroup, original file
t0=$(date +%s)
submit_follow "$JG_SEED/2_1_test_job_group.yaml"
t1=$(date +%s)
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of 2_1_test_job_group.yaml exited $RC, expected 0"
assert_eq "$GNAME" "test-job-group" "group name in 'Submitted group' line"
G21=$GID
ok "2.1 submit follows the group to the end and exits 0"

show_json "$G21"
assert_eq "$(sq 'grp.state')" SUCCEEDED "group state"
assert_eq "$(job_field job-a state)" SUCCEEDED "job-a state"
assert_eq "$(job_field job-b state)" SUCCEEDED "job-b state"
assert_eq "$(job_field job-a exit_code)" 0 "job-a exit code"
assert_eq "$(job_field job-b exit_code)" 0 "job-b exit code"
ok "2.1 both jobs SUCCEEDED"

ta=$(ev_first job-a RUNNING)
tb=$(ev_first job-b RUNNING)
{ [ -n "$ta" ] && [ -n "$tb" ]; } || fail_group "$G21" "no RUNNING event for job-a ($ta) or job-b ($tb) in show --json"
fabs_le "$ta" "$tb" 2 || fail_group "$G21" "job-a RUNNING at $ta, job-b at $tb: not within 2 s"
[ $((t1 - t0)) -lt 40 ] || fail "2.1 took $((t1 - t0)) s (two parallel 10 s jobs)"
ok "2.1 jobs run in parallel (RUNNING within 2 s of each other, $((t1 - t0)) s in all)"

q=$(queue_json)
assert_eq "$(printf '%s' "$q" | jq -r --argjson id "$G21" \
    '.[] | select(.id == $id) | [.jobs[].name] | sort | join(",")')" "job-a,job-b" "jobs of the group in queue --json"
ok "2.1 both jobs show in the queue"

jgc_ok logs "$G21"
logs_all=$OUT
for j in a b; do
    J=${j^^}
    assert_contains "$logs_all" "(job-$j-0) SKYPILOT_JOBGROUP_NAME: test-job-group" "logs of group $G21"
    assert_contains "$logs_all" "(job-$j-0) Job $J Starting" "logs of group $G21"
    assert_contains "$logs_all" "(job-$j-0) Job $J done" "logs of group $G21"
done
jgc_ok logs "$G21" job-a
assert_contains "$OUT" "Job A done" "logs of job-a"
assert_not_contains "$OUT" "Job B" "logs of job-a"
ok "2.1 logs of both jobs show SKYPILOT_JOBGROUP_NAME and their 'done' lines, prefixed (job-rank)"

assert_no_leftovers test-job-group "$G21"
ok "2.1 nothing left running after the group ended"

# ---- environment every node sees
cat >"$JG_WORK/env.yaml" <<'EOF'
---
name: env-test
placement: SAME_INFRA
execution: parallel
---
name: pair
num_nodes: 2
envs:
  MY_VAR: hello world
run: |
  env | sort
  for v in SKYPILOT_JOBGROUP_NAME SKYPILOT_NODE_RANK SKYPILOT_NUM_NODES SKYPILOT_NODE_IPS \
           SKYPILOT_TASK_ID SKYPILOT_NUM_GPUS_PER_NODE JGSCHED_GROUP_ID JGSCHED_JOB \
           JGSCHED_ATTEMPT JGSCHED_GROUP_HOSTS MY_VAR; do
    if printenv "$v" >/dev/null; then
      printf 'JGENV %s=%s\n' "$v" "$(printenv "$v" | tr '\n' ',' | sed 's/,*$//')"
    else
      printf 'JGENV %s unset\n' "$v"
    fi
  done
---
name: solo
run: |
  for v in SKYPILOT_JOBGROUP_NAME SKYPILOT_NODE_RANK SKYPILOT_NUM_NODES SKYPILOT_NODE_IPS \
           SKYPILOT_TASK_ID SKYPILOT_NUM_GPUS_PER_NODE JGSCHED_GROUP_ID JGSCHED_JOB \
           JGSCHED_ATTEMPT JGSCHED_GROUP_HOSTS; do
    if printenv "$v" >/dev/null; then
      printf 'JGENV %s=%s\n' "$v" "$(printenv "$v" | tr '\n' ',' | sed 's/,*$//')"
    else
      printf 'JGENV %s unset\n' "$v"
    fi
  done
EOF
submit_follow "$JG_WORK/env.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of env.yaml exited $RC"
GENV=$GID
ok "env: group with a 2-node job and a 1-node job succeeds"

# envval NODE VAR: the value node NODE printed for VAR (newlines shown as ',').
envval() {
    printf '%s\n' "$LOGS_ENV" | sed -n "s/^($1) JGENV $2=//p" | head -n 1
}
jgc_ok logs "$GENV"
LOGS_ENV=$OUT
for node in pair-0 pair-1 solo-0; do
    printf '%s\n' "$LOGS_ENV" | grep -q "^($node) JGENV " || fail "no JGENV lines from node $node in the logs"
    printf '%s\n' "$LOGS_ENV" | grep -q "^($node) JGENV .* unset$" &&
        fail "node $node misses a variable: $(printf '%s\n' "$LOGS_ENV" | grep "^($node) JGENV .* unset$")"
    assert_eq "$(envval "$node" SKYPILOT_JOBGROUP_NAME)" env-test "SKYPILOT_JOBGROUP_NAME on $node"
    assert_eq "$(envval "$node" JGSCHED_GROUP_ID)" "$GENV" "JGSCHED_GROUP_ID on $node"
    assert_eq "$(envval "$node" JGSCHED_ATTEMPT)" 1 "JGSCHED_ATTEMPT on $node"
    assert_eq "$(envval "$node" SKYPILOT_NUM_GPUS_PER_NODE)" 0 "SKYPILOT_NUM_GPUS_PER_NODE on $node"
    hosts=$(envval "$node" JGSCHED_GROUP_HOSTS)
    assert_eq "$(printf '%s' "$hosts" | tr ',' '\n' | grep -c .)" 3 "number of JGSCHED_GROUP_HOSTS on $node ($hosts)"
    for h in pair-0.env-test pair-1.env-test solo-0.env-test; do
        printf '%s' "$hosts" | tr ',' '\n' | grep -qx "$h" || fail "JGSCHED_GROUP_HOSTS on $node ($hosts) lacks $h"
    done
done
ok "env: group name, group id, attempt, GPU count and the group's hostnames on every node"

assert_eq "$(envval pair-0 SKYPILOT_NODE_RANK)" 0 "SKYPILOT_NODE_RANK on pair-0"
assert_eq "$(envval pair-1 SKYPILOT_NODE_RANK)" 1 "SKYPILOT_NODE_RANK on pair-1"
assert_eq "$(envval solo-0 SKYPILOT_NODE_RANK)" 0 "SKYPILOT_NODE_RANK on solo-0"
assert_eq "$(envval pair-0 SKYPILOT_NUM_NODES)" 2 "SKYPILOT_NUM_NODES on pair-0"
assert_eq "$(envval pair-1 SKYPILOT_NUM_NODES)" 2 "SKYPILOT_NUM_NODES on pair-1"
assert_eq "$(envval solo-0 SKYPILOT_NUM_NODES)" 1 "SKYPILOT_NUM_NODES on solo-0"
assert_eq "$(envval pair-0 JGSCHED_JOB)" pair "JGSCHED_JOB on pair-0"
assert_eq "$(envval solo-0 JGSCHED_JOB)" solo "JGSCHED_JOB on solo-0"
ok "env: rank, node count and job name per node"

ips0=$(envval pair-0 SKYPILOT_NODE_IPS)
ips1=$(envval pair-1 SKYPILOT_NODE_IPS)
assert_eq "$ips1" "$ips0" "SKYPILOT_NODE_IPS on pair-1 vs pair-0"
assert_eq "$(printf '%s' "$ips0" | tr ',' '\n' | grep -c .)" 2 "number of SKYPILOT_NODE_IPS of pair ($ips0)"
for ip in $(printf '%s' "$ips0" | tr ',' ' '); do
    assert_match "$ip" '^[0-9a-fA-F.:]+$' "an IP in SKYPILOT_NODE_IPS"
done
assert_eq "$(printf '%s' "$(envval solo-0 SKYPILOT_NODE_IPS)" | tr ',' '\n' | grep -c .)" 1 "number of SKYPILOT_NODE_IPS of solo"
ok "env: SKYPILOT_NODE_IPS lists the job's nodes, the same on each of them"

assert_match "$(envval pair-0 SKYPILOT_TASK_ID)" "^jgsched-.+_env-test_pair_${GENV}-0\$" "SKYPILOT_TASK_ID of pair"
assert_match "$(envval solo-0 SKYPILOT_TASK_ID)" "^jgsched-.+_env-test_solo_${GENV}-1\$" "SKYPILOT_TASK_ID of solo"
assert_eq "$(envval pair-1 SKYPILOT_TASK_ID)" "$(envval pair-0 SKYPILOT_TASK_ID)" "SKYPILOT_TASK_ID on both nodes of pair"
ok "env: SKYPILOT_TASK_ID is jgsched-<timestamp>_<group>_<job>_<id>-<job index>"

assert_eq "$(envval pair-0 MY_VAR)" "hello world" "user env MY_VAR on pair-0"
assert_eq "$(envval pair-1 MY_VAR)" "hello world" "user env MY_VAR on pair-1"
ok "env: the job's envs reach every node of the job"

show_json "$GENV"
assert_eq "$(sq '[grp.nodes[] | "\(.job)-\(.rank)=\(.hostname)"] | sort | join(" ")')" \
    "pair-0=pair-0.env-test pair-1=pair-1.env-test solo-0=solo-0.env-test" "nodes in show --json"
ok "show --json lists every node with its <job>-<rank>.<group> hostname"

# ---- barrier: no run starts before every node of the group finished setup
mkdir -p "$JG_WORK/barrier"
cat >"$JG_WORK/barrier.yaml.in" <<'EOF'
---
name: barrier-test
placement: SAME_INFRA
execution: parallel
---
name: slow-setup
num_nodes: 2
setup: |
  echo "slow setup begins"
  sleep 3
  date +%s.%N > "$(mktemp @DIR@/setup_end.XXXXXX)"
  echo "slow setup ends"
run: |
  date +%s.%N > "$(mktemp @DIR@/run_start.XXXXXX)"
  echo "slow-setup runs"
---
name: no-setup
run: |
  date +%s.%N > "$(mktemp @DIR@/run_start.XXXXXX)"
  echo "no-setup runs"
EOF
sed "s|@DIR@|$JG_WORK/barrier|g" "$JG_WORK/barrier.yaml.in" >"$JG_WORK/barrier.yaml"
submit_follow "$JG_WORK/barrier.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of barrier.yaml exited $RC"
GBAR=$GID
n_setup=$(find "$JG_WORK/barrier" -name 'setup_end.*' | wc -l)
n_run=$(find "$JG_WORK/barrier" -name 'run_start.*' | wc -l)
[ "$n_setup" -eq 2 ] || fail_group "$GBAR" "expected 2 setup_end files from slow-setup, found $n_setup"
[ "$n_run" -eq 3 ] || fail_group "$GBAR" "expected 3 run_start files (3 nodes), found $n_run"
last_setup=$(cat "$JG_WORK"/barrier/setup_end.* | sort -n | tail -n 1)
first_run=$(cat "$JG_WORK"/barrier/run_start.* | sort -n | head -n 1)
fle "$last_setup" "$first_run" ||
    fail_group "$GBAR" "a run started at $first_run, before the last setup ended at $last_setup"
ok "barrier: every run (also of the job without setup) started after the last setup ended ($(fsub "$first_run" "$last_setup") s later)"

# ---- setup failure: FAILED_SETUP, the other job's run never starts
mkdir -p "$JG_WORK/setupfail"
cat >"$JG_WORK/setupfail.yaml.in" <<'EOF'
---
name: setup-fail
placement: SAME_INFRA
execution: parallel
---
name: bad-setup
setup: |
  echo "bad setup begins"
  sleep 1
  exit 7
run: |
  touch @DIR@/bad_ran
  echo "bad-setup run started"
---
name: other
setup: |
  echo "other setup"
run: |
  touch @DIR@/other_ran
  echo "other run started"
  sleep 5
EOF
sed "s|@DIR@|$JG_WORK/setupfail|g" "$JG_WORK/setupfail.yaml.in" >"$JG_WORK/setupfail.yaml"
submit_follow "$JG_WORK/setupfail.yaml"
GSF=$GID
[ "$RC" -eq 1 ] || fail_group "$GSF" "submit of a group whose setup fails exited $RC, expected 1"
show_json "$GSF"
gs=$(sq 'grp.state')
state_in "$gs" "FAILED_SETUP|FAILED" || fail_group "$GSF" "group state $gs, expected FAILED_SETUP or FAILED"
assert_eq "$(job_field bad-setup state)" FAILED_SETUP "bad-setup job state"
os=$(job_field other state)
is_terminal "$os" || fail_group "$GSF" "job other is $os after the group ended"
assert_ne "$os" SUCCEEDED "state of job other"
[ ! -e "$JG_WORK/setupfail/other_ran" ] || fail_group "$GSF" "job other's run started although a setup failed"
[ ! -e "$JG_WORK/setupfail/bad_ran" ] || fail_group "$GSF" "bad-setup's run started although its setup failed"
jgc_ok logs "$GSF"
assert_contains "$OUT" "bad setup begins" "logs of the setup-failure group"
assert_not_contains "$OUT" "other run started" "logs of the setup-failure group"
ok "setup failure: job FAILED_SETUP, group $gs, other job $os and its run never started"
assert_no_leftovers setup-fail "$GSF"
ok "setup failure: nothing left running"

# ---- the quick-start example works as advertised
submit_follow "$JG_EXAMPLES/quickstart.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "examples/quickstart.yaml exited $RC"
show_json "$GID"
assert_eq "$(sq 'grp.state')" SUCCEEDED "quickstart group state"
ok "examples/quickstart.yaml succeeds"

jg_done
