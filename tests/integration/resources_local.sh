#!/usr/bin/env bash
# resources_local.sh - what the local backend gives nodes of their resources:
# seed plan 3.1 (heterogeneous cpus and memory: every job SUCCEEDED), 3.2 (a
# GPU job beside a CPU job: the GPU node gets CUDA_VISIBLE_DEVICES; skipped
# without nvidia-smi) and 7.1 (a shared volume: the reader sees the writer's
# file; needs the daemon's volume registry, `jgsched volume`).  Fast copies of
# the seed files (sleeps divided by 5), submitted with --infra local.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

# What the backend says of cgroups and GPUs (logged once at start).
notes=$(grep -m1 'local backend: cgroups:' "$JGSCHED_HOME/jgschedd.log" 2>/dev/null)
[ -n "$notes" ] || fail "the daemon's log does not say whether nodes are limited (cgroups) and which GPUs it has"
echo "# ${notes#*local backend: }"
ok "the daemon logs how nodes are held to their resources"

# ---- 3.1 mixed CPU / memory requirements
fast_copy "$JG_SEED/3_1_heterogeneous.yaml" "$JG_WORK/3_1.yaml"
submit_follow "$JG_WORK/3_1.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of 3_1 exited $RC, expected 0"
G31=$GID
show_json "$G31"
assert_eq "$(sq 'grp.state')" SUCCEEDED "3.1 group state"
for j in compute-heavy memory-heavy lightweight; do
    assert_eq "$(job_field "$j" state)" SUCCEEDED "3.1 state of $j"
done
ok "3.1 every job of the heterogeneous group SUCCEEDED"
jgc_ok logs "$G31"
for j in compute-heavy memory-heavy lightweight; do
    assert_contains "$OUT" "($j-0) Done" "logs of group $G31"
done
assert_contains "$OUT" "(memory-heavy-0) Memory info:" "logs of group $G31"
ok "3.1 every job printed its output and 'Done'"

# ---- 3.2 a GPU job beside a CPU job
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "skip - no GPU on this machine (nvidia-smi not found): seed 3.2"
else
    # The seed asks T4:1 "or available GPU type": ask for this host's type,
    # named as the daemon names it ("NVIDIA H200" -> H200).
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 |
        sed -E 's/^ *//; :a; s/^(NVIDIA|Tesla|GeForce) +//; ta; s/[- ].*//')
    [ -n "$gpu" ] || fail "nvidia-smi lists no GPU"
    # shellcheck disable=SC2016  # $CUDA_VISIBLE_DEVICES is for the node's shell
    sed -e "s/accelerators: T4:1.*/accelerators: $gpu:1/" \
        -e 's/^  echo "GPU trainer starting"$/  echo "GPU trainer starting"; echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"/' \
        "$JG_SEED/3_2_gpu_cpu.yaml" >"$JG_WORK/3_2_src.yaml"
    fast_copy "$JG_WORK/3_2_src.yaml" "$JG_WORK/3_2.yaml"
    grep -q "accelerators: $gpu:1" "$JG_WORK/3_2.yaml" || fail "could not rewrite 3.2's accelerators to $gpu:1"
    submit_follow "$JG_WORK/3_2.yaml"
    [ "$RC" -eq 0 ] || fail_group "$GID" "submit of 3_2 exited $RC, expected 0"
    G32=$GID
    show_json "$G32"
    assert_eq "$(job_field gpu-trainer state)" SUCCEEDED "3.2 state of gpu-trainer"
    assert_eq "$(job_field cpu-preprocessor state)" SUCCEEDED "3.2 state of cpu-preprocessor"
    ok "3.2 gpu-trainer ($gpu:1) and cpu-preprocessor SUCCEEDED"
    jgc_ok logs "$G32" gpu-trainer
    assert_match "$OUT" "CUDA_VISIBLE_DEVICES=[0-9]" "3.2 logs of gpu-trainer"
    assert_contains "$OUT" "GPU trainer done" "3.2 logs of gpu-trainer"
    ok "3.2 gpu-trainer's log shows the GPU it was given (CUDA_VISIBLE_DEVICES)"
    jgc_ok logs "$G32" cpu-preprocessor
    assert_contains "$OUT" "Can reach trainer at: gpu-trainer-0.k8s-gpu-cpu-group" "3.2 logs of cpu-preprocessor"
    ok "3.2 cpu-preprocessor names the trainer by hostname"
fi

# ---- 7.1 a shared volume
jgc volume ls
if [ "$RC" -ne 0 ]; then
    echo "skip - the daemon has no volume registry yet ('jgsched volume ls' exited $RC): seed 7.1"
elif grep -q "hostnames do not resolve" "$JGSCHED_HOME/jgschedd.log" 2>/dev/null; then
    echo "skip - nodes have no mount namespace of their own here, so no volume can be mounted: seed 7.1"
else
    mnt_existed=0
    [ -e /mnt/shared ] && mnt_existed=1
    # The mount point the group makes stays after it (see below): ours to remove.
    jg_extra_teardown() { [ "$mnt_existed" = 1 ] || rmdir /mnt/shared 2>/dev/null; }
    jgc_ok volume create shared-volume
    fast_copy "$JG_SEED/7_1_shared_volume.yaml" "$JG_WORK/7_1.yaml"
    submit_follow "$JG_WORK/7_1.yaml"
    [ "$RC" -eq 0 ] || fail_group "$GID" "submit of 7_1 exited $RC, expected 0"
    G71=$GID
    show_json "$G71"
    assert_eq "$(job_field writer state)" SUCCEEDED "7.1 state of writer"
    assert_eq "$(job_field reader state)" SUCCEEDED "7.1 state of reader"
    jgc_ok logs "$G71" reader
    assert_contains "$OUT" "Hello from writer" "7.1 logs of reader"
    assert_not_contains "$OUT" "File not found yet" "7.1 logs of reader"
    ok "7.1 the reader's log shows the file the writer put on the shared volume"
    if [ "$mnt_existed" = 0 ]; then
        # Made as the submitting user (root here) and left in place: another
        # group's or instance's node may have a volume mounted there.
        [ "$(stat -c %U /mnt/shared 2>/dev/null)" = "$(id -un)" ] ||
            fail "the mount point /mnt/shared made for group $G71 is missing or not $(id -un)'s"
        rmdir /mnt/shared || fail "the mount point /mnt/shared is not an empty directory"
        ok "7.1 the mount point was made on the host as the submitting user"
    fi
    jgc_ok volume rm shared-volume
fi

jg_done
