#!/usr/bin/env python3
"""Crash consistency: SIGKILL robotd at random moments during a scan, again and again.

robot-sim runs on its own (as the real firmware would, outliving the controller) at 10x
real time, with a clean 20 ft container. robotd scans it with the demo profile. Each
round: start `robotd --scan`, let it run a random 1-6 s (at least one new reading), kill
it with SIGKILL; check the robot stops by itself (the firmware watchdog); start robotd
WITHOUT --scan for 3 s and check the robot does not move (nobody told it to); stop that
one. After the kills, one last `robotd --scan --exit-when-done` finishes the scan.

Then the store: SQLite integrity_check, our hash chains (`robotctl verify`), and every
point's readings present exactly once, the background complete. A long campaign
outlives one scan: a restart after a finished scan starts the next, and every scan is
checked. Prints the figures; exits non-zero on any failure.

Usage: scripts/crash_campaign.py [KILLS] [path/to/bin]     (default 5 kills)
"""
import json
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from campaign import ROOT, bin_dir as find_bin_dir, check, free_port, summary


def truth(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"truth\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    text = data.decode().strip()
    assert text.startswith("ok "), text
    return json.loads(text[3:])


def readings(store):
    if not os.path.exists(store):
        return 0
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    except sqlite3.Error:
        return 0


def main():
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    bin_dir = find_bin_dir(sys.argv[2] if len(sys.argv) > 2 else None)
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    work = tempfile.mkdtemp(prefix="crash-campaign-")
    store = os.path.join(work, "scans.sqlite")
    link = os.path.join(work, "bus0")
    control = free_port()
    sim = subprocess.Popen([os.path.join(bin_dir, "robot-sim"), "--link", link, "--scenario", "hil/scenarios/clean-20ft.yaml",
                            "--time-scale", "10", "--control-port", str(control)], cwd=ROOT,
                           stdout=open(os.path.join(work, "sim.log"), "w"), stderr=subprocess.STDOUT)
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        # The firmware watchdog runs in simulated time (10x): 5 s there is 0.5 s here.
        f.write(f"bus:\n  port: {link}\n  responseTimeoutMilliseconds: 100\nsafety:\n  watchdogTimeoutMilliseconds: 5000\n"
                f"  watchdogRefreshMilliseconds: 100\nstore: {store}\n")
    scan_args = ["--config", config, "--no-server", "--scan", "CSQU3054383", "--size", "22G1", "--profile", "profiles/demo.yaml",
                 "--store", store, "--reports", os.path.join(work, "reports")]
    out = os.path.join(ROOT, "test-output", "crash")
    os.makedirs(out, exist_ok=True)
    log = open(os.path.join(out, "robotd.log"), "w")
    moved_on_restart = 0
    not_stopped = 0
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(link):
            time.sleep(0.05)
        for round_number in range(1, kills + 1):
            before = readings(store)
            daemon = subprocess.Popen([os.path.join(bin_dir, "robotd")] + scan_args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            # Wait for progress (a new reading), then a random moment more.
            deadline = time.time() + 60
            while time.time() < deadline and readings(store) <= before:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 5.0))
            daemon.kill()
            daemon.wait()
            taken = readings(store)
            # The firmware watchdog stops the robot without its controller.
            stopped = False
            deadline = time.time() + 3
            while time.time() < deadline:
                t = truth(control)
                if abs(t["speed"]) < 0.005 and not t["motionPowerOn"]:
                    stopped = True
                    break
                time.sleep(0.05)
            if not stopped:
                not_stopped += 1
            # A restart that is not told to scan must not move the robot.
            idle = subprocess.Popen([os.path.join(bin_dir, "robotd"), "--config", config, "--no-server"], cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
            start = truth(control)
            time.sleep(3)
            end = truth(control)
            idle.terminate()
            idle.wait(timeout=60)
            moved = abs(end["x"] - start["x"]) + abs(end["y"] - start["y"]) > 0.002 or abs(end["liftMetres"] - start["liftMetres"]) > 0.002
            moved_on_restart += 1 if moved else 0
            print(f"round {round_number}: killed with {taken} readings stored (+{taken - before}); "
                  f"robot {'stopped' if stopped else 'NOT stopped'} by the watchdog; idle restart {'MOVED' if moved else 'did not move'}", flush=True)
        with sqlite3.connect(store) as db:
            unfinished = db.execute("SELECT COUNT(*) FROM scans WHERE status != 'done'").fetchone()[0] > 0
        final = subprocess.run([os.path.join(bin_dir, "robotd")] + scan_args + ["--exit-when-done"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        log.write(final.stdout)
        check(final.returncode == 0 and "scan done" in final.stdout, "the last restart completes the scan")
        if unfinished:
            check("resuming the unfinished scan" in final.stdout, "it resumed the unfinished scan")
    finally:
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
        log.close()

    check(not_stopped == 0, f"the robot stopped by itself after every kill ({kills - not_stopped}/{kills})")
    check(moved_on_restart == 0, f"the robot never moved on a restart it was not told to scan ({moved_on_restart} moved)")
    verify = subprocess.run([os.path.join(bin_dir, "robotctl"), "verify", "--store", store], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(verify.stdout.strip())
    check(verify.returncode == 0 and "integrity ok" in verify.stdout, "SQLite integrity_check and the hash chains pass")
    # A long campaign outlives one scan: a restart after a finished scan starts the next one.
    # Every scan must be done with exactly its readings.
    lost = extra = expected = 0
    with sqlite3.connect(store) as db:
        scans = db.execute("SELECT id, status, plan FROM scans ORDER BY createdAt").fetchall()
        check(len(scans) >= 1 and all(status == "done" for _, status, _ in scans),
              f"every scan done ({[(s[0][:8], s[1]) for s in scans]})")
        for scan_id, _, plan_text in scans:
            plan = json.loads(plan_text)
            profile = plan["profile"]
            points = len(plan["points"])
            per_point = dict(db.execute("SELECT pointIndex, COUNT(*) FROM readings WHERE scanId = ? AND kind = 'point' GROUP BY pointIndex",
                                        (scan_id,)).fetchall())
            background = db.execute("SELECT COUNT(*) FROM readings WHERE scanId = ? AND kind = 'background'", (scan_id,)).fetchone()[0]
            want_per_point = profile.get("readingsPerPoint", 1)
            want_background = profile.get("backgroundReadings", 10) * (2 if profile.get("backgroundRepeatAtEnd", True) else 1)
            expected += points * want_per_point + want_background
            lost += sum(max(0, want_per_point - per_point.get(i, 0)) for i in range(points)) + max(0, want_background - background)
            extra += sum(max(0, c - want_per_point) for c in per_point.values()) + max(0, background - want_background)
        extra += db.execute("SELECT COUNT(*) FROM (SELECT scanId, kind, pointIndex, ordinal, COUNT(*) c FROM readings "
                            "GROUP BY scanId, kind, pointIndex, ordinal HAVING c > 1)").fetchone()[0]
    print(f"crash campaign: {kills} SIGKILLs over {len(scans)} scan(s); {expected} readings expected; lost {lost}, duplicated {extra}")
    check(lost == 0 and extra == 0, "no reading lost or duplicated")
    shutil.rmtree(work, ignore_errors=True)
    return summary("crash")


if __name__ == "__main__":
    sys.exit(main())
