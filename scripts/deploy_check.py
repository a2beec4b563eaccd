"""The deployment, as far as a machine without a running systemd allows:

- scripts/install.sh into a staging root: the user and group, directories and modes,
  the units, the udev rule, the journal's rotation, a configuration and a certificate;
  `systemd-analyze verify` on the installed units (against the host's own units copied
  into the stage), clean with no message at all; `robotd --check-config` accepts the
  installed configuration and refuses broken ones with a reason; a second run keeps
  what is there; bad options are refused with what is allowed;
- the udev rule read by `udevadm test` (in a private mount namespace, so the host's
  rules are untouched), with no error for its file;
- robotd's systemd protocol under the unit's own settings: READY=1, WATCHDOG=1 at least
  twice per WatchdogSec, STOPPING=1, and exit within TimeoutStopSec after SIGTERM;
- `robotctl backup` while a scan is being written (an online backup), verified; the
  retention; a store changed behind the hash chain gives an unverified backup and exit 3.

Usage: python3 scripts/deploy_check.py [BIN_DIR]
"""
import os
import re
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time

import campaign
from campaign import check

ROOT = campaign.ROOT


def install(stage, bins, *options):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts/install.sh"), "--root", stage, "--bin", bins, *options],
                          cwd=ROOT, capture_output=True, text=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def unit_seconds(unit_text, key):
    found = re.search(rf"^{key}=(\d+)s$", unit_text, re.MULTILINE)
    return int(found.group(1)) if found else None


def check_install(bins, directory):
    stage = os.path.join(directory, "stage")
    # The host's own units, so systemd-analyze can resolve the targets ours name.
    os.makedirs(os.path.join(stage, "usr/lib/systemd"))
    shutil.copytree("/lib/systemd/system", os.path.join(stage, "usr/lib/systemd/system"), symlinks=True)
    result = install(stage, bins, "--adapter-serial", "A10K3XQZ", "--robot-id", "RIR-07")
    output = result.stdout + result.stderr
    if not check(result.returncode == 0, f"install.sh into a staging root exits 0 ({result.returncode})"):
        print(output)
        return stage
    check("systemd-analyze verify: units clean" in output, "systemd-analyze verify finds nothing to say about the three units")
    check("robotd.yaml is usable" in output, "robotd --check-config accepts the installed configuration")
    s = lambda p: os.path.join(stage, p.lstrip("/"))
    passwd = open(s("/etc/passwd")).read()
    check(re.search(r"^robotd:x:\d+:\d+:[^:]*:/var/lib/robotd:/usr/sbin/nologin$", passwd, re.MULTILINE) is not None,
          "a system user robotd, home /var/lib/robotd, no login shell")
    check(re.search(r"^dialout:x:\d+:.*robotd", open(s("/etc/group")).read(), re.MULTILINE) is not None,
          "robotd is in dialout (the serial adapter)")
    expected_modes = {"/var/lib/robotd": 0o750, "/var/lib/robotd/reports": 0o750, "/var/lib/robotd/profiles": 0o750,
                      "/var/backups/robotd": 0o750, "/etc/robotd": 0o750, "/etc/robotd/robotd.yaml": 0o640,
                      "/etc/robotd/tls/key.pem": 0o640, "/etc/robotd/tls/cert.pem": 0o644, "/usr/local/bin/robotd": 0o755}
    wrong = {p: oct(mode(s(p))) for p, m in expected_modes.items() if not os.path.exists(s(p)) or mode(s(p)) != m}
    check(not wrong, f"every installed path has its mode (store, reports, backups 750; configuration and TLS key 640){' ' + str(wrong) if wrong else ''}")
    check(os.path.exists(s("/var/lib/robotd/profiles/snt0570-2007.yaml")), "the standard profile is where the configuration names it")
    rule = open(s("/etc/udev/rules.d/60-robotd-rs485.rules")).read()
    check('ATTRS{serial}=="A10K3XQZ"' in rule and 'SYMLINK+="robot-rs485"' in rule, "the udev rule names the adapter A10K3XQZ /dev/robot-rs485")
    check("MaxRetentionSec=" in open(s("/etc/systemd/journald.conf.d/robotd.conf")).read(), "the journal's rotation is configured")
    unit = open(s("/etc/systemd/system/robotd.service")).read()
    check("Type=notify" in unit and unit_seconds(unit, "WatchdogSec") and unit_seconds(unit, "TimeoutStopSec"),
          "robotd.service is Type=notify with a watchdog and a stop timeout")

    config = s("/etc/robotd/robotd.yaml")
    before = open(config).read()
    again = install(stage, bins, "--adapter-serial", "A10K3XQZ", "--robot-id", "RIR-08")
    check(again.returncode == 0 and open(config).read() == before and os.path.exists(config + ".new") and "RIR-08" in open(config + ".new").read(),
          "a second install keeps the configuration and leaves the new template beside it (.new)")
    for options, words in [(["--port", "99999"], "--port must be 1-65535"), (["--adapter-serial", "a b"], "--adapter-serial must be"),
                           (["--robot-id", "x;rm"], "--robot-id must be"), (["--colour", "blue"], "unknown option")]:
        bad = install(os.path.join(directory, "refused"), bins, *options)
        check(bad.returncode == 2 and words in bad.stderr, f"install.sh {' '.join(options)} is refused: {bad.stderr.strip()[:90]}")

    robotd = os.path.join(bins, "robotd")
    key = s("/var/lib/robotd/scans.sqlite.signing-key")
    with open(key, "w") as f:
        f.write("not a key, only its mode matters here\n")
    os.chmod(key, 0o644)
    loose = subprocess.run([robotd, "--check-config", "--config", config, "--check-root", stage], capture_output=True, text=True)
    check(loose.returncode == 2 and "signing key" in loose.stdout and "must be 600" in loose.stdout,
          "check-config refuses a signing key others can read (exit 2, says the mode it must have)")
    os.remove(key)
    broken = os.path.join(directory, "broken.yaml")
    with open(broken, "w") as f:
        f.write(before.replace("  port: /dev/robot-rs485", "  prot: /dev/robot-rs485"))
    typo = subprocess.run([robotd, "--check-config", "--config", broken, "--check-root", stage], capture_output=True, text=True)
    check(typo.returncode == 2 and "prot" in typo.stderr, f"check-config refuses a mistyped key with its place: {typo.stderr.strip()[:100]}")
    return stage


