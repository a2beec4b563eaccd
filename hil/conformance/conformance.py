#!/usr/bin/env python3
"""Firmware conformance kit, protocol 1.1: what a firmware vendor runs before delivery.

    python3 hil/conformance/conformance.py --rig RIGFILE [--build DIR] [--only ID,ID]
                                            [--json OUT] [--quick] [--expect-deviations]

Checks every behaviour rule of `firmware-protocol/README.md` that can be checked over
the wire (IDs U2.1 ... Q9.4, as in the README) against the four units (1 safety,
2 chassis, 3 lift, 4 detector). The master is pymodbus only, independent of the
controller's Swift stack; addresses and field layouts come from
`firmware-protocol/register-map.json`.

Rig files are the HIL rig files (`hil/rigs/*.yaml`):
  kind: simulator   the kit starts BUILD/robot-sim on a pty (RTU) with a control socket
                    (`deviant: [flag, ...]` or `deviant: all` brings back old departures)
  kind: hardware    bus.port (serial, 8N1 at bus.baud) or bus.tcp (a Modbus TCP gateway);
                    `control: HOST:PORT` names a stimulus controller speaking the
                    simulator's control-socket line protocol (e-stop, bumper, limit
                    switch, power cycle). Without it, rules that need a physical action
                    are SKIP ("needs rig action ...").

One line per rule: PASS|FAIL|SKIP  ID  §N  text  [-- detail], then a summary. Exit 0
only when nothing failed (with --expect-deviations: only when every deviation the rig
lists makes its rule fail).

This file is the runner (command line, results, summary); the kit's parts, the rules among
them, are in kit/ beside it (kit/__init__.py lists them).
"""
import argparse
import json
import logging
import os
import sys
import time
import traceback

from kit import RULES
from kit.common import ROOT, Fail, MapMissing, NoReply, Skip
from kit.helpers import Kit
from kit.registermap import RegisterMap
from kit.rig import SimulatorProcess, Stimulus, load_rig, resolve_serial
from kit.wire import Link

# Each simulator `--deviant` flag brings back one old departure from the spec; the rule
# that must then FAIL.
DEVIATIONS = {
    "enableWithSetpoint": "D5.3",
    "exceptionSideEffects": "F3.6",
    "haltInstant": "D5.7",
    "disableCoasts": "D5.2",
    "shortWayTurn": "D5.11",
    "quickStopIgnored": "D5.1",
    "faultResetWithCause": "D5.9",
    "noLimitFault": "L6.2",
    "resetWhileExpired": "W7.4",
    "noBootInterlock": "W7.5",
    "invalidModeStored": "D5.13",
    "poseSurvivesReboot": "Q9.4",
    "noBootingPhase": "F3.9",
    "setpointAckSticky": "D5.5",
    "idleEdgeFreezes": "D5.8",
    "undefinedBitsAccepted": "F3.4",
    "splitFieldAccepted": "F3.3",
    "fault16WhileHvOff": "R8.5",
    "homingEndsAtSwitch": "L6.3",
    "protectiveStopNotLatched": "H9.3",
}

