#!/usr/bin/env bash
# The main job: the controller daemon (robotd) with the built-in simulator as a child
# process on a pty. It checks every unit's protocol version, starts the 100 Hz control
# loop, and runs the smoke demo: home the lift, walk 1 m, raise the detector, measure
# with uncertainty, lower it. robotd then keeps the robot under control until Ctrl-C,
# which stops motion, parks the lift and exits. Pass --once to exit after the demo.
# (The full container scan and the phone UI come with the inspection engine and the
# command server.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

swift build
bin="$(swift build --show-bin-path)"

echo "== serial ports (libserialport; the simulator's pty is not listed)"
"$bin/robotctl" ports
echo
echo "== robotd --sim --demo"
if [ "${1:-}" = "--once" ]; then
    exec "$bin/robotd" --sim --demo --exit-when-done
fi
exec "$bin/robotd" --sim --demo
