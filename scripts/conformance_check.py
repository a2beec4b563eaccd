#!/usr/bin/env python3
"""The firmware conformance kit (hil/conformance/conformance.py) run three ways against
our simulator, for the test command:

1. the built-in simulator rig (hil/rigs/simulator.yaml, RTU over a pty): every rule must
   PASS; a SKIP is allowed only for a rule that a serial rig cannot check (U2.3, the
   gateway's answer for an absent unit);
2. a *hardware* rig file pointing at a simulator we start ourselves, over Modbus TCP
   with its control socket as the rig's stimulus controller: the kit runs unchanged, as
   a vendor would run it against a gateway; every rule must PASS (U2.1, RS-485 silence,
   may SKIP on TCP);
3. a simulator rig with every `deviant` flag and --expect-deviations: each flag must be
   CAUGHT (its rule FAILs), which shows that the kit can fail.

Prints each stage's summary and time; exits non-zero on any failure.
Usage: conformance_check.py BUILD_DIR   (the folder holding robot-sim)
"""
import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT = os.path.join(ROOT, "hil", "conformance", "conformance.py")
BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug")
STAGE_LIMIT = 400

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(KIT))
from conformance import DEVIATIONS  # noqa: E402


def run_kit(rig, extra, tmp):
    out_json = os.path.join(tmp, "results.json")
    cmd = [sys.executable, KIT, "--rig", rig, "--build", BUILD, "--json", out_json] + extra
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=STAGE_LIMIT)
        output, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        output += f"\n(the kit did not finish within {STAGE_LIMIT} s)"
        rc = -1
    took = time.monotonic() - started
    results = []
    if os.path.exists(out_json):
        with open(out_json) as fh:
            results = json.load(fh)
    return rc, output, results, took


def summary_line(output):
    lines = [l for l in output.splitlines() if re.match(r"\d+ passed, \d+ failed, \d+ skipped", l)]
    return lines[-1] if lines else "(no summary)"


def stage_conformant(name, rig, allowed_skips, tmp):
    """Runs the kit on `rig`; returns (ok, the text to print)."""
    rc, output, results, took = run_kit(rig, [], tmp)
    problems = []
    if rc != 0:
        problems.append(f"the kit exited {rc}")
    for r in results:
        if r["result"] == "FAIL":
            problems.append(f"FAIL {r['rule']}: {r['detail']}")
        elif r["result"] == "SKIP" and r["rule"] not in allowed_skips:
            problems.append(f"SKIP {r['rule']} is not allowed here: {r['detail']}")
    if not results:
        problems.append("no results")
    return not problems, report(name, summary_line(output), took, problems, output)


def report(name, summary, took, problems, output):
    lines = [f"== {name}: {summary}; {took:.0f} s"]
    if problems:
        lines += [f"   {p}" for p in problems]
        lines.append("   --- kit output ---")
        lines += ["   " + line for line in output.splitlines()]
    return "\n".join(lines)


