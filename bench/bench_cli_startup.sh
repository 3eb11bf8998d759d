#!/usr/bin/env bash
# bench_cli_startup.sh - what starting the `jgsched` command costs, next to a
# minimal C program linked against libc alone (the floor for any command):
# median CPU (user+sys) and minor page faults per run, and their ratios.
#   min        a C program that prints one line (built here with cc -O2)
#   --version  jgsched's cheapest path: start-up and exit
#   validate   jgsched validate examples/quickstart.yaml (libyaml parsing, no daemon)
# The runs are interleaved (exec_cost.c), so load elsewhere on the machine
# hits all of them alike.  Also prints the shared libraries jgsched needs.
# Usage: bench/bench_cli_startup.sh [BUILD_DIR]   (RUNS=300 by default)
# Prints "name cpu_us faults cpu_ratio fault_ratio" rows; bench/side_by_side.sh
# reuses it (CLI_STARTUP_TABLE_ONLY=1 prints the rows alone).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
RUNS=${RUNS:-300}
JG=$build/jgsched
[ -x "$JG" ] || { echo "bench_cli_startup: no $JG (build first: scripts/build.sh $build)" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/jgclistart.XXXXXX")
trap 'rm -rf "$work"' EXIT

cc -O2 -o "$work/exec_cost" "$root/bench/exec_cost.c"
printf '#include <stdio.h>\nint main(void) { puts("min 0.1.0"); return 0; }\n' > "$work/min.c"
cc -O2 -o "$work/min" "$work/min.c"

# shellcheck disable=SC2207  # numbers only
figures=($("$work/exec_cost" "$RUNS" "$work/min" -- "$JG" --version \
    -- "$JG" validate "$root/examples/quickstart.yaml"))
row() {  # name cpu faults
    awk -v n="$1" -v c="$2" -v f="$3" -v bc="${figures[0]}" -v bf="${figures[1]}" \
        'BEGIN { printf "%-12s %8d %7d %9.2f %11.2f\n", n, c, f, c / bc, f / bf }'
}
if [ -z "${CLI_STARTUP_TABLE_ONLY:-}" ]; then
    echo "jgsched links: $(ldd "$JG" | awk '$1 !~ /vdso|ld-linux/ {print $1}' | tr '\n' ' ')"
    echo "runs: $RUNS each, interleaved; medians; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%-12s %8s %7s %9s %11s\n' name cpu_us faults cpu_ratio fault_ratio
fi
row min "${figures[0]}" "${figures[1]}"
row --version "${figures[3]}" "${figures[4]}"
row validate "${figures[6]}" "${figures[7]}"