# What a person at a hardware rig without a stimulus controller would have to do.
RIG_ACTIONS = {
    "reboot": "power-cycle the units",
    "estop": "press and release the e-stop button",
    "bumper": "press and release a bumper",
    "limitSwitch": "close and open the lift's upper limit switch",
    "detectorOverload": "put the probe in a field above its range",
    "obstacle": "put the test piece in front of the chassis' protective-field scanner and take it away",
    "fieldScannerFault": "fault the protective-field scanner (cover its window) and clear it",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Firmware conformance kit (protocol 1.1 rules).")
    ap.add_argument("--rig", help="rig file (hil/rigs/*.yaml)")
    ap.add_argument("--build", default=os.path.join(ROOT, ".build", "debug"), help="folder holding robot-sim")
    ap.add_argument("--only", help="comma-separated rule IDs")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--quick", action="store_true", help="skip the slow rules (R8.5) and the lift's long travels")
    ap.add_argument("--expect-deviations", action="store_true",
                    help="for a rig with deviant: pass only if every listed deviation's rule fails")
    ap.add_argument("--list", action="store_true", help="list the rules and exit")
    ap.add_argument("--verbose", action="store_true", help="show each rule's time")
    args = ap.parse_args(argv)

    if args.list:
        for r in RULES:
            print(f"{r.id:<6}{r.section:<4}{r.text}")
        return 0
    if not args.rig:
        ap.error("--rig RIGFILE is required")
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL + 1)
    logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL + 1)
    rig = load_rig(args.rig, DEVIATIONS)
    expected = []
    if args.expect_deviations:
        if not rig.get("deviant"):
            print("--expect-deviations needs a simulator rig with deviant: [...]", file=sys.stderr)
            return 2
        expected = list(DEVIATIONS) if "all" in rig["deviant"] else rig["deviant"]
    selected = RULES
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        known = {r.id for r in RULES}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            print(f"unknown rule(s) {', '.join(unknown)}; --list shows them", file=sys.stderr)
            return 2
        selected = [r for r in RULES if r.id in wanted]

    regmap = RegisterMap()
    sim = None
    bus = rig.get("bus") or {}
    # The rig's response timeout is the controller's; the kit waits longer (it judges
    # behaviour, not timing) so that a busy test host does not lose replies.
    timeout = max(0.5, (bus.get("responseTimeoutMilliseconds") or 100) / 1000 * 3)
    started = time.monotonic()
    if rig["kind"] == "simulator":
        sim = SimulatorProcess(args.build, rig)
        link = Link(serial_port=sim.link, timeout=timeout)
        control = sim.control
    else:
        if bus.get("port"):
            link = Link(serial_port=resolve_serial(bus["port"]), baud=bus.get("baud") or 115200, timeout=timeout)
        else:
            link = Link(tcp=bus["tcp"], timeout=timeout)
        control = rig.get("control")
    stim = Stimulus(control)
    results = []
    kit = None
    try:
        link.connect()
        kit = Kit(rig, link, stim, args, regmap)
        print(f"conformance: rig '{rig.get('name', args.rig)}' ({rig['kind']}, {link.transport} {link.where}"
              f"{', control ' + control if control else ', no stimulus control'}), {len(selected)} rule(s)")
        dead = None
        dead_setups = 0
        for r in selected:
            t0 = time.monotonic()
            if dead:
                result, detail = "FAIL", f"not run: {dead}"
            else:
                result, detail = run_rule(kit, r, args)
                if sim and sim.proc.poll() is not None:
                    crash = [l for l in sim.lines if "error" in l.lower() or "crashed" in l.lower()][:2]
                    dead = f"robot-sim exited (code {sim.proc.returncode}) during {r.id}" + \
                        (f": {' / '.join(crash)}" if crash else "")
                    detail = detail + f" [{dead}]" if detail else dead
                    result = "FAIL"
                dead_setups = dead_setups + 1 if result == "FAIL" and detail.startswith("setup:") \
                    and ("not ready" in detail or "no reply" in detail) else 0
                if dead_setups >= 3:
                    dead = f"no unit answers since {r.id}"
            results.append({"rule": r.id, "section": r.section, "result": result, "detail": detail,
                            "seconds": round(time.monotonic() - t0, 2)})
            line = f"{result:<4}  {r.id:<5}  {r.section:<3}  {r.text}"
            if detail and result != "PASS":
                line += f"  -- {detail}"
            if args.verbose:
                line += f"  [{time.monotonic() - t0:.1f} s]"
            print(line, flush=True)
    finally:
        if kit:
            kit.shutdown()
        stim.close()
        link.close()
        if sim:
            sim.stop()
    counts = {x: sum(1 for r in results if r["result"] == x) for x in ("PASS", "FAIL", "SKIP")}
    took = time.monotonic() - started
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped of {len(results)} rules ({took:.0f} s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([{k: r[k] for k in ("rule", "section", "result", "detail")} for r in results], fh, indent=1)
    if args.expect_deviations:
        by_rule = {r["rule"]: r["result"] for r in results}
        missed = 0
        for flag in expected:
            rid = DEVIATIONS[flag]
            caught = by_rule.get(rid) == "FAIL"
            missed += not caught
            print(f"{'CAUGHT' if caught else 'MISSED'} {flag} -> {rid}")
        print(f"deviations: {len(expected) - missed} caught, {missed} missed of {len(expected)}")
        return 1 if missed else 0
    return 1 if counts["FAIL"] else 0


def run_rule(kit, r, args):
    if args.quick and r.slow:
        return "SKIP", "--quick"
    if r.transport and r.transport != kit.link.transport:
        return "SKIP", f"applies to {r.transport} links only"
    for need in r.needs:
        if not kit.stim.available:
            return "SKIP", f"needs rig action: {RIG_ACTIONS[need]} (no stimulus control in the rig)"
    try:
        kit.baseline()
    except Fail as e:
        return "FAIL", f"setup: {e}"
    except NoReply as e:
        return "FAIL", f"setup: {e}"
    except Skip as e:
        return "SKIP", str(e)
    try:
        r.fn(kit)
        return "PASS", ""
    except Fail as e:
        return "FAIL", str(e)
    except Skip as e:
        return "SKIP", str(e)
    except MapMissing as e:
        return "SKIP", str(e)
    except NoReply as e:
        return "FAIL", str(e)
    except Exception as e:
        traceback.print_exc()
        return "FAIL", f"kit error: {type(e).__name__}: {e}"
    finally:
        kit.keepalive.pause()
        try:
            kit.stim.release_all()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
