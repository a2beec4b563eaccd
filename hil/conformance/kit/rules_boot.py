"""The rules of §4 Boot state (firmware-protocol/README.md)."""
import time

from .cia402 import SHUTDOWN, SOD
from .common import Skip, check
from .registry import rule


def dirty_everything(k):
    """Writes non-default values everywhere, so a boot default cannot be left-over."""
    k.keepalive.pause()
    k.write_block("safety", "command", {"watchdogToken": k.next_token(), "watchdogTimeout": 900,
                                        "outputs": k.outputs_bit("beacon")})
    k.keepalive.resume()
    k.write_block("chassis", "command", {"controlword": SHUTDOWN, "mode": 1, "targetA": -5, "targetB": 7, "speed": 321,
                                         "turnRate": 4321, "acceleration": 432})
    if k.map.has("chassis", "pose"):
        k.write_block("chassis", "pose", {"x": 12, "y": 34, "heading": 56})
    k.write_block("lift", "command", {"controlword": SHUTDOWN, "mode": 1, "targetHeight": 2000, "speed": 150,
                                      "acceleration": 300})
    k.write_block("detector", "command", {"control": 1, "alarmLevel": 777})


@rule("B4.1", "at power-up every holding register takes its bootDefault", needs=("reboot",))
def b4_1(k):
    missing = [f"{d}.{b.name}" for d in k.map.units for b in k.map.blocks(d, "holding")
               if not k.map.has_boot_defaults(d, b.name)]
    if missing:
        raise Skip(f"register map has no bootDefault for {', '.join(missing)}")
    dirty_everything(k)
    k.reboot()
    for dev in k.map.units:
        for blk in k.map.blocks(dev, "holding"):
            got = k.read(dev, blk.name)
            for f in blk.fields:
                check(got[f.name] == f.boot_default,
                      f"{dev}.{blk.name}.{f.name} = {got[f.name]} after power-up, bootDefault {f.boot_default}")


@rule("B4.2", "power-up state: drives disabled, not homed, pose 0, counts 0, chain open with bootInterlock",
      needs=("reboot",))
def b4_2(k):
    k.chassis_move(-100)
    k.wait_still("chassis", 3)
    det0 = k.read("detector")
    time.sleep(1.0)
    det1 = k.read("detector")
    dt = ((det1["timeBase"] - det0["timeBase"]) & 0xFFFFFFFF) / 1000 or 1
    rate = ((det1["counts"] - det0["counts"]) & 0xFFFFFFFF) / dt
    t0 = k.reboot()
    since = time.monotonic() - t0
    for dev in ("chassis", "lift"):
        k.expect_state(dev, SOD, "after power-up")
    lift = k.read("lift")
    check(not lift["flags.homed"] and lift["height"] == 0, f"lift after power-up: homed {lift['flags.homed']}, height {lift['height']}")
    ch = k.read("chassis")
    check((ch["positionX"], ch["positionY"], ch["heading"]) == (0, 0, 0),
          f"chassis pose after power-up ({ch['positionX']}, {ch['positionY']}, {ch['heading']}), expected (0, 0, 0)")
    if "flags.poseSet" in ch:
        check(not ch["flags.poseSet"], "chassis poseSet set after power-up")
    check(ch["odometer"] == 0, f"chassis odometer {ch['odometer']} after power-up")
    det = k.read("detector")
    check(det["timeBase"] <= (time.monotonic() - t0 + 0.3) * 1000,
          f"detector timeBase {det['timeBase']} ms is older than the power-up {since:.2f} s ago")
    check(det["counts"] <= rate * det["timeBase"] / 1000 * 3 + 30,
          f"detector counts {det['counts']} after power-up at {rate:.0f} counts/s over {det['timeBase']} ms: not from 0")
    check(not det["flags.overload"], "detector overload set after power-up")
    s = k.safety()
    check(s["flags.estopLatched"], "safety: estopLatched clear after power-up")
    check(s.get("flags.bootInterlock", None) is True, "safety: bootInterlock not set after power-up")
    check(not s["flags.motionPowerOn"], "safety: motion power on after power-up")
    check(s["watchdogRemaining"] == 0, f"safety: watchdogRemaining {s['watchdogRemaining']} after power-up (not running)")


@rule("B4.3", "bootCount rises by exactly 1 at each power-up; resetCause says power-on", needs=("reboot",))
def b4_3(k):
    before = {dev: k.read(dev, "boot") for dev in k.map.units}
    k.reboot()
    for dev in k.map.units:
        after = k.read(dev, "boot")
        want = (before[dev]["bootCount"] + 1) & 0xFFFF
        check(after["bootCount"] == want, f"{dev}: bootCount {before[dev]['bootCount']} -> {after['bootCount']}, expected {want}")
        values = k.map.field(dev, "boot", "resetCause").values or [0, 1, 2, 3]
        check(after["resetCause"] in values, f"{dev}: resetCause {after['resetCause']} not in {values}")
        check(after["resetCause"] == 0, f"{dev}: resetCause {after['resetCause']} after a power cycle, expected 0 (power-on)")
