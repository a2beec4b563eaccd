#!/usr/bin/env bash
# Installs what building, running and testing need, if it is missing.
# Debian packages: libmodbus-dev, libserialport-dev, libsqlite3-dev, pkg-config (the C
# libraries), socat and mbpoll (serial tools for rigs), rt-tests (cyclictest, for
# LoopBench), chromium, chromium-driver and fonts-wqy-zenhei (the phone UI's browser test,
# with CJK glyphs for its screenshots), iproute2 and nftables (network namespaces and
# real packet loss for the comms-loss test), systemd, udev and openssl (the deployment check:
# systemd-analyze, sysusers and tmpfiles on a staging root, `udevadm test`
# on the rule, the install script's certificate). Python: pymodbus (the independent Modbus peer of
# the interoperability check), selenium (drives the browser) and schemathesis (tests the
# API against its OpenAPI document), sandiaspecutils (SpecUtils reads our N42.42 exports).
set -euo pipefail

need_apt=()
for pkg in libmodbus-dev libserialport-dev libsqlite3-dev pkg-config socat mbpoll rt-tests chromium chromium-driver fonts-wqy-zenhei iproute2 nftables systemd udev openssl; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update >/dev/null
        $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}" >/dev/null
    }
fi

if ! python3 -c 'import pymodbus, serial; assert pymodbus.__version__.split(".")[0] == "3"' >/dev/null 2>&1; then
    echo "setup: installing pymodbus[serial] 3.x"
    python3 -m pip install --quiet --disable-pip-version-check "pymodbus[serial]>=3.10,<4" 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

if ! python3 -c 'import selenium; assert selenium.__version__.split(".")[0] == "4"' >/dev/null 2>&1; then
    echo "setup: installing selenium 4.x"
    python3 -m pip install --quiet --disable-pip-version-check "selenium>=4.20,<5" 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

if ! command -v st >/dev/null 2>&1 || ! st --version 2>/dev/null | grep -q "version 4"; then
    echo "setup: installing schemathesis 4.x"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis>=4.0,<5" 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

if ! python3 -c 'import SpecUtils' >/dev/null 2>&1; then
    echo "setup: installing sandiaspecutils (SpecUtils, the N42.42 reader)"
    python3 -m pip install --quiet --disable-pip-version-check "sandiaspecutils>=0.0.11,<0.1" 2>&1 | grep -v "Running pip as the 'root' user" || true
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "setup: Swift 6 is not on PATH. Install the Swift 6.x toolchain for Debian 12 from swift.org and retry." >&2
    exit 1
fi
