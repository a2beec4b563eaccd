"""The rules of §5 Drives (firmware-protocol/README.md)."""
import time

from .cia402 import (DISABLE_VOLTAGE, ENABLE_OP, FAULT, FAULT_RESET, HALT, NEW_SETPOINT, OE, QSA, QUICK_STOP, RTSO,
                     SHUTDOWN, SO, SOD, SWITCH_ON, SW_SETPOINT_ACK, SW_TARGET_REACHED, cia_state)
from .common import check
from .helpers import wrap_cdeg
from .registry import rule


WALK = [  # (from, command, to)
    (SOD, SHUTDOWN, RTSO), (SOD, SWITCH_ON, SOD), (SOD, ENABLE_OP, SOD), (SOD, QUICK_STOP, SOD),
    (RTSO, SWITCH_ON, SO), (RTSO, ENABLE_OP, SO), (RTSO, DISABLE_VOLTAGE, SOD), (RTSO, QUICK_STOP, SOD),
    (RTSO, SHUTDOWN, RTSO),
    (SO, ENABLE_OP, OE), (SO, SHUTDOWN, RTSO), (SO, DISABLE_VOLTAGE, SOD), (SO, QUICK_STOP, SOD), (SO, SWITCH_ON, SO),
    (OE, SWITCH_ON, SO), (OE, SHUTDOWN, RTSO), (OE, DISABLE_VOLTAGE, SOD), (OE, ENABLE_OP, OE),
]


def name_cw(w):
    return {SHUTDOWN: "shutdown", SWITCH_ON: "switch on", ENABLE_OP: "enable operation",
            DISABLE_VOLTAGE: "disable voltage", QUICK_STOP: "quick stop"}.get(w, f"0x{w:04X}")


@rule("D5.1", "one transition per write, from the CiA 402 table; other commands change nothing")
def d5_1(k):
    for dev in ("chassis", "lift"):
        for frm, word, to in WALK:
            k.to_state(dev, frm)
            code = k.cw(dev, word)
            check(code is None, f"{dev}: {name_cw(word)} in {frm} gave exception {code}")
            got = k.state(dev)
            check(got == to, f"{dev}: {name_cw(word)} in {frm} -> {got}, expected {to}")
        # Ready to switch on + enable operation: one step, a second write enables.
        k.to_state(dev, RTSO)
        k.step(dev, ENABLE_OP, SO, "enable operation from ready to switch on")
        k.step(dev, ENABLE_OP, OE, "the second enable operation")
        # Quick stop at standstill: quick stop active, then switch on disabled.
        k.cw(dev, QUICK_STOP)
        got = k.state(dev)
        check(got in (QSA, SOD), f"{dev}: quick stop in operation enabled -> {got}")
        s = k.wait_for(lambda: k.state(dev) == SOD, 2.0)
        check(s, f"{dev}: quick stop active at standstill did not become switch on disabled within 2 s")
        # Motion power lost.
        k.enable(dev)
        k.write_field("safety", "command", "outputs", k.outputs_bit("softwareEstop"))
        got = k.state(dev)
        k.write_field("safety", "command", "outputs", 0)
        check(got == SOD, f"{dev}: motion power lost in operation enabled -> {got}, expected {SOD}")
        k.power_up()
    # Quick stop while moving: quick stop active until standstill, then switch on disabled.
    k.chassis_move(-2000, speed=300)
    k.wait_speed("chassis", 250)
    k.cw("chassis", QUICK_STOP)
    s = k.read("chassis")
    check(cia_state(s["statusword"]) == QSA and s["velocity"] != 0,
          f"chassis: quick stop at speed -> {cia_state(s['statusword'])} at {s['velocity']} mm/s, expected quick stop active while moving")
    s = k.wait_still("chassis", 3)
    check(s is not None, "chassis: no standstill within 3 s of a quick stop")
    ok = k.wait_for(lambda: k.state("chassis") == SOD, 1.0)
    check(ok, f"chassis: {k.state('chassis')} at standstill after a quick stop, expected {SOD}")
    k.chassis_move(-2000, speed=300)
    k.wait_speed("chassis", 250)
    k.cw("chassis", QUICK_STOP)
    k.cw("chassis", DISABLE_VOLTAGE)
    got = k.state("chassis")
    check(got == SOD, f"chassis: disable voltage in quick stop active -> {got}, expected {SOD}")


