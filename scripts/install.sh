#!/usr/bin/env bash
# Installs robotd on a robot's controller (Debian 12 with systemd), as docs/deploying.md
# describes: the binaries, the systemd units (robotd, and a daily verified backup), the
# system user, the directories and their permissions, the udev rule that names the
# RS-485 adapter, the journal's rotation, a site configuration and a TLS certificate.
# Then it checks the configuration (robotd --check-config) and, on a live system, enables
# and starts robotd. It never overwrites a configuration, profile, key or certificate
# that is already there.
#
#   scripts/install.sh [--bin DIR] [--root DIR] [--adapter-serial SERIAL] [--robot-id ID]
#                      [--host ADDRESS] [--port N] [--no-start]
#
#   --bin DIR       robotd and robotctl to install (default: build them, release, with the
#                   Swift runtime linked in, so the robot needs no Swift toolchain)
#   --root DIR      install into DIR as if it were / (a staging tree; nothing is started)
#   --adapter-serial SERIAL  the USB serial number of the RS-485 adapter (robotctl ports
#                   lists it); without it the udev rule is installed disabled
#   --robot-id ID   the robot's ID, stored with every scan (default: the host name)
#   --host ADDRESS  where the officers' API listens (default 0.0.0.0, with TLS)
#   --port N        its port (default 8443)
#   --no-start      install and enable, but do not start robotd now
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

bin="" root="" serial="" robot_id="$(hostname -s 2>/dev/null || echo RIR-01)" host="0.0.0.0" port="8443" start=1
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin="$2"; shift 2 ;;
        --root) root="$(realpath -m "$2")"; shift 2 ;;
        --adapter-serial) serial="$2"; shift 2 ;;
        --robot-id) robot_id="$2"; shift 2 ;;
        --host) host="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --no-start) start=0; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "install: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$port" in ''|*[!0-9]*) echo "install: --port must be a number 1-65535, got '$port'" >&2; exit 2 ;; esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then echo "install: --port must be 1-65535, got $port" >&2; exit 2; fi
if ! printf '%s' "$robot_id" | grep -Eq '^[A-Za-z0-9._-]{1,64}$'; then
    echo "install: --robot-id must be 1-64 letters, digits, '.', '_' or '-', got '$robot_id'" >&2; exit 2
fi
if [ -n "$serial" ] && ! printf '%s' "$serial" | grep -Eq '^[A-Za-z0-9._-]{1,64}$'; then
    echo "install: --adapter-serial must be letters, digits, '.', '_' or '-' (as robotctl ports prints it), got '$serial'" >&2; exit 2
fi
live=0
if [ -z "$root" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "install: run as root (or with --root DIR to stage into a folder)" >&2; exit 2; }
    live=1
fi
R="${root:-}"

say() { echo "install: $*"; }

