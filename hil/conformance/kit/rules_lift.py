"""The rules of §6 Lift (firmware-protocol/README.md)."""
import time

from .cia402 import DISABLE_VOLTAGE, FAULT, FAULT_RESET, OE, SOD, cia_state
from .common import Fail, check
from .registry import rule


@rule("L6.1", "targetHeight 300-2800 mm never reaches a limit switch")
def l6_1(k):
    k.ensure_lift_homed()
    bad = []

    def watch(s):
        if s["flags.lowerLimit"] or s["flags.upperLimit"] or s["faultCode"]:
            bad.append(s)
    targets = (300,) if k.args.quick else (2800, 300)
    for target in targets:
        s, _ = k.lift_move(target, 200, timeout=40, watch=watch)
        check(not bad, f"on the way to {target} mm: lowerLimit {bad and bad[0]['flags.lowerLimit']}, "
                       f"upperLimit {bad and bad[0]['flags.upperLimit']}, fault {bad and bad[0]['faultCode']} at {bad and bad[0]['height']} mm")
        check(abs(s["height"] - target) <= 2, f"lift at {s['height']} mm, target {target}")
        check(cia_state(s["statusword"]) == OE, f"lift in {cia_state(s['statusword'])} at {target} mm")


@rule("L6.2", "a limit switch outside homing is fault 3, stops at once; reset allowed with the switch closed",
      needs=("limitSwitch",))
def l6_2(k):
    k.ensure_lift_homed()
    h = k.read("lift")["height"]
    if h > 2000:
        k.lift_move(1000)
        h = k.read("lift")["height"]
    k.enable("lift")
    code = k.setpoint("lift", {"mode": 1, "targetHeight": min(2800, h + 800), "speed": 200})
    check(code is None, f"lift move up: exception {code}")
    k.wait_speed("lift", 100)
    k.stim.limit_switch("upper", True)
    s = k.wait_for(lambda: (lambda s: s if cia_state(s["statusword"]) == FAULT else None)(k.read("lift")), 0.3)
    check(s is not None, f"lift: no fault after the upper limit switch closed (state {k.state('lift')})")
    check(s["faultCode"] == 3, f"lift: fault code {s['faultCode']}, expected 3")
    check(s["flags.upperLimit"], "lift: upperLimit flag clear with the switch closed")
    s2 = k.wait_still("lift", 0.1)
    check(s2 is not None, "lift: still moving 0.1 s after the limit switch (stops at once)")
    k.cw("lift", DISABLE_VOLTAGE)
    code = k.cw("lift", FAULT_RESET)
    check(code is None, f"fault reset with the switch closed: exception {code}")
    s = k.read("lift")
    check(cia_state(s["statusword"]) == SOD and s["faultCode"] == 0,
          f"fault reset with the switch still closed -> {cia_state(s['statusword'])}, fault {s['faultCode']}")
    check(s["flags.homed"], "homed cleared by the limit-switch fault (L6.4)")
    k.enable("lift")
    code = k.setpoint("lift", {"mode": 1, "targetHeight": max(300, s["height"] - 100), "speed": 100})
    check(code is None, f"profile-position set-point away from the closed switch: exception {code}")
    k.stim.limit_switch("upper", False)


@rule("L6.3", "homing: down to the lower switch, up to 0.300 m with the switch open; homed, within 60 s")
def l6_3(k):
    k.ensure_lift_homed()
    s, _ = k.lift_move(1000)
    k.enable("lift")
    code = k.setpoint("lift", {"mode": 6, "targetHeight": 2800, "speed": 1, "acceleration": 1})
    check(code is None, f"homing refused: exception {code}")
    t0 = time.monotonic()
    seen_lower, vmax = False, 0
    done = None
    while time.monotonic() - t0 < 60:
        s = k.read("lift")
        seen_lower |= s["flags.lowerLimit"]
        vmax = max(vmax, abs(s["velocity"]))
        if time.monotonic() - t0 > 0.3 and s["flags.homed"] and s["flags.targetReached"] and not s["flags.moving"]:
            done = s
            break
        if time.monotonic() - t0 > 2 and vmax < 45:
            raise Fail(f"homing at {vmax} mm/s (must ignore speed 1 mm/s and run at 50-150 mm/s)")
    took = time.monotonic() - t0
    check(done is not None, "homing from 1.0 m did not finish within 60 s")
    check(45 <= vmax <= 160, f"homing speed {vmax} mm/s, expected 50-150")
    check(seen_lower, "lowerLimit never seen during homing (it drives to the lower switch)")
    check(abs(done["height"] - 300) <= 2, f"homed at {done['height']} mm, expected 300")
    check(not done["flags.lowerLimit"], "lowerLimit still set at the end of homing (must end above the switch)")
    check(done["faultCode"] == 0, f"fault {done['faultCode']} after homing")
    check(took <= 60, f"homing took {took:.1f} s")


@rule("L6.4", "before homing height is 0 and a position edge is exception 4; homed survives e-stop and disable",
      needs=("reboot",))
def l6_4(k):
    if k.lift_homed():
        k.reboot()
        k.baseline()
    s = k.read("lift")
    check(not s["flags.homed"] and s["height"] == 0, f"unhomed lift: homed {s['flags.homed']}, height {s['height']}")
    k.enable("lift")
    code = k.setpoint("lift", {"mode": 1, "targetHeight": 1500})
    check(code == 4, f"profile-position edge before homing: {'accepted' if code is None else f'exception {code}'}, expected 4")
    k.expect_state("lift", OE, "after the refused set-point")
    k.home_lift()
    if k.stim.available:
        k.stim.estop(True)
        time.sleep(0.1)
        k.stim.estop(False)
    else:
        k.write_field("safety", "command", "outputs", k.outputs_bit("softwareEstop"))
        k.write_field("safety", "command", "outputs", 0)
    check(k.lift_homed(), "homed cleared by an e-stop")
    k.power_up()
    check(k.lift_homed(), "homed cleared by the reset")
    k.enable("lift")
    k.cw("lift", DISABLE_VOLTAGE)
    check(k.lift_homed(), "homed cleared by disable voltage")
