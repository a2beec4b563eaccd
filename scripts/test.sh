#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the interoperability check
# against pymodbus, the Swift test suite (unit, hardware-in-the-loop and command-server
# tests, fuzz corpus replay), the phone UI in headless Chromium (screenshots in
# test-output/browser/), the security checks, and the short reliability campaigns:
# schemathesis against our OpenAPI document, 5 SIGKILLs mid-scan, a 2-minute fault soak;
# and the safety campaigns: hostile clients (e-stop under a command flood, a log-in
# flood, slow clients) and comms loss (a phone in a network namespace, real packet loss).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== build"
swift build --build-tests

echo "== interoperability with pymodbus (independent Modbus stack)"
python3 scripts/interop_pymodbus.py "$(swift build --show-bin-path)"

echo "== swift test"
# One test at a time: the hardware-in-the-loop suites run real-time loops and time
# the simulated line, and must not compete with each other for the two cores.
swift test --skip-build --no-parallel

echo "== phone UI in headless Chromium (Selenium)"
python3 scripts/browser_test.py "$(swift build --show-bin-path)"

echo "== security checks against a running robotd (tokens, roles, audit, rate limit, logs)"
python3 scripts/security_check.py "$(swift build --show-bin-path)"

echo "== hostile clients against a running robotd: e-stop under a command flood, a log-in flood, slow clients"
python3 scripts/hostile_clients.py "$(swift build --show-bin-path)" --quick

echo "== comms loss: the officer's phone in a network namespace, real packet loss and gaps"
python3 scripts/comms_loss.py "$(swift build --show-bin-path)" --quick

echo "== reliability, short versions (docs/reliability.md has the long ones)"
bin="$(swift build --show-bin-path)"
python3 scripts/schemathesis_check.py 10 "$bin"
python3 scripts/crash_campaign.py 5 "$bin"
"$bin/FaultSoak" --minutes 2
"$bin/StoreMemoryBench" --scans 300 --batch 50
