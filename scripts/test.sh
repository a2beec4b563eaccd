#!/usr/bin/env bash
# The test command: installs what is missing, builds, then runs the tiers:
#  1. the fast tier (`swift test` as typed: unit and virtual-time tests, in parallel);
#  2. the interoperability check against pymodbus, and the firmware conformance kit
#     (hil/conformance/) against the simulator over RTU and TCP and with every deviation;
#  3. the hardware-in-the-loop tier (real ptys, real TCP, real time; one test at a time);
#  4. the phone UI in headless Chromium (screenshots in test-output/browser/), the
#     security checks, and the short campaigns: hostile clients, comms loss in a network
#     namespace, schemathesis against our OpenAPI document, the N42.42 export read by
#     SpecUtils, the deployment (install script, units, udev, sd_notify, backups), SIGKILLs
#     mid-scan, a fault soak.
# Every stage runs under a time limit (`stage`), so a hang fails that stage with its name
# instead of eating CI's budget, and each stage prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
export ROBOT_TEST_STARTED_AT="${ROBOT_TEST_STARTED_AT:-$(date +%s)}"
# A stage stopped at its limit must still show what its Python script printed.
export PYTHONUNBUFFERED=1

# stage LIMIT_SECONDS NAME COMMAND...: runs COMMAND with line-buffered output, killed
# (TERM, then KILL 20 s later) if it runs past LIMIT_SECONDS.
stage() {
    local limit="$1" name="$2"
    shift 2
    echo "== $name (limit ${limit} s)"
    local started rc=0
    started=$(date +%s)
    timeout --kill-after=20 "$limit" stdbuf -oL -eL "$@" || rc=$?
    local took=$(( $(date +%s) - started ))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "!! $name: did not finish within ${limit} s (stopped after ${took} s)" >&2
        exit 1
    elif [ "$rc" -ne 0 ]; then
        echo "!! $name: failed (exit $rc) after ${took} s" >&2
        exit "$rc"
    fi
    echo "== $name: ${took} s (total $(( $(date +%s) - ROBOT_TEST_STARTED_AT )) s)"
}

stage 1800 "set-up" scripts/setup.sh
stage 2400 "build" swift build --build-tests
bin="$(swift build --show-bin-path)"

# The fast tier in parallel, as a developer types it; the HIL tier one test at a time:
# its suites run real-time loops and time the simulated line, and must not compete with
# each other for the two cores.
stage 600 "fast tier: swift test (unit and virtual time)" swift test --skip-build
stage 300 "interoperability with pymodbus (independent Modbus stack)" python3 scripts/interop_pymodbus.py "$bin"
stage 400 "firmware conformance kit (pymodbus): the simulator, a TCP 'gateway' rig, every deviation caught" python3 scripts/conformance_check.py "$bin"
stage 1500 "HIL tier: real links and real time" env ROBOT_TEST_TIER=hil swift test --skip-build --no-parallel
stage 600 "phone UI in headless Chromium (Selenium)" python3 scripts/browser_test.py "$bin"
stage 300 "security checks against a running robotd" python3 scripts/security_check.py "$bin"
stage 300 "hostile clients: e-stop under a command flood, a log-in flood, slow clients" python3 scripts/hostile_clients.py "$bin" --quick
stage 600 "comms loss: the phone in a network namespace, real packet loss and gaps" python3 scripts/comms_loss.py "$bin" --quick
stage 600 "schemathesis against the OpenAPI document" python3 scripts/schemathesis_check.py 10 "$bin"
stage 300 "N42.42 export read by SpecUtils (independent reader)" python3 scripts/n42_check.py "$bin"
stage 300 "deployment: install.sh, systemd units, udev rule, sd_notify, verified backups" python3 scripts/deploy_check.py "$bin"
stage 600 "crash campaign: 5 SIGKILLs mid-scan" python3 scripts/crash_campaign.py 5 "$bin"
stage 300 "fault soak, 2 minutes" "$bin/FaultSoak" --minutes 2
stage 300 "store memory" "$bin/StoreMemoryBench" --scans 300 --batch 50
echo "== all stages passed in $(( $(date +%s) - ROBOT_TEST_STARTED_AT )) s"