def ramp(samples, v0):
    """Samples strictly between standstill and the speed at the command."""
    return [s for s in samples if 5 < abs(s["velocity"]) < abs(v0) - 5]


@rule("D5.2", "leaving operation enabled decelerates to standstill; velocity shows it; re-enable never moves")
def d5_2(k):
    # Lift, moving up: disable operation (0x0007).
    k.ensure_lift_homed()
    h = k.read("lift")["height"]
    k.enable("lift")
    code = k.setpoint("lift", {"mode": 1, "targetHeight": min(2800, h + 1500), "speed": 200})
    check(code is None, f"lift: move up refused with exception {code}")
    s0 = k.wait_speed("lift", 180)
    k.cw("lift", SWITCH_ON)
    samples = k.sample("lift", 2.0, 0.02, until=lambda s: s["velocity"] == 0 and not s["flags.moving"])
    mid = ramp(samples, s0["velocity"])
    end = samples[-1]
    check(len(mid) >= 2, f"lift: velocity {s0['velocity']} -> {[s['velocity'] for s in samples[:6]]} after 0x0007: "
                         f"no deceleration ramp (stopped at once or coasting)")
    check(end["velocity"] == 0 and not end["flags.moving"],
          f"lift: still moving {end['t']:.1f} s after 0x0007 (velocity {end['velocity']})")
    check(0.25 <= end["t"] <= 1.5, f"lift: took {end['t']:.2f} s to stop from {s0['velocity']} mm/s (0.4 m/s2: 0.5 s)")
    check(end["height"] > s0["height"] + 10, f"lift: height {s0['height']} -> {end['height']} during the stop (no ramp)")
    check(cia_state(end["statusword"]) == SO, f"lift: {cia_state(end['statusword'])} after 0x0007")
    k.step("lift", ENABLE_OP, OE, "re-enable")
    still = k.sample("lift", 1.0, 0.05)
    check(all(abs(s["height"] - end["height"]) <= 1 and s["velocity"] == 0 for s in still),
          f"lift: moved after re-enable: heights {[s['height'] for s in still[::5]]}")
    # Chassis at 0.4 m/s: shutdown (0x0006).
    k.chassis_move(-3000, speed=400)
    c0 = k.wait_speed("chassis", 380)
    k.cw("chassis", SHUTDOWN)
    samples = k.sample("chassis", 2.0, 0.02, until=lambda s: s["velocity"] == 0 and not s["flags.moving"])
    mid = ramp(samples, c0["velocity"])
    end = samples[-1]
    check(len(mid) >= 2, f"chassis: velocity {c0['velocity']} -> {[s['velocity'] for s in samples[:6]]} after 0x0006: no ramp")
    check(end["velocity"] == 0, f"chassis: still moving {end['t']:.1f} s after 0x0006")
    check(0.2 <= end["t"] <= 1.2, f"chassis: took {end['t']:.2f} s to stop from {c0['velocity']} mm/s (1.0 m/s2: 0.4 s)")
    check(cia_state(end["statusword"]) == RTSO, f"chassis: {cia_state(end['statusword'])} after 0x0006")
    k.step("chassis", SWITCH_ON, SO)
    k.step("chassis", ENABLE_OP, OE)
    still = k.sample("chassis", 1.0, 0.05)
    check(all(s["positionX"] == end["positionX"] and s["velocity"] == 0 for s in still),
          "chassis: moved after re-enable (old target resumed)")


