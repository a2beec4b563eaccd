#!/usr/bin/env bash
# The main job: starts the robot simulator (firmware side, Modbus RTU on a pty and
# TCP on loopback, with real 115200-baud line timing), lists the serial ports, and
# probes every unit on the bus with robotctl. The simulator then stays up until
# Ctrl-C so that robotctl, mbpoll or a rig can talk to it. Pass --once to stop after
# the probe.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

swift build
bin="$(swift build --show-bin-path)"
link=/tmp/robot-sim/bus0

"$bin/robot-sim" --link "$link" --line-timing --tcp-port 1502 &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -e "$link" ] && break; sleep 0.1; done

echo
echo "== robotctl ports"
"$bin/robotctl" ports
echo
echo "== robotctl probe --port $link"
"$bin/robotctl" probe --port "$link"

if [ "${1:-}" = "--once" ]; then
    exit 0
fi
echo
echo "The simulator is up: RTU at $link, TCP at 127.0.0.1:1502. Try:"
echo "  $bin/robotctl probe --tcp 127.0.0.1:1502"
echo "  mbpoll -m rtu -b 115200 -P none -a 3 -t 3 -r 17 -c 5 -1 $link"
echo "Ctrl-C stops it."
wait $sim