# 1. Run-time packages (the C libraries robotd links; openssl for the certificate).
if [ "$live" -eq 1 ]; then
    need=()
    for pkg in libmodbus5 libserialport0 libsqlite3-0 openssl; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
    if [ ${#need[@]} -gt 0 ]; then
        say "installing ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

# 2. The binaries.
if [ -z "$bin" ]; then
    say "building robotd and robotctl (release, static Swift runtime)"
    swift build -c release --static-swift-stdlib --product robotd >/dev/null
    swift build -c release --static-swift-stdlib --product robotctl >/dev/null
    bin="$(swift build -c release --show-bin-path)"
fi
for b in robotd robotctl; do
    [ -x "$bin/$b" ] || { echo "install: $bin/$b is missing; build first or pass --bin" >&2; exit 2; }
    install -D -m 0755 "$bin/$b" "$R/usr/local/bin/$b"
done
say "binaries in $R/usr/local/bin"

# 3. systemd units, the user, the directories, the journal's rotation, the udev rule.
install -D -m 0644 deploy/systemd/robotd.service "$R/etc/systemd/system/robotd.service"
install -D -m 0644 deploy/systemd/robotd-backup.service "$R/etc/systemd/system/robotd-backup.service"
install -D -m 0644 deploy/systemd/robotd-backup.timer "$R/etc/systemd/system/robotd-backup.timer"
install -D -m 0644 deploy/sysusers.d/robotd.conf "$R/etc/sysusers.d/robotd.conf"
install -D -m 0644 deploy/tmpfiles.d/robotd.conf "$R/etc/tmpfiles.d/robotd.conf"
install -D -m 0644 deploy/journald/robotd.conf "$R/etc/systemd/journald.conf.d/robotd.conf"
# sysusers needs the groups it adds members to; a staging tree has none yet.
if [ -n "$root" ] && ! grep -q '^dialout:' "$R/etc/group" 2>/dev/null; then
    mkdir -p "$R/etc"
    echo "dialout:x:20:" >> "$R/etc/group"
fi
systemd-sysusers ${root:+--root="$root"} "$R/etc/sysusers.d/robotd.conf"
systemd-tmpfiles --create ${root:+--root="$root"} "$R/etc/tmpfiles.d/robotd.conf"
rule="$R/etc/udev/rules.d/60-robotd-rs485.rules"
mkdir -p "$(dirname "$rule")"
if [ -n "$serial" ]; then
    sed "s/@ADAPTER_SERIAL@/$serial/" deploy/udev/60-robotd-rs485.rules.in > "$rule"
    say "udev rule: the adapter with serial $serial is /dev/robot-rs485"
else
    { echo "# Disabled: no --adapter-serial was given. Put the adapter's serial (robotctl ports) in"
      echo "# place of @ADAPTER_SERIAL@, remove the '#' and run: udevadm control --reload && udevadm trigger"
      sed 's/^SUBSYSTEM/# SUBSYSTEM/' deploy/udev/60-robotd-rs485.rules.in; } > "$rule"
    say "udev rule installed disabled: no --adapter-serial (see $rule)"
fi
chmod 0644 "$rule"

# 4. Configuration, profiles and the TLS certificate (kept if present).
owner() { [ "$live" -eq 1 ] && chown "$@" || true; }
config="$R/etc/robotd/robotd.yaml"
rendered="$(sed -e "s/@ROBOT_ID@/$robot_id/" -e "s/@HOST@/$host/" -e "s/@PORT@/$port/" deploy/robotd.yaml.in)"
if [ -e "$config" ]; then
    if [ "$rendered" != "$(cat "$config")" ]; then
        printf '%s\n' "$rendered" > "$config.new"
        say "kept $config (the template for these options is $config.new)"
    fi
else
    printf '%s\n' "$rendered" > "$config"
    say "configuration $config"
fi
chmod 0640 "$config"; owner root:robotd "$config"
for profile in profiles/*.yaml; do
    target="$R/var/lib/robotd/profiles/$(basename "$profile")"
    [ -e "$target" ] || install -m 0640 "$profile" "$target"
    owner robotd:robotd "$target"
done
tls="$R/etc/robotd/tls"
if [ ! -e "$tls/key.pem" ] || [ ! -e "$tls/cert.pem" ]; then
    # A self-signed certificate so the API is never plain HTTP on the yard network;
    # replace it with one from the port's CA (docs/deploying.md, "TLS").
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=$robot_id" \
        -addext "subjectAltName=DNS:$robot_id,DNS:localhost,IP:127.0.0.1" \
        -keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
    say "self-signed TLS certificate for $robot_id in $tls (replace it with the port's)"
fi
chmod 0640 "$tls/key.pem"; chmod 0644 "$tls/cert.pem"; owner root:robotd "$tls/key.pem" "$tls/cert.pem"

# 5. Check what was installed.
if [ -n "$root" ]; then
    "$R/usr/local/bin/robotd" --check-config --config "$config" --check-root "$root"
else
    runuser -u robotd -- /usr/local/bin/robotd --check-config --config /etc/robotd/robotd.yaml
fi
if ! command -v systemd-analyze >/dev/null 2>&1; then
    say "systemd-analyze is not installed: units not verified"
elif [ -n "$root" ] && [ ! -e "$R/usr/lib/systemd/system/sysinit.target" ]; then
    say "units not verified: the staging tree $root has no systemd units of its own to check them against"
else
    # Any message (an unknown key is only a warning to systemd) fails the install.
    findings="$(systemd-analyze verify ${root:+--root="$root"} "$R/etc/systemd/system/robotd.service" \
        "$R/etc/systemd/system/robotd-backup.service" "$R/etc/systemd/system/robotd-backup.timer" 2>&1)" || true
    if [ -n "$findings" ]; then
        echo "$findings" >&2
        echo "install: systemd-analyze verify found problems in the units" >&2
        exit 1
    fi
    say "systemd-analyze verify: units clean"
fi

# 6. On a live system: reload, enable, start.
if [ "$live" -eq 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl restart systemd-journald
    if command -v udevadm >/dev/null 2>&1; then udevadm control --reload && udevadm trigger --subsystem-match=tty; fi
    systemctl enable robotd.service robotd-backup.timer
    if [ "$start" -eq 1 ]; then
        systemctl restart robotd.service
        systemctl start robotd-backup.timer
        say "robotd started: systemctl status robotd; journalctl -u robotd -f"
    fi
    say "create the first supervisor: runuser -u robotd -- robotctl user add NAME --role supervisor --store /var/lib/robotd/scans.sqlite"
elif [ "$live" -eq 1 ]; then
    say "systemd is not running here: units installed, nothing started"
fi
say "done"
