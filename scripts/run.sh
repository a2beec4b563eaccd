#!/usr/bin/env bash
# The main job: the controller daemon (robotd) with the built-in simulator as a child
# process on a pty, scanning a 40 ft container that hides a Cs-137 source
# (hil/scenarios/cs137-40ft.yaml) with the short demo profile. robotd checks every
# unit's protocol version, starts the 100 Hz control loop, measures background, walks
# the grid round the container, judges it against SN/T 0570 (background + 0.25),
# estimates where the source sits, stores every reading (scans.sqlite, hash-chained)
# and writes the reports (reports/). It prints the verdict and the report's path,
# then leaves the command server and the phone UI up at http://127.0.0.1:8080/ (PORT=...
# to change) until Ctrl-C, which stops motion, parks the lift and exits. Log in to the
# phone UI as 'officer' with the password this script generates and prints (a fresh demo
# store each run; there is no default password). The simulator runs 5 times faster than
# real time so the demo scan takes about a minute. Pass --once to exit when the scan is done.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

swift build
bin="$(swift build --show-bin-path)"
mkdir -p demo
# A fresh demo store: the database, its WAL files, its signing key and audit checkpoints.
rm -f demo/scans.sqlite demo/scans.sqlite-wal demo/scans.sqlite-shm demo/scans.sqlite.signing-key demo/scans.sqlite.checkpoints

port="${PORT:-8080}"
password="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ROBOTD_PASSWORD="$password" "$bin/robotctl" user add officer --role supervisor --store demo/scans.sqlite
echo "$password" > demo/officer-password.txt
chmod 600 demo/officer-password.txt

echo "== serial ports (libserialport; the simulator's pty is not listed)"
"$bin/robotctl" ports
echo
echo "== robotd: scanning MSKU9070323 (40 ft) with the demo profile"
args=(--sim --scenario hil/scenarios/cs137-40ft.yaml --sim-time-scale 5
      --scan MSKU9070323 --size 42G1 --at 0,0,0 --profile profiles/demo.yaml
      --store demo/scans.sqlite --reports demo/reports --officer officer --port "$port")
echo "== phone UI: http://127.0.0.1:$port/  user: officer  password: $password (also in demo/officer-password.txt)"
if [ "${1:-}" = "--once" ]; then
    "$bin/robotd" "${args[@]}" --exit-when-done
    echo
    "$bin/robotctl" verify --store demo/scans.sqlite
    exit 0
fi
exec "$bin/robotd" "${args[@]}"