def check_udev(stage):
    rules = os.path.join(stage, "etc/udev/rules.d")
    if shutil.which("udevadm") is None or shutil.which("unshare") is None or os.geteuid() != 0 or not os.path.exists("/sys/class/tty/ptmx"):
        print("skip udevadm test: needs udevadm, unshare, root and /sys/class/tty (the udev rule's syntax is not checked here)")
        return
    result = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind '{rules}' /etc/udev/rules.d && udevadm test --action=add /sys/class/tty/ptmx"],
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    read = "Reading rules file: /etc/udev/rules.d/60-robotd-rs485.rules" in output
    problems = [line for line in output.splitlines() if line.startswith("/etc/udev/rules.d/60-robotd-rs485.rules:")]
    check(read and not problems, f"udevadm test reads the rule with no complaint{': ' + problems[0] if problems else ''}"
          + ("" if read else " (the file was not read: " + output[-300:] + ")"))


def check_notify(bins, directory, stage):
    unit = open(os.path.join(stage, "etc/systemd/system/robotd.service")).read()
    watchdog, stop_timeout = unit_seconds(unit, "WatchdogSec"), unit_seconds(unit, "TimeoutStopSec")
    path = os.path.join(directory, "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(watchdog * 1_000_000))
    log = open(os.path.join(directory, "notify-robotd.log"), "w")
    started = time.time()
    daemon = subprocess.Popen([os.path.join(bins, "robotd"), "--sim", "--port", "0", "--store", os.path.join(directory, "notify.sqlite")],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    messages = []

    def collect(until):
        while time.time() < until:
            try:
                message = receiver.recv(4096).decode()
                messages.append((time.time(), message))
            except socket.timeout:
                if daemon.poll() is not None:
                    return

    collect(started + 3 * watchdog)
    ready = [(t, m) for t, m in messages if m.startswith("READY=1")]
    check(len(ready) == 1 and "control loop running" in ready[0][1] and "command server listening" in ready[0][1],
          f"READY=1 once, {ready[0][0] - started:.2f} s after start, once the loop runs and the server listens" if ready else "READY=1 sent")
    feeds = [t for t, m in messages if m == "WATCHDOG=1"]
    gaps = [b - a for a, b in zip(feeds, feeds[1:])]
    check(len(feeds) >= 5 and max(gaps) <= watchdog / 2 + 0.5,
          f"WATCHDOG=1 {len(feeds)} times in {3 * watchdog} s, largest gap {max(gaps) if gaps else 0:.2f} s (WatchdogSec={watchdog} s)")
    # A control loop that stops ticking is not fed: freeze robotd (its loop with it) past
    # the watchdog's period; nothing may be fed during the freeze or for a stale loop after it.
    daemon.send_signal(signal.SIGSTOP)
    frozen_at = time.time()
    time.sleep(watchdog / 2 + 1)
    daemon.send_signal(signal.SIGCONT)
    resumed_at = time.time()
    collect(resumed_at + watchdog)
    during = [t for t, m in messages if m == "WATCHDOG=1" and frozen_at + 0.05 < t < resumed_at]
    after = [t for t, m in messages if m == "WATCHDOG=1" and t > resumed_at]
    # The first check after the freeze sees a loop that made almost no ticks in its
    # interval and withholds the feed; the next one, a full interval later, feeds again.
    check(not during and after and after[0] - resumed_at > 1.0,
          f"nothing fed while robotd was frozen, nor at the first check after it (a stale loop); fed again "
          f"{after[0] - resumed_at:.2f} s after it resumed" if after else "fed again after the freeze")
    daemon.send_signal(signal.SIGTERM)
    signalled = time.time()
    try:
        code = daemon.wait(timeout=stop_timeout + 5)
    except subprocess.TimeoutExpired:
        daemon.kill()
        code = daemon.wait()
    took = time.time() - signalled
    collect(time.time() + 0.3)
    check(any(m.startswith("STOPPING=1") for _, m in messages) and code == 0 and took < stop_timeout,
          f"SIGTERM: STOPPING=1, exit {code} after {took:.2f} s (TimeoutStopSec={stop_timeout} s)")
    receiver.close()


def scan_in_background(bins, directory, store, number):
    arguments = [os.path.join(bins, "robotd"), "--sim", "--scenario", os.path.join(ROOT, "hil/scenarios/clean-20ft.yaml"), "--scan", number,
                 "--size", "22G1", "--at", "0,0,0", "--profile", os.path.join(ROOT, "profiles/demo.yaml"), "--store", store,
                 "--reports", os.path.join(directory, "reports"), "--no-server", "--exit-when-done", "--sim-time-scale", "20"]
    return subprocess.Popen(arguments, cwd=ROOT, stdout=open(os.path.join(directory, f"scan-{number}.log"), "w"), stderr=subprocess.STDOUT)


def check_backup(bins, directory):
    robotctl = os.path.join(bins, "robotctl")
    store = os.path.join(directory, "backup-test", "scans.sqlite")
    backups = os.path.join(directory, "backups")
    os.makedirs(os.path.dirname(store))
    scan = scan_in_background(bins, directory, store, "CSQU3054383")

    def backup(keep=3):
        return subprocess.run([robotctl, "backup", "--store", store, "--to", backups, "--keep", str(keep)], capture_output=True, text=True)

    deadline = time.time() + 60
    while time.time() < deadline:  # wait until the scan is writing readings
        if os.path.exists(store):
            with sqlite3.connect(store) as db:
                if db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'readings'").fetchone()[0] and \
                        db.execute("SELECT count(*) FROM readings").fetchone()[0] >= 5:
                    break
        time.sleep(0.2)
    during = backup()
    running = scan.poll() is None
    check(during.returncode == 0 and "backup verified" in during.stdout and running,
          f"a backup taken while the scan writes ({'running' if running else 'scan already ended'}) verifies: "
          + (during.stdout.strip().splitlines()[0] if during.stdout.strip() else during.stderr.strip()[:200]))
    scan.wait(timeout=120)
    results = []
    for _ in range(3):
        time.sleep(1.1)  # backups are named to the second
        results.append(backup())
    kept = sorted(n for n in os.listdir(backups) if n.startswith("robotd-"))
    check(all(r.returncode == 0 for r in results) and len(kept) == 3 and "removed old backup" in results[-1].stdout,
          f"four backups with --keep 3 leave the newest 3 ({len(kept)} kept)")
    copy = os.path.join(backups, kept[-1], "scans.sqlite")
    check(os.path.exists(copy + ".public-key") and not os.path.exists(copy + ".signing-key"),
          "a backup holds the public key, never the private signing key")
    with sqlite3.connect(store) as db:  # a change behind the chain's back (the trigger dropped first)
        db.execute("DROP TRIGGER readings_append_only_update")
        db.execute("UPDATE readings SET grossDose = grossDose * 0.5 WHERE seq = (SELECT max(seq) FROM readings WHERE kind = 'point')")
    time.sleep(1.1)
    tampered = backup()
    unverified = [n for n in os.listdir(backups) if n.startswith("unverified-")]
    still = sorted(n for n in os.listdir(backups) if n.startswith("robotd-"))
    check(tampered.returncode == 3 and "PROBLEM" in tampered.stdout and len(unverified) == 1 and still == kept,
          f"a store changed behind its hash chain gives exit 3, the copy kept as {unverified[0] if unverified else '?'}, "
          "and the verified backups are left alone")


def main():
    bins = campaign.bin_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    directory = tempfile.mkdtemp(prefix="deploy-check-")
    stage = check_install(bins, directory)
    check_udev(stage)
    check_notify(bins, directory, stage)
    check_backup(bins, directory)
    return campaign.summary("deployment")


if __name__ == "__main__":
    sys.exit(main())
