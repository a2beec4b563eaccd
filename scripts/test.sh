#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs the interoperability check
# against pymodbus, then the Swift test suite (unit and hardware-in-the-loop tests).
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
