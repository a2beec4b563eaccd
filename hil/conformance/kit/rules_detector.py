"""The rules of §8 Detector (firmware-protocol/README.md)."""
import time

from .common import check
from .registry import rule


@rule("R8.1", "at power-up the high voltage is on (control 1) and in regulation", needs=("reboot",))
def r8_1(k):
    k.reboot()
    c = k.read("detector", "command")
    check(c["control"] == 1, f"detector control {c['control']} after power-up, expected 1")
    s = k.wait_for(lambda: (lambda s: s if s["flags.highVoltageOk"] and s["flags.dataValid"] else None)(k.read("detector")), 3.0, 0.05)
    check(s is not None, "highVoltageOk/dataValid not set within 3 s of power-up")


@rule("R8.2", "counts and timeBase advance together; timeBase within 5 % of wall time")
def r8_2(k):
    def sample():
        t0 = time.monotonic()
        s = k.read("detector")
        return (t0 + time.monotonic()) / 2, s
    ta, a = sample()
    time.sleep(2.0)
    tb, b = sample()
    dcounts = (b["counts"] - a["counts"]) & 0xFFFFFFFF
    dbase = (b["timeBase"] - a["timeBase"]) & 0xFFFFFFFF
    wall = (tb - ta) * 1000
    check(dcounts > 0, f"counts did not advance in 2 s ({a['counts']} -> {b['counts']})")
    check(abs(dbase - wall) <= 0.05 * wall, f"timeBase advanced {dbase} ms in {wall:.0f} ms of wall time")


@rule("R8.3", "overload latches, doseRate never above rangeMax, clearOverload clears only back in range",
      needs=("detectorOverload",))
def r8_3(k):
    info = k.read("detector", "info")
    ctl = k.map.bit("detector", "command", "control", "clearOverload")
    hv = k.map.bit("detector", "command", "control", "highVoltageOn")
    k.stim.overload(True)
    s = k.wait_for(lambda: (lambda s: s if s["flags.overload"] else None)(k.read("detector")), 2.0)
    check(s is not None, "overload not set in a field above the range")
    for s in k.sample("detector", 1.0, 0.1):
        check(s["doseRate"] <= info["rangeMax"], f"doseRate {s['doseRate']} above rangeMax {info['rangeMax']}")
    k.write_field("detector", "command", "control", hv | ctl)
    k.write_field("detector", "command", "control", hv)
    check(k.read("detector")["flags.overload"], "clearOverload cleared the latch while the rate is out of range")
    k.stim.overload(False)
    time.sleep(0.3)
    check(k.read("detector")["flags.overload"], "overload did not stay latched once the rate fell")
    k.write_field("detector", "command", "control", hv | ctl)
    k.write_field("detector", "command", "control", hv)
    check(not k.read("detector")["flags.overload"], "clearOverload did not clear the latch back in range")


@rule("R8.4", "dataValid and highVoltageOk are 1 while the high voltage is on, 0 while off")
def r8_4(k):
    hv = k.map.bit("detector", "command", "control", "highVoltageOn")
    s = k.read("detector")
    check(s["flags.dataValid"] and s["flags.highVoltageOk"], f"HV on: flags 0x{s['flags']:04X}")
    k.write_field("detector", "command", "control", 0)
    s = k.wait_for(lambda: (lambda s: s if not s["flags.dataValid"] and not s["flags.highVoltageOk"] else None)(k.read("detector")), 1.0)
    check(s is not None, "dataValid/highVoltageOk still set 1 s after HV off")
    k.write_field("detector", "command", "control", hv)
    s = k.wait_for(lambda: (lambda s: s if s["flags.dataValid"] and s["flags.highVoltageOk"] else None)(k.read("detector")), 3.0)
    check(s is not None, "dataValid/highVoltageOk not back within 3 s of HV on")


@rule("R8.5", "fault 16 (no counts) is never raised while the high voltage is off", slow=True)
def r8_5(k):
    hv = k.map.bit("detector", "command", "control", "highVoltageOn")
    k.write_field("detector", "command", "control", 0)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 11.5:
            s = k.read("detector")
            check(s["faultCode"] != 16 and not s["flags.fault"],
                  f"fault {s['faultCode']} (flags 0x{s['flags']:04X}) {time.monotonic() - t0:.1f} s after HV off")
            time.sleep(0.5)
    finally:
        k.write_field("detector", "command", "control", hv)
    time.sleep(0.5)
    s = k.read("detector")
    check(s["faultCode"] == 0, f"fault {s['faultCode']} after HV back on")


@rule("R8.6", "alarmLevel is stored and read back and has no other effect")
def r8_6(k):
    f = k.map.field("detector", "command", "alarmLevel")
    before = k.read("detector")
    for v in (f.min, 123456, f.max, f.boot_default if f.boot_default is not None else 250):
        code = k.write_field("detector", "command", "alarmLevel", v)
        check(code is None, f"alarmLevel {v}: exception {code}")
        got = k.value("detector", "command", "alarmLevel")
        check(got == v, f"alarmLevel {v} read back {got}")
        if v == f.min:
            time.sleep(0.3)
            s = k.read("detector")
            check(s["flags"] == before["flags"] and s["faultCode"] == before["faultCode"],
                  f"alarmLevel {v} changed the detector status (flags 0x{before['flags']:04X} -> 0x{s['flags']:04X})")
