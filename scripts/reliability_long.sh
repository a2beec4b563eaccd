#!/usr/bin/env bash
# The long reliability campaigns (issue 7), one after another so that none disturbs
# another's timing: a 30-minute fault soak, 50 SIGKILLs mid-scan, 10 minutes of
# libFuzzer per target, schemathesis with 200 examples per operation, 10 minutes of
# 100 WebSocket clients plus a command load during a 40 ft scan (after 10 quiet
# minutes), and a store grown to 3000 scans (memory). About 2 h 20 min on a 2-core
# machine. Logs in test-output/long/; each campaign's figures are printed at its end.
# Exits non-zero if any campaign failed.
#
#   scripts/reliability_long.sh [campaign...]   (soak crash fuzz schemathesis load store; default all)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
campaigns=("$@")
[ ${#campaigns[@]} -gt 0 ] || campaigns=(soak crash fuzz schemathesis load store)

echo "== build (debug for robotd/robotctl/robot-sim, release for the soak and the load bench)"
# Package.swift builds the benchmarks (the load bench among them) only when asked.
export ROBOT_BENCHMARKS=1
swift build || exit 1
swift build -c release --product FaultSoak || exit 1
swift build -c release --product ServerBench || exit 1
swift build -c release --product StoreMemoryBench || exit 1
bin="$(swift build --show-bin-path)"
out=test-output/long
mkdir -p "$out"

failed=()
run() {
    local name="$1"
    shift
    echo "== $name: $*"
    if "$@" 2>&1 | tee "$out/$name.log"; then
        echo "== $name: passed"
    else
        echo "== $name: FAILED (log: $out/$name.log)"
        failed+=("$name")
    fi
}

for campaign in "${campaigns[@]}"; do
    case "$campaign" in
        soak) run soak .build/release/FaultSoak --minutes 30 ;;
        crash) run crash python3 scripts/crash_campaign.py 50 "$bin" ;;
        fuzz) run fuzz scripts/fuzz.sh 600 ;;
        schemathesis) run schemathesis python3 scripts/schemathesis_check.py 200 "$bin" ;;
        load) run load .build/release/ServerBench --scan --seconds 600 ;;
        store) run store .build/release/StoreMemoryBench --scans 3000 --batch 250 ;;
        *) echo "unknown campaign '$campaign'; known: soak crash fuzz schemathesis load store"; exit 2 ;;
    esac
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "long campaigns FAILED: ${failed[*]}"
    exit 1
fi
echo "long campaigns: all passed"
