"""The rules of §9 Chassis pose (firmware-protocol/README.md)."""
import time

from .common import check
from .helpers import wrap_cdeg
from .registry import rule


@rule("Q9.2", "a whole pose write at standstill sets the reported pose exactly and poseSet; odometry continues")
def q9_2(k):
    if k.map.has("chassis", "boot"):
        feats = k.read("chassis", "boot")
        check(feats.get("features.poseSet", False), "chassis boot.features does not announce poseSet")
    code = k.write_block("chassis", "pose", {"x": 1234, "y": -5678, "heading": 4500})
    check(code is None, f"pose write at standstill: exception {code}")
    s = k.read("chassis")
    check((s["positionX"], s["positionY"], s["heading"]) == (1234, -5678, 4500),
          f"pose written (1234, -5678, 4500), status reports ({s['positionX']}, {s['positionY']}, {s['heading']})")
    check(s["flags.poseSet"], "poseSet clear after a pose write")
    p = k.read("chassis", "pose")
    check((p["x"], p["y"], p["heading"]) == (1234, -5678, 4500), f"pose registers read back {p}")
    k.chassis_move(-100, speed=200)
    time.sleep(0.1)
    e = k.wait_still("chassis", 3)
    check(e is not None, "no standstill after a 100 mm move")
    dx, dy = e["positionX"] - 1234, e["positionY"] + 5678
    check(abs(dx + 70.7) <= 6 and abs(dy + 70.7) <= 6,
          f"after -100 mm at heading 45 deg the pose moved by ({dx}, {dy}) mm, expected (-71, -71)")
    check(abs(wrap_cdeg(e["heading"] - 4500)) <= 20, f"heading {e['heading']} after a straight move from 4500")


@rule("Q9.3", "a pose write while the chassis moves is exception 4 and changes nothing")
def q9_3(k):
    pose_before = k.regs("chassis", "pose")
    k.chassis_move(-1000, speed=300)
    k.wait_speed("chassis", 200)
    s0 = k.read("chassis")
    code = k.write_block("chassis", "pose", {"x": 999999, "y": 999999, "heading": 9000})
    s1 = k.read("chassis")
    check(code == 4, f"pose write while moving: {'accepted' if code is None else f'exception {code}'}, expected 4")
    check(abs(s1["positionX"] - s0["positionX"]) < 100 and abs(s1["heading"] - s0["heading"]) < 50,
          f"pose jumped ({s0['positionX']}, {s0['heading']}) -> ({s1['positionX']}, {s1['heading']}) on a refused write")
    check(s1["flags.poseSet"] == s0["flags.poseSet"], "poseSet changed on a refused pose write")
    check(k.regs("chassis", "pose") == pose_before, "pose registers changed on a refused pose write")


@rule("Q9.4", "the pose and poseSet do not survive a power-up", needs=("reboot",))
def q9_4(k):
    code = k.write_block("chassis", "pose", {"x": 4321, "y": 8765, "heading": -4500})
    check(code is None, f"pose write: exception {code}")
    check(k.read("chassis")["flags.poseSet"], "poseSet clear after a pose write")
    k.reboot()
    s = k.read("chassis")
    check(not s["flags.poseSet"], "poseSet still set after power-up")
    check((s["positionX"], s["positionY"], s["heading"]) == (0, 0, 0),
          f"pose after power-up ({s['positionX']}, {s['positionY']}, {s['heading']}), expected (0, 0, 0)")
    p = k.read("chassis", "pose")
    d = k.map.boot_defaults("chassis", "pose")
    check(all(p[n] == d[n] for n in d), f"pose registers after power-up {p}, boot defaults {d}")
