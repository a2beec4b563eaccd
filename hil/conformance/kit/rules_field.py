"""The rules of §9.2 Protective-field scanner (firmware-protocol/README.md).

They need a test piece the rig can put in front of the chassis and take away (the
simulator's `obstacle` stimulus; on a hardware rig, an actuated test piece), and they apply
only to a chassis whose boot block announces `fieldScanner`."""
import time

from .cia402 import OE, cia_state
from .common import Skip, check
from .helpers import along
from .registry import rule

K_MM_S = 1600        # H9.1's K: a walking person
Z_MM = 100           # H9.1's Z
QUICK_STOP_MM_S2 = 1000


def has_scanner(k):
    if not k.map.has("chassis", "boot") or not k.read("chassis", "boot").get("features.fieldScanner", False):
        raise Skip("the chassis announces no fieldScanner (features bit 2): §9.2 does not apply")


def standing_still(k, seconds=0.5):
    """The chassis status after `seconds`, checked not to have moved meanwhile."""
    s0 = k.read("chassis")
    time.sleep(seconds)
    s1 = k.read("chassis")
    check(abs(along(s0, s1)) < 5 and not s1["flags.moving"], f"the chassis moved {along(s0, s1):.0f} mm")
    return s1


@rule("H9.2", "something entering the protective field stops a moving chassis at least K*v/a + Z short of it, "
              "latches protectiveStop, keeps operation enabled and motion power", needs=("obstacle",))
def h9_2(k):
    has_scanner(k)
    k.chassis_move(4000, speed=500, accel=500)
    s0 = k.wait_speed("chassis", 450)
    ahead_mm = 2500
    k.stim.obstacle(ahead_mm / 1000)
    s1 = k.wait_still("chassis", 4)
    check(s1 is not None, "the chassis did not stop within 4 s of a test piece 2.5 m ahead")
    v = abs(s0["velocity"])
    gap = ahead_mm - along(s0, s1)
    least = K_MM_S * v / QUICK_STOP_MM_S2 + Z_MM
    check(gap >= least - 30, f"stopped {gap:.0f} mm short of the test piece from {v} mm/s; H9.1's fields leave at least "
                             f"K*v/a + Z = {least:.0f} mm")
    check(s1["flags.protectiveStop"], "protectiveStop clear after a protective stop")
    check(s1["flags.targetReached"], "targetReached clear at standstill after a protective stop")
    check(cia_state(s1["statusword"]) == OE, f"the drive left operation enabled: {cia_state(s1['statusword'])}")
    check(k.safety()["flags.motionPowerOn"], "motion power went off: a protective stop is not an e-stop")


@rule("H9.3", "protectiveStop stays until the next accepted set-point; a set-point with the field interrupted does not move",
      needs=("obstacle",))
def h9_3(k):
    has_scanner(k)
    k.enable("chassis")
    k.stim.obstacle(0.3)
    time.sleep(0.2)
    k.chassis_move(1000, speed=300)
    s = standing_still(k)
    check(s["flags.protectiveStop"], "a set-point accepted with the protective field interrupted did not end as a protective stop")
    check(s["flags.targetReached"], "targetReached clear after a set-point the field refused")
    k.stim.obstacle(None)
    time.sleep(0.3)
    s = standing_still(k)
    check(not s["flags.fieldProtective"], "fieldProtective still set with the test piece gone")
    check(s["flags.protectiveStop"], "protectiveStop dropped when the field cleared, before a new set-point")
    k.chassis_move(200, speed=200)
    s = k.wait_still("chassis", 4)
    check(s is not None and not s["flags.protectiveStop"], "protectiveStop not cleared by an accepted set-point")


@rule("H9.4", "a faulted scanner sets fieldScannerFault and fieldProtective, and the chassis does not move",
      needs=("fieldScannerFault",))
def h9_4(k):
    has_scanner(k)
    k.stim.fault("fieldScannerFault", "fieldScannerFault", on=True)
    time.sleep(0.1)
    s = k.read("chassis")
    check(s["flags.fieldScannerFault"] and s["flags.fieldProtective"],
          f"scanner fault: fieldScannerFault {s['flags.fieldScannerFault']}, fieldProtective {s['flags.fieldProtective']}")
    k.chassis_move(500, speed=300)
    standing_still(k)
    k.stim.fault("fieldScannerFault", "fieldScannerFault", on=False)
    time.sleep(0.1)
    s0 = k.read("chassis")
    check(not s0["flags.fieldScannerFault"], "fieldScannerFault still set after the scanner recovered")
    k.chassis_move(200, speed=200)
    time.sleep(0.2)
    s1 = k.wait_still("chassis", 4)
    check(s1 is not None and along(s0, s1) > 150, "the chassis does not move after the scanner recovered")
