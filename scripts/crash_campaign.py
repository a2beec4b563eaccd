#!/usr/bin/env python3
"""Crash consistency: SIGKILL robotd at random moments during a scan, again and again,
and between kills drive the robot somewhere else round the container.

robot-sim runs on its own (as the real firmware would, outliving the controller) at 10x
real time, with a clean 20 ft container (or --scenario). robotd scans it with the demo
profile. Each round: start `robotd --scan`, let it run a random 1-6 s (at least one new
reading), kill it with SIGKILL; check the robot stops by itself (the firmware watchdog).
Then, as an officer driving the robot away would (and as `robotd --sim`, whose simulator
dies with it and starts again from the scenario's start pose, sees it), the simulator is
restarted from a fresh scenario file: the campaign's scenario with another `robot:` start
pose, in turn: beside the far long wall at the stand-off (0.1 m out), the four corners
(0.3 m out from both walls), the door end (at the stand-off), the open yard 6 m beyond
the front end, and once 0.03 m from the near long wall, inside the keep-out margin
robotd adds round the container (footprint + 0.05 m). Then robotd starts WITHOUT --scan
for 3 s and the robot must not move (nobody told it to); that one is stopped, and the
next round's `robotd --scan` resumes the scan from where the robot now stands. After the
kills, one last `robotd --scan --exit-when-done` (from the next placement) finishes it.
`--no-move` keeps the robot where the watchdog stopped it (one simulator throughout).

Per restart it prints where the robot was placed and whether the resumed scan got going
(the store gained readings after the restart), with robotd's warnings when it did not.

Then the store: SQLite integrity_check, our hash chains (`robotctl verify`), and the
readings of every scan against its plan: in the newest survey round (the newest
background's epoch) every point has exactly one whole set (readingsPerPoint readings,
from the plan's profile; a set is epoch*1000 + attempt, attempts from 500 on are marks
for readings taken across a stop and never count), no set holds more than
readingsPerPoint readings, the round's background is complete, no (kind, point, ordinal)
twice. Readings kept but not counted (cut sets, marks, earlier rounds) are counted and
printed as superseded. A long campaign outlives one scan: a restart after a finished
scan starts the next, and every scan is checked. Prints the figures; exits non-zero on
any failure. robotd's log: test-output/crash/robotd.log (a `=== ...` line before each
start); the scenario files written: test-output/crash/scenarios/.

Usage: scripts/crash_campaign.py [KILLS] [path/to/bin] [--no-move] [--scenario FILE]
       (default 5 kills, hil/scenarios/clean-20ft.yaml)
"""
import argparse
import json
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

from campaign import ROOT, bin_dir as find_bin_dir, check, free_port, summary

# ISO 668 external length by the size code's first character (ISO 6346): 2 = 20 ft,
# 4 = 40 ft, L = 45 ft. Every size the simulator knows is 2.438 m wide.
ISO668_LENGTH = {"2": 6.058, "4": 12.192, "L": 13.716}
ISO668_WIDTH = 2.438
KEEP_OUT_MARGIN = 0.05  # what robotd adds round the container's footprint


def truth(port, attempts=1):
    for attempt in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"truth\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            break
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1)
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


# --- The scenario: just enough YAML for hil/scenarios (block mappings, one list of containers).