def start_simulator(scenario, tmp):
    link = os.path.join(tmp, "bus0")
    log_path = os.path.join(tmp, "robot-sim.log")
    log = open(log_path, "w")
    proc = subprocess.Popen([os.path.join(BUILD, "robot-sim"), "--scenario", os.path.join(ROOT, scenario), "--link", link,
                             "--tcp-port", "0", "--control-port", "0"], stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.log_path = log_path
    tcp = control = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and control is None and proc.poll() is None:
        time.sleep(0.1)
        text = open(log_path).read()
        m = re.search(r"Modbus TCP on ([\d.]+:\d+)", text)
        tcp = m.group(1) if m else None
        m = re.search(r"control socket on ([\d.]+:\d+)", text)
        control = m.group(1) if m else None
    if tcp is None or control is None:
        stop(proc)
        raise SystemExit("robot-sim did not start: " + open(log_path).read())
    return proc, tcp, control


def crash_report(proc):
    """What a simulator that died on its own printed about it."""
    if proc.poll() is None:
        return None
    lines = open(proc.log_path).read().splitlines()
    fatal = [l.strip() for l in lines if "Fatal error" in l]
    frames = [re.sub(r"^.*? in robot-sim at ", "at ", l.strip()) for l in lines
              if re.search(r"in robot-sim at .*Sources/RobotSimulator/", l) and ".start()" not in l]
    return f"robot-sim exited with code {proc.returncode}: " + " / ".join(fatal[:1] + frames[:1])


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stage_simulator_rig(tmp):
    """1. The built-in simulator rig over RTU."""
    return stage_conformant("1. simulator rig (RTU on a pty)", os.path.join(ROOT, "hil", "rigs", "simulator.yaml"), {"U2.3"}, tmp)


def stage_tcp_gateway(tmp):
    """2. A hardware rig over Modbus TCP, with the control socket as its stimulus controller."""
    proc, tcp, control = start_simulator("hil/scenarios/clean-20ft.yaml", tmp)
    try:
        rig = os.path.join(tmp, "tcp-gateway.yaml")
        with open(rig, "w") as fh:
            fh.write("name: simulator behind a Modbus TCP 'gateway' (conformance check)\n"
                     "kind: hardware\n"
                     f"bus:\n  tcp: {tcp}\n  responseTimeoutMilliseconds: 200\n"
                     f"control: {control}\n")
        ok, text = stage_conformant("2. hardware rig over Modbus TCP with a stimulus controller", rig, {"U2.1"}, tmp)
        crash = crash_report(proc)
        if crash:
            text += f"\n   the simulator behind the 'gateway' died during stage 2: {crash}"
            ok = False
        return ok, text
    finally:
        stop(proc)


def stage_deviations(tmp):
    """3. Every deviation must be caught."""
    rig = os.path.join(tmp, "deviant.yaml")
    with open(rig, "w") as fh:
        fh.write("name: simulator with every deviation (conformance check)\n"
                 "kind: simulator\n"
                 "scenario: hil/scenarios/clean-20ft.yaml\n"
                 f"deviant: [{', '.join(DEVIATIONS)}]\n")
    rc, output, results, took = run_kit(rig, ["--expect-deviations"], tmp)
    caught = re.findall(r"^CAUGHT (\S+) -> (\S+)", output, re.M)
    missed = re.findall(r"^MISSED (\S+) -> (\S+)", output, re.M)
    problems = []
    if rc != 0:
        problems.append(f"the kit exited {rc}")
    problems += [f"MISSED {flag} -> {rule}" for flag, rule in missed]
    if len(caught) != len(DEVIATIONS):
        problems.append(f"{len(caught)} of {len(DEVIATIONS)} deviations caught")
    return not problems, report("3. simulator with every deviation (--expect-deviations)",
                                f"{summary_line(output)}; {len(caught)} of {len(DEVIATIONS)} deviations caught", took, problems, output)


def main():
    if not os.path.exists(os.path.join(BUILD, "robot-sim")):
        print(f"no robot-sim in {BUILD}", file=sys.stderr)
        return 2
    started = time.monotonic()
    # The three stages run at once, each against its own simulator: the kit mostly waits
    # for motion in real time, so together they take about as long as the longest alone.
    stages = [stage_simulator_rig, stage_tcp_gateway, stage_deviations]
    with tempfile.TemporaryDirectory(prefix="conformance-check-") as tmp:
        dirs = []
        for i in range(len(stages)):
            d = os.path.join(tmp, f"stage{i + 1}")
            os.makedirs(d)
            dirs.append(d)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(stages)) as pool:
            outcomes = list(pool.map(lambda pair: pair[0](pair[1]), zip(stages, dirs)))
    ok = all(o for o, _ in outcomes)
    for _, text in outcomes:
        print(text)
    print(f"conformance check: {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