@rule("D5.3", "a set-point edge only in and staying in operation enabled; 0x001F from switched on is exception 4")
def d5_3(k):
    k.to_state("chassis", SO)
    code = k.write_fields("chassis", "command", {"controlword": SWITCH_ON, "mode": 1, "targetA": -300, "speed": 300})
    check(code is None, f"storing a set-point in switched on: exception {code}")
    s0 = k.read("chassis")
    code = k.cw("chassis", ENABLE_OP | NEW_SETPOINT)
    check(code == 4, f"0x001F from switched on: {'accepted' if code is None else f'exception {code}'}, expected exception 4")
    k.expect_state("chassis", SO, "after the refused 0x001F")
    time.sleep(1.0)
    s1 = k.read("chassis")
    check(s1["positionX"] == s0["positionX"] and s1["positionY"] == s0["positionY"] and s1["velocity"] == 0,
          f"chassis moved after the refused 0x001F ({s0['positionX']} -> {s1['positionX']})")
    # An edge that leaves operation enabled (0x0017) and one in ready to switch on (0x0016).
    k.enable("chassis")
    code = k.cw("chassis", SWITCH_ON | NEW_SETPOINT)
    check(code == 4, f"0x0017 (disable operation + edge): exception {code}, expected 4")
    k.expect_state("chassis", OE, "after the refused 0x0017")
    k.to_state("chassis", RTSO)
    code = k.cw("chassis", SHUTDOWN | NEW_SETPOINT)
    check(code == 4, f"0x0016 in ready to switch on: exception {code}, expected 4")
    k.expect_state("chassis", RTSO, "after the refused 0x0016")


@rule("D5.4", "enabling never starts motion: a stored set-point or an old target is not started")
def d5_4(k):
    k.to_state("chassis", SO)
    code = k.write_fields("chassis", "command", {"controlword": SWITCH_ON, "mode": 1, "targetA": -300, "speed": 300})
    check(code is None, f"storing a set-point in switched on: exception {code}")
    k.step("chassis", ENABLE_OP, OE, "enable")
    s0 = k.read("chassis")
    still = k.sample("chassis", 1.0, 0.05)
    check(all(s["positionX"] == s0["positionX"] and s["velocity"] == 0 for s in still),
          "chassis started the set-point stored while switched on when enabled")
    k.chassis_move(-1500, speed=300)
    k.wait_speed("chassis", 250)
    k.cw("chassis", SWITCH_ON)
    s1 = k.wait_still("chassis", 3)
    check(s1 is not None, "chassis did not stop after 0x0007")
    k.step("chassis", ENABLE_OP, OE, "re-enable")
    still = k.sample("chassis", 1.0, 0.05)
    check(all(s["positionX"] == s1["positionX"] and s["velocity"] == 0 for s in still),
          "chassis resumed the old target after re-enable")


@rule("D5.5", "set-point acknowledge: set on an accepted edge, cleared by the next write with bit 4 low")
def d5_5(k):
    k.enable("chassis")
    s = k.read("chassis")
    check(not s["flags.setpointAcknowledged"] and not s["statusword"] & SW_SETPOINT_ACK,
          "acknowledge set before any set-point (after writes with bit 4 low)")
    code = k.setpoint("chassis", {"mode": 1, "targetA": -100, "speed": 200})
    check(code is None, f"set-point refused: exception {code}")
    s = k.read("chassis")
    check(s["flags.setpointAcknowledged"] and s["statusword"] & SW_SETPOINT_ACK,
          f"acknowledge not set after an accepted edge (flag {s['flags.setpointAcknowledged']}, statusword 0x{s['statusword']:04X})")
    k.cw("chassis", ENABLE_OP)
    s = k.read("chassis")
    check(not s["flags.setpointAcknowledged"] and not s["statusword"] & SW_SETPOINT_ACK,
          f"acknowledge still set after a write with bit 4 low (flag {s['flags.setpointAcknowledged']}, statusword 0x{s['statusword']:04X})")
    k.wait_still("chassis", 3)
    lift_s = k.read("lift")
    check(not lift_s["flags.setpointAcknowledged"] and not lift_s["statusword"] & SW_SETPOINT_ACK,
          "lift acknowledge set with no set-point")


