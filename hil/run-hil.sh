#!/usr/bin/env bash
# Runs the hardware-in-the-loop suite against a rig file (default: the simulator).
#   hil/run-hil.sh                          # built-in simulator
#   hil/run-hil.sh hil/rigs/my-bench.yaml   # a real robot on the ports the file names
set -euo pipefail
cd "$(dirname "$0")/.."
export HIL_RIG="${1:-hil/rigs/simulator.yaml}"
echo "HIL rig: $HIL_RIG"
swift test --filter HILTests