def scalar(text):
    text = text.split(" #", 1)[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        return float(text)
    except ValueError:
        return text


def indent(line):
    return len(line) - len(line.lstrip(" "))


def meaningful(line):
    stripped = line.strip()
    return stripped != "" and not stripped.startswith("#")


def top_level_block(lines, key):
    """(start, end) line indices of a top-level `key:` block, or None."""
    for i, line in enumerate(lines):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            end = i + 1
            while end < len(lines) and (not meaningful(lines[end]) or indent(lines[end]) > 0):
                end += 1
            # Comments and blank lines just before the next key belong to it.
            while end > i + 1 and not meaningful(lines[end - 1]):
                end -= 1
            return i, end
    return None


def mapping(lines, first, item_indent, stop):
    """Scalars `key: value` at exactly `item_indent` from line `first` up to `stop`."""
    values = {}
    for line in lines[first:stop]:
        if not meaningful(line):
            continue
        at = indent(line) + (2 if line.lstrip().startswith("- ") else 0)
        if at < item_indent:
            break
        found = re.match(r"^\s*(?:- )?([A-Za-z]+)\s*:\s*(.*)$", line)
        if found and at == item_indent and found.group(2).strip():
            values[found.group(1)] = scalar(found.group(2))
    return values


def read_scenario(path):
    """(text, first container {number, type, x, y, headingDegrees}, robot start {x, y, headingDegrees, liftMetres})."""
    text = open(os.path.join(ROOT, path)).read()
    lines = text.split("\n")
    robot = {"x": 0.0, "y": 0.0, "headingDegrees": 0.0, "liftMetres": 1.0}
    block = top_level_block(lines, "robot")
    if block:
        robot.update(mapping(lines, block[0] + 1, 2, block[1]))
    block = top_level_block(lines, "containers")
    assert block, f"{path}: no containers"
    container = None
    for i in range(block[0] + 1, block[1]):
        if lines[i].lstrip().startswith("- "):
            item_indent = indent(lines[i]) + 2
            end = i + 1
            while end < block[1] and not (lines[end].lstrip().startswith("- ") and indent(lines[end]) == item_indent - 2):
                end += 1
            container = {"x": 0.0, "y": 0.0, "headingDegrees": 0.0}
            container.update(mapping(lines, i, item_indent, end))
            break
    assert container and "number" in container and "type" in container, f"{path}: the first container has no number or type"
    return text, container, robot


def with_robot(text, pose):
    """The scenario's text with its `robot:` block replaced by `pose`."""
    lines = text.split("\n")
    block = [f"robot:          # placed by crash_campaign.py: {pose['name']}",
             f"  x: {pose['x']:.4f}", f"  y: {pose['y']:.4f}",
             f"  headingDegrees: {pose['headingDegrees']:.2f}", f"  liftMetres: {pose['liftMetres']:.3f}"]
    found = top_level_block(lines, "robot")
    if found:
        lines[found[0]:found[1]] = block
    else:
        lines = block + lines
    return "\n".join(lines)


class Container:
    """The container's footprint in the yard: `yard(along, across)` as robot-sim and robotd
    place it (x, y: its door-end left corner; across grows to the right seen from the doors)."""

    def __init__(self, spec):
        self.number = str(spec["number"])
        self.type = str(spec["type"])
        assert self.type[:1] in ISO668_LENGTH, f"container type {self.type}: not an ISO 668 size this campaign knows"
        self.length = ISO668_LENGTH[self.type[:1]]
        self.width = ISO668_WIDTH
        self.x, self.y, self.heading = float(spec["x"]), float(spec["y"]), float(spec["headingDegrees"])

    def yard(self, along, across):
        h = math.radians(self.heading)
        return self.x + along * math.cos(h) + across * math.sin(h), self.y + along * math.sin(h) - across * math.cos(h)

    def local(self, x, y):
        h = math.radians(self.heading)
        dx, dy = x - self.x, y - self.y
        return dx * math.cos(h) + dy * math.sin(h), dx * math.sin(h) - dy * math.cos(h)

    def heading_of(self, d_along, d_across):
        """Yard heading (degrees, -180 to 180) of a direction given in the container's frame."""
        h = math.radians(self.heading)
        dx, dy = d_along * math.cos(h) + d_across * math.sin(h), d_along * math.sin(h) - d_across * math.cos(h)
        return math.degrees(math.atan2(dy, dx))

    def clearance(self, x, y):
        """Distance from the footprint (negative inside it)."""
        a, c = self.local(x, y)
        out_a = max(-a, a - self.length, 0.0)
        out_c = max(-c, c - self.width, 0.0)
        if out_a == 0 and out_c == 0:
            return -min(a, self.length - a, c, self.width - c)
        return math.hypot(out_a, out_c)


def placements(container, start, stand_off, lift):
    """The officer's placements, in turn: (name, x, y, heading, once)."""
    L, W, s = container.length, container.width, stand_off
    a0, c0 = container.local(start["x"], start["y"])
    # The far long wall is the one farther from where the robot started.
    far_across, near_across = (W + s, -0.03) if c0 < W / 2 else (-s, W + 0.03)
    far_wall, near_wall = ("right", "left") if c0 < W / 2 else ("left", "right")
    c = 0.3
    spots = [
        (f"far side: beside the {far_wall} long wall, {s:.2f} m out, mid-length", L / 2, far_across, (-1, 0), False),
        ("corner: door end, left, 0.3 m out from both walls", -c, -c, (-1, -1), False),
        (f"0.03 m from the {near_wall} long wall, mid-length (inside the 0.05 m keep-out margin)", L / 2, near_across, (1, 0), True),
        (f"door end: {s:.2f} m out, mid-width, facing the doors", -s, W / 2, (1, 0), False),
        ("open yard: 6 m beyond the front end, on the long axis, facing the container", L + 6, W / 2, (-1, 0), False),
        ("corner: front end, left, 0.3 m out from both walls", L + c, -c, (1, -1), False),
        ("corner: front end, right, 0.3 m out from both walls", L + c, W + c, (1, 1), False),
        ("corner: door end, right, 0.3 m out from both walls", -c, W + c, (-1, 1), False),
    ]
    result = []
    for name, along, across, direction, once in spots:
        x, y = container.yard(along, across)
        result.append({"name": name, "x": x, "y": y, "headingDegrees": container.heading_of(*direction), "liftMetres": lift,
                       "once": once, "clearance": container.clearance(x, y)})
    return result


def placement_order(spots):
    """Every placement once, then round again without the once-only ones."""
    for spot in spots:
        yield spot
    again = [spot for spot in spots if not spot["once"]]
    while True:
        for spot in again:
            yield spot


class Simulator:
    """robot-sim on its own, restartable from another scenario file."""

    def __init__(self, bin_dir, work, link):
        self.bin_dir, self.work, self.link = bin_dir, work, link
        self.process = None
        self.control = None
        self.starts = 0

    def start(self, scenario):
        self.stop()
        if os.path.lexists(self.link):
            os.unlink(self.link)
        self.starts += 1
        self.control = free_port()
        self.process = subprocess.Popen([os.path.join(self.bin_dir, "robot-sim"), "--link", self.link, "--scenario", scenario,
                                         "--time-scale", "10", "--control-port", str(self.control)], cwd=ROOT,
                                        stdout=open(os.path.join(self.work, f"sim-{self.starts}.log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline and not os.path.exists(self.link):
            if self.process.poll() is not None:
                raise RuntimeError(f"robot-sim exited at start: {open(os.path.join(self.work, f'sim-{self.starts}.log')).read()}")
            time.sleep(0.05)
        return truth(self.control, attempts=50)

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def log_excerpt(path, start, end=None, lines=25):
    """robotd's log from byte `start` (to `end`): its warnings, errors and notices, else its tail."""
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read((end - start) if end is not None else -1).decode(errors="replace")
    all_lines = [line for line in text.splitlines() if line.strip()]
    picked = [line for line in all_lines if re.search(r"\b(warning|error|critical|notice)\b", line)]
    return "\n".join((picked or all_lines)[-lines:])


def check_store(db):
    """Every scan against its plan and its reading sets. Returns the figures."""
    figures = {"expected": 0, "lost": 0, "extra": 0, "superseded": 0, "points": 0, "points_one_set": 0, "problems": []}
    scans = db.execute("SELECT id, status, plan FROM scans ORDER BY createdAt").fetchall()
    figures["scans"] = scans
    for scan_id, status, plan_text in scans:
        plan = json.loads(plan_text)
        profile = plan["profile"]
        points = len(plan["points"])
        per_point = profile.get("readingsPerPoint", 1)
        want_background = profile.get("backgroundReadings", 10) * (2 if profile.get("backgroundRepeatAtEnd", True) else 1)
        rows = db.execute("SELECT kind, pointIndex, readingSet FROM readings WHERE scanId = ? ORDER BY seq", (scan_id,)).fetchall()
        epoch = max([s for kind, _, s in rows if kind == "background"], default=0)
        background = sum(1 for kind, _, s in rows if kind == "background" and s == epoch)
        remeasures = sum(1 for kind, _, s in rows if kind == "remeasure" and s // 1000 == epoch)
        sets = {}  # (pointIndex, set) -> readings, every round, marks included
        for kind, index, s in rows:
            if kind == "point":
                sets[(index, s)] = sets.get((index, s), 0) + 1
        counted = background + remeasures
        figures["expected"] += points * per_point + want_background
        figures["points"] += points
        for i in range(points):
            whole = [s for (index, s), n in sets.items()
                     if index == i and s // 1000 == epoch and s % 1000 < 500 and n == per_point]
            if len(whole) == 1:
                figures["points_one_set"] += 1
            elif len(whole) == 0:
                figures["lost"] += per_point
                figures["problems"].append(f"scan {scan_id[:8]} point {i}: no whole set in round {epoch}")
            else:
                figures["extra"] += (len(whole) - 1) * per_point
                figures["problems"].append(f"scan {scan_id[:8]} point {i}: {len(whole)} whole sets in round {epoch} ({sorted(whole)})")
            counted += per_point if whole else 0
        for (index, s), n in sets.items():
            if n > per_point:
                figures["extra"] += n - per_point
                figures["problems"].append(f"scan {scan_id[:8]} point {index} set {s}: {n} readings (readingsPerPoint {per_point})")
        if status == "done":
            figures["lost"] += max(0, want_background - background)
            if background < want_background:
                figures["problems"].append(f"scan {scan_id[:8]}: background of round {epoch} has {background} of {want_background}")
        figures["extra"] += max(0, background - want_background)
        if background > want_background:
            figures["problems"].append(f"scan {scan_id[:8]}: background of round {epoch} has {background} > {want_background}")
        figures["superseded"] += len(rows) - counted
    duplicates = db.execute("SELECT scanId, kind, pointIndex, ordinal, COUNT(*) c FROM readings "
                            "GROUP BY scanId, kind, pointIndex, ordinal HAVING c > 1").fetchall()
    figures["extra"] += len(duplicates)
    figures["problems"] += [f"scan {d[0][:8]} {d[1]} {d[2]} ordinal {d[3]}: stored {d[4]} times" for d in duplicates]
    return figures


def main():
    parser = argparse.ArgumentParser(description="SIGKILL robotd during scans; move the robot between kills.")
    parser.add_argument("kills", nargs="?", type=int, default=5)
    parser.add_argument("bin", nargs="?", default=None, help="folder with robotd, robotctl and robot-sim")
    parser.add_argument("--no-move", action="store_true", help="leave the robot where the watchdog stopped it (one simulator throughout)")
    parser.add_argument("--scenario", default="hil/scenarios/clean-20ft.yaml")
    parser.add_argument("--profile", default="profiles/demo.yaml")
    args = parser.parse_args()
    kills = args.kills
    move = not args.no_move
    bin_dir = find_bin_dir(args.bin)
    rng = random.Random(int(os.environ.get("CRASH_SEED", "7")))
    work = tempfile.mkdtemp(prefix="crash-campaign-")
    store = os.path.join(work, "scans.sqlite")
    link = os.path.join(work, "bus0")
    out = os.path.join(ROOT, "test-output", "crash")
    scenarios = os.path.join(out, "scenarios")
    shutil.rmtree(scenarios, ignore_errors=True)
    os.makedirs(scenarios, exist_ok=True)
    scenario_text, container_spec, start_pose = read_scenario(args.scenario)
    container = Container(container_spec)
    stand_off_match = re.search(r"^standOffMetres:\s*([0-9.]+)", open(os.path.join(ROOT, args.profile)).read(), re.MULTILINE)
    stand_off = float(stand_off_match.group(1)) if stand_off_match else 0.1
    order = placement_order(placements(container, start_pose, stand_off, float(start_pose.get("liftMetres", 1.0))))
    print(f"container {container.number} {container.type}: {container.length} x {container.width} m, door-end left corner at "
          f"({container.x}, {container.y}), heading {container.heading}; keep-out = footprint + {KEEP_OUT_MARGIN} m; "
          f"robot starts at ({start_pose['x']}, {start_pose['y']}); {'moved between kills' if move else 'not moved (--no-move)'}", flush=True)

    sim = Simulator(bin_dir, work, link)
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        # The firmware watchdog runs in simulated time (10x): 5 s there is 0.5 s here.
        f.write(f"bus:\n  port: {link}\n  responseTimeoutMilliseconds: 100\nsafety:\n  watchdogTimeoutMilliseconds: 5000\n"
                f"  watchdogRefreshMilliseconds: 100\nstore: {store}\n")
    at = f"{container.x},{container.y},{container.heading}"
    scan_args = ["--config", config, "--no-server", "--scan", container.number, "--size", container.type, "--at", at,
                 "--profile", args.profile, "--store", store, "--reports", os.path.join(work, "reports")]
    os.makedirs(out, exist_ok=True)
    log_path = os.path.join(out, "robotd.log")
    log = open(log_path, "w")
    moved_on_restart = 0
    not_stopped = 0
    restarts = []  # (number, placement, got going, log start, log end)

    def mark(text):
        log.write(f"=== {text}\n")
        log.flush()

    def place(number):
        """Restart the simulator from a fresh scenario with the next placement; returns its name."""
        spot = next(order)
        path = os.path.join(scenarios, f"restart-{number:03d}.yaml")
        with open(path, "w") as f:
            f.write(with_robot(scenario_text, spot))
        t = sim.start(path)
        where = (f"{spot['name']} at ({spot['x']:.3f}, {spot['y']:.3f}), heading {spot['headingDegrees']:.0f}, "
                 f"{spot['clearance']:.3f} m from the container")
        if abs(t["x"] - spot["x"]) + abs(t["y"] - spot["y"]) > 0.01:
            check(False, f"restart {number}: the simulator put the robot at ({t['x']}, {t['y']}), not where asked")
        mark(f"robot moved to {where} (scenario {os.path.relpath(path, ROOT)})")
        return where

    try:
        sim.start(os.path.join(ROOT, args.scenario))
        placed = f"the scenario's start pose ({start_pose['x']}, {start_pose['y']})"
        for round_number in range(1, kills + 1):
            before = readings(store)
            mark(f"round {round_number}: robotd --scan, robot at {placed}")
            log_start = os.path.getsize(log_path)
            daemon = subprocess.Popen([os.path.join(bin_dir, "robotd")] + scan_args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            # Wait for progress (a new reading), then a random moment more. A scan that
            # stopped, or a robotd that exited, will not make any.
            deadline = time.time() + 60
            while time.time() < deadline and readings(store) <= before and daemon.poll() is None:
                with open(log_path, "rb") as f:
                    f.seek(log_start)
                    if re.search(rb"scan stopped|scan failed", f.read()):
                        break
                time.sleep(0.05)
            got_going = readings(store) > before
            if got_going:
                time.sleep(rng.uniform(0.0, 5.0))
            exited = daemon.poll()
            daemon.kill()
            daemon.wait()
            taken = readings(store)
            restarts.append((round_number, placed, got_going, log_start, os.path.getsize(log_path)))
            # The firmware watchdog stops the robot without its controller.
            stopped = False
            deadline = time.time() + 3
            while time.time() < deadline:
                t = truth(sim.control)
                if abs(t["speed"]) < 0.005 and not t["motionPowerOn"]:
                    stopped = True
                    break
                time.sleep(0.05)
            if not stopped:
                not_stopped += 1
            at_kill = (f"({t['x']:.3f}, {t['y']:.3f}), {container.clearance(t['x'], t['y']):.3f} m from the container, "
                       f"lift {t['liftMetres']:.2f} m")
            # The officer drives the robot elsewhere (the simulator starts again from there).
            if move:
                placed = place(round_number + 1)
            else:
                placed = f"where the watchdog stopped it, {at_kill}"
            # A restart that is not told to scan must not move the robot.
            mark(f"round {round_number}: idle robotd (no --scan)")
            idle = subprocess.Popen([os.path.join(bin_dir, "robotd"), "--config", config, "--no-server"], cwd=ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
            start = truth(sim.control)
            time.sleep(3)
            end = truth(sim.control)
            idle.terminate()
            idle.wait(timeout=60)
            moved = abs(end["x"] - start["x"]) + abs(end["y"] - start["y"]) > 0.002 or abs(end["liftMetres"] - start["liftMetres"]) > 0.002
            moved_on_restart += 1 if moved else 0
            print(f"round {round_number}: robot at {restarts[-1][1]}; the scan {'got going' if got_going else 'DID NOT get going'}"
                  f"{' (robotd exited, status ' + str(exited) + ')' if exited is not None else ''}; killed with {taken} readings stored "
                  f"(+{taken - before}) at {at_kill}; robot {'stopped' if stopped else 'NOT stopped'} by the watchdog; "
                  f"{'moved to ' + placed + '; ' if move else ''}idle restart {'MOVED' if moved else 'did not move'}", flush=True)
        with sqlite3.connect(store) as db:
            unfinished = db.execute("SELECT COUNT(*) FROM scans WHERE status != 'done'").fetchone()[0] > 0
        before = readings(store)
        mark(f"last restart: robotd --scan --exit-when-done, robot at {placed}")
        log_start = os.path.getsize(log_path)
        final = subprocess.Popen([os.path.join(bin_dir, "robotd")] + scan_args + ["--exit-when-done"], cwd=ROOT,
                                 stdout=log, stderr=subprocess.STDOUT)
        try:
            code = final.wait(timeout=600)
        except subprocess.TimeoutExpired:
            final.kill()
            final.wait()
            code = "killed after 600 s"
        with open(log_path, "rb") as f:
            f.seek(log_start)
            final_log = f.read().decode(errors="replace")
        got_going = readings(store) > before or not unfinished
        restarts.append(("last", placed, got_going, log_start, os.path.getsize(log_path)))
        print(f"last restart: robot at {placed}; the scan {'got going' if got_going else 'DID NOT get going'} "
              f"(+{readings(store) - before} readings); robotd exit {code}", flush=True)
        check(code == 0 and "scan done" in final_log, "the last restart completes the scan")
        if unfinished:
            check("resuming the unfinished scan" in final_log, "it resumed the unfinished scan")
    finally:
        sim.stop()
        log.close()

    stuck = [r for r in restarts if not r[2]]
    for number, placed, _, start, end in stuck:
        print(f"--- restart {number}: the scan did not get going with the robot at {placed}; robotd said:")
        print(log_excerpt(log_path, start, end))
    check(not stuck, f"the scan got going after every restart ({len(restarts) - len(stuck)}/{len(restarts)})")
    check(not_stopped == 0, f"the robot stopped by itself after every kill ({kills - not_stopped}/{kills})")
    check(moved_on_restart == 0, f"the robot never moved on a restart it was not told to scan ({moved_on_restart} moved)")
    verify = subprocess.run([os.path.join(bin_dir, "robotctl"), "verify", "--store", store], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    print(verify.stdout.strip())
    check(verify.returncode == 0 and "integrity ok" in verify.stdout, "SQLite integrity_check and the hash chains pass")
    # A long campaign outlives one scan: a restart after a finished scan starts the next one.
    # Every scan must be done with exactly its readings.
    with sqlite3.connect(store) as db:
        figures = check_store(db)
    scans = figures["scans"]
    check(len(scans) >= 1 and all(status == "done" for _, status, _ in scans), f"every scan done ({[(s[0][:8], s[1]) for s in scans]})")
    for problem in figures["problems"][:20]:
        print("  " + problem)
    print(f"crash campaign: {kills} SIGKILLs over {len(scans)} scan(s), {len(restarts)} restarts"
          f"{' from ' + str(len(restarts) - 1) + ' placements' if move else ''}; {figures['expected']} readings expected; "
          f"lost {figures['lost']}, duplicated {figures['extra']}; {figures['points_one_set']}/{figures['points']} points with exactly "
          f"one accepted set; {figures['superseded']} readings superseded (cut sets, marks, earlier rounds)")
    check(figures["points_one_set"] == figures["points"], "every point of every scan has exactly one accepted reading set")
    check(figures["lost"] == 0 and figures["extra"] == 0, "no reading lost or duplicated")
    if not failures_so_far():
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"(store and simulator logs kept in {work})")
    return summary("crash")


def failures_so_far():
    import campaign
    return bool(campaign.failures)


if __name__ == "__main__":
    sys.exit(main())