@rule("D5.6", "targetReached 0 from acceptance to standstill, 1 at standstill; moving whenever velocity is not 0")
def d5_6(k):
    k.enable("chassis")
    s = k.read("chassis")
    check(s["flags.targetReached"] and s["statusword"] & SW_TARGET_REACHED, "targetReached clear at standstill before a set-point")
    code = k.setpoint("chassis", {"mode": 1, "targetA": -200, "speed": 200})
    check(code is None, f"set-point refused: exception {code}")
    samples = k.sample("chassis", 4.0, 0.02, until=lambda s: s["flags.targetReached"] and s["velocity"] == 0)
    first = samples[0]
    check(not first["flags.targetReached"] and not first["statusword"] & SW_TARGET_REACHED,
          "targetReached set right after an accepted set-point")
    for s in samples:
        check(bool(s["statusword"] & SW_TARGET_REACHED) == s["flags.targetReached"],
              f"statusword bit 10 and targetReached disagree at {s['t']:.2f} s")
        check(s["velocity"] == 0 or s["flags.moving"], f"velocity {s['velocity']} with moving clear at {s['t']:.2f} s")
        check(not s["flags.targetReached"] or s["velocity"] == 0,
              f"targetReached set while velocity {s['velocity']} at {s['t']:.2f} s")
    end = samples[-1]
    check(end["flags.targetReached"] and end["velocity"] == 0 and not end["flags.moving"],
          "no standstill with targetReached within 4 s of a 200 mm move")
    check(any(s["velocity"] != 0 for s in samples), "the chassis never moved")
    vmax = max(abs(s["velocity"]) for s in samples)
    check(vmax <= 202, f"chassis at {vmax} mm/s with speed 200 mm/s commanded")


@rule("D5.7", "halt decelerates at the profile acceleration; edge while halted is exception 4; clearing never moves")
def d5_7(k):
    k.chassis_move(-3000, speed=400, accel=500)
    s0 = k.wait_speed("chassis", 380)
    code = k.cw("chassis", ENABLE_OP | HALT)
    check(code is None, f"halt (0x010F): exception {code}")
    samples = k.sample("chassis", 3.0, 0.02, until=lambda s: s["velocity"] == 0 and not s["flags.moving"])
    mid = ramp(samples, s0["velocity"])
    end = samples[-1]
    check(len(mid) >= 2, f"halt from {s0['velocity']} mm/s: velocities {[s['velocity'] for s in samples[:6]]}: no deceleration")
    check(end["velocity"] == 0 and end["flags.targetReached"] and not end["flags.moving"],
          f"halted chassis: velocity {end['velocity']}, targetReached {end['flags.targetReached']} after {end['t']:.1f} s")
    check(0.4 <= end["t"] <= 1.6, f"halt from {s0['velocity']} mm/s took {end['t']:.2f} s (0.5 m/s2: 0.8 s)")
    k.expect_state("chassis", OE, "while halted")
    code = k.cw("chassis", ENABLE_OP | HALT | NEW_SETPOINT)
    check(code == 4, f"0x011F while halted: {'accepted' if code is None else f'exception {code}'}, expected exception 4")
    code = k.cw("chassis", ENABLE_OP)
    check(code is None, f"clearing halt (0x000F): exception {code}")
    still = k.sample("chassis", 1.0, 0.05)
    check(all(s["positionX"] == end["positionX"] and s["velocity"] == 0 for s in still), "chassis moved after halt was cleared")
    code = k.setpoint("chassis", {"mode": 1, "targetA": -100, "speed": 200})
    check(code is None, f"a new set-point after halt: exception {code}")
    s = k.wait_for(lambda: (lambda s: s if s["velocity"] != 0 else None)(k.read("chassis")), 1.0)
    check(s is not None, "a new set-point after halt did not move the chassis")
    k.wait_still("chassis", 3)


@rule("D5.8", "mode 0 with an edge stops: decelerates to standstill with targetReached")
def d5_8(k):
    k.chassis_move(-3000, speed=400, accel=500)
    s0 = k.wait_speed("chassis", 300)
    code = k.setpoint("chassis", {"mode": 0})
    check(code is None, f"mode 0 + edge while moving: exception {code}")
    samples = k.sample("chassis", 3.0, 0.02, until=lambda s: s["velocity"] == 0 and not s["flags.moving"])
    end = samples[-1]
    check(len(ramp(samples, s0["velocity"])) >= 2, "mode 0 + edge: no deceleration ramp")
    check(end["velocity"] == 0 and not end["flags.moving"] and end["flags.targetReached"],
          f"mode 0 + edge: velocity {end['velocity']}, moving {end['flags.moving']}, targetReached {end['flags.targetReached']} after {end['t']:.1f} s")
    still = k.sample("chassis", 0.5, 0.05)
    check(all(s["positionX"] == end["positionX"] for s in still), "chassis moved after the stop")


@rule("D5.9", "fault 5 on the bumper; reset with the bumper pressed stays fault; released, reset leaves fault",
      needs=("bumper",))
def d5_9(k):
    k.chassis_move(-2000, speed=200)
    k.wait_speed("chassis", 150)
    k.stim.bumper(True)
    s = k.wait_for(lambda: (lambda s: s if cia_state(s["statusword"]) == FAULT else None)(k.read("chassis")), 0.5)
    check(s is not None, f"chassis: no fault after the bumper while moving (state {k.state('chassis')})")
    check(s["faultCode"] == 5, f"chassis: fault code {s['faultCode']}, expected 5")
    s = k.wait_still("chassis", 0.3)
    check(s is not None, "chassis: still moving 0.3 s after the bumper fault")
    code = k.cw("chassis", DISABLE_VOLTAGE)
    code2 = k.cw("chassis", FAULT_RESET)
    check(code2 is None, f"fault reset with the bumper pressed: exception {code2} (must be answered normally)")
    s = k.read("chassis")
    check(cia_state(s["statusword"]) == FAULT and s["faultCode"] == 5,
          f"fault reset with the bumper still pressed -> {cia_state(s['statusword'])}, fault {s['faultCode']}")
    k.stim.bumper(False)
    time.sleep(0.05)
    k.cw("chassis", DISABLE_VOLTAGE)
    k.cw("chassis", FAULT_RESET)
    s = k.read("chassis")
    check(cia_state(s["statusword"]) == SOD and s["faultCode"] == 0,
          f"fault reset after release -> {cia_state(s['statusword'])}, fault {s['faultCode']}")


@rule("D5.10", "loss of motion power: category 0 stop, drives switch on disabled")
def d5_10(k):
    causes = [("software e-stop", lambda on: k.write_field("safety", "command", "outputs",
                                                           k.outputs_bit("softwareEstop") if on else 0))]
    if k.stim.available:
        causes.append(("e-stop button", lambda on: k.stim.estop(on)))
    for what, act in causes:
        k.baseline()
        k.enable("lift")
        k.chassis_move(-2000, speed=400)
        k.wait_speed("chassis", 380)
        act(True)
        t0 = time.monotonic()
        s = k.wait_still("chassis", 0.15)
        check(s is not None, f"{what}: chassis still moving {time.monotonic() - t0:.2f} s after motion power went off "
                             f"(velocity {k.read('chassis')['velocity']}; category 0 is at once)")
        sf = k.safety()
        check(not sf["flags.motionPowerOn"], f"{what}: motion power still on")
        for dev in ("chassis", "lift"):
            k.expect_state(dev, SOD, f"{what}")
        act(False)


@rule("D5.11", "turns: mode 3 turns by targetA in its sign's direction (full turn is full); mode 4 the short way")
def d5_11(k):
    k.enable("chassis")
    h0 = k.read("chassis")["heading"]

    def turn(mode, target, want_delta, timeout):
        code = k.setpoint("chassis", {"mode": mode, "targetA": target, "turnRate": 9000})
        check(code is None, f"mode {mode} targetA {target}: exception {code}")
        samples = k.sample("chassis", timeout, 0.03,
                           until=lambda s: s["t"] > 0.2 and s["flags.targetReached"] and not s["flags.moving"])
        travelled, prev = 0, samples[0]["heading"]
        extreme = 0
        for s in samples[1:]:
            travelled += wrap_cdeg(s["heading"] - prev)
            prev = s["heading"]
            extreme = max(extreme, travelled) if want_delta > 0 else min(extreme, travelled)
        end = samples[-1]
        check(end["flags.targetReached"] and not end["flags.moving"], f"mode {mode} targetA {target}: no arrival within {timeout} s")
        j = 0
        for i, s in enumerate(samples):
            while samples[j]["t"] < s["t"] - 0.3:
                j += 1
            if s["t"] - samples[j]["t"] >= 0.25:
                rate = abs(sum(wrap_cdeg(b["heading"] - a["heading"]) for a, b in zip(samples[j:i], samples[j + 1:i + 1]))) \
                    / (s["t"] - samples[j]["t"])
                check(rate <= 9000 * 1.15, f"mode {mode} targetA {target}: turning at {rate / 100:.0f} deg/s, turnRate 90 deg/s")
        what = f"mode {mode} targetA {target}"
        check(abs(travelled - want_delta) <= 150,
              f"{what}: turned {travelled / 100:.1f} deg in all, expected {want_delta / 100:.1f} deg")
        check(abs(extreme - want_delta) <= 150, f"{what}: turned the wrong way first (extreme {extreme / 100:.1f} deg)")
        return end["heading"]

    h = turn(3, 36000, 36000, 15)
    check(abs(wrap_cdeg(h - h0)) <= 100, f"full turn ended at {h / 100:.2f} deg, started at {h0 / 100:.2f}")
    h = turn(3, -9000, -9000, 6)
    h = turn(4, wrap_cdeg(h0 + 8000), wrap_cdeg(wrap_cdeg(h0 + 8000) - h), 8)   # +170 deg: counter-clockwise
    h = turn(4, wrap_cdeg(h0 - 8000), wrap_cdeg(wrap_cdeg(h0 - 8000) - h), 8)   # -160 deg: clockwise
    turn(4, h0, wrap_cdeg(h0 - h), 6)


@rule("D5.13", "lift modes 0, 1, 6 only: any other is exception 3 and not stored")
def d5_13(k):
    f = k.map.field("lift", "command", "mode")
    for mode in (2, 3, 4, 5, 7):
        before = k.regs("lift", "command")
        code = k.write_field("lift", "command", "mode", mode)
        check(code == 3, f"lift mode {mode}: {'accepted' if code is None else f'exception {code}'}, expected exception 3")
        after = k.regs("lift", "command")
        check(after == before, f"lift mode {mode} was stored (read back {after[f.offset]})")
    code = k.write_block("lift", "command", {"mode": 3})
    check(code == 3, f"0x10 lift block with mode 3: exception {code}, expected 3")
    for mode in (0, 1, 6):
        code = k.write_field("lift", "command", "mode", mode)
        check(code is None, f"lift mode {mode}: exception {code}")
        got = k.value("lift", "command", "mode")
        check(got == mode, f"lift mode {mode} read back {got}")
