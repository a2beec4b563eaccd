"""The rules of §2 Units, silence, broadcast (firmware-protocol/README.md)."""
import time

from .cia402 import SHUTDOWN, SOD
from .common import check, hx
from .registry import rule
from .wire import exception_of, pdu_read, pdu_write1, pdu_write_n, rtu_frame


@rule("U2.1", "silent for another unit ID and for a bad CRC", transport="serial")
def u2_1(k):
    cw_addr = k.addr("chassis", "command", "controlword")
    frame = rtu_frame(k.unit("chassis"), pdu_write1(cw_addr, SHUTDOWN))
    bad = frame[:-1] + bytes([frame[-1] ^ 0xFF])
    got = k.link.raw_frame(bad, 0.2)
    check(not got, f"a frame with a bad CRC was answered: {hx(got)}")
    for unit in (9, 5, 247):
        got = k.link.raw_frame(rtu_frame(unit, pdu_read(4, 0, 4)), 0.2)
        check(not got, f"a read for unit {unit} was answered: {hx(got)}")
    got = k.link.raw_frame(rtu_frame(9, pdu_write1(cw_addr, SHUTDOWN)), 0.2)
    check(not got, f"a write for unit 9 was answered: {hx(got)}")
    check(k.state("chassis") == SOD, f"the frame with a bad CRC was executed: chassis in {k.state('chassis')}")


@rule("U2.2", "a frame to unit 0 (broadcast) is neither answered nor executed")
def u2_2(k):
    cw_addr = k.addr("chassis", "command", "controlword")
    out_addr = k.addr("safety", "command", "outputs")
    before = {dev: k.read(dev, "command") for dev in k.map.units}
    frames = [("0x06 controlword shutdown", pdu_write1(cw_addr, SHUTDOWN)),
              ("0x10 controlword shutdown", pdu_write_n(cw_addr, [SHUTDOWN])),
              ("0x06 safety outputs beacon", pdu_write1(out_addr, k.outputs_bit("beacon")))]
    for what, pdu in frames:
        reply = k.link.raw(0, pdu, wait=0.2)
        if k.link.transport == "serial":
            check(reply is None, f"broadcast {what} was answered: {hx(reply)}")
        else:
            # A gateway may say that nobody answered (0x0A/0x0B); a normal reply means a unit took it.
            check(reply is None or exception_of(reply) in (0x0A, 0x0B),
                  f"broadcast {what} through the gateway got the reply {hx(reply)}")
    time.sleep(0.05)
    for dev in ("chassis", "lift"):
        check(k.state(dev) == SOD, f"broadcast shutdown was executed: {dev} in {k.state(dev)}")
    for dev, old in before.items():
        new = k.read(dev, "command")
        for name, v in old.items():
            if dev == "safety" and name.startswith("watchdogToken"):
                continue
            check(new[name] == v, f"broadcast changed {dev}.command.{name}: {v} -> {new[name]}")
    check(not k.safety()["flags.beaconOn"], "broadcast beacon write lit the beacon")


@rule("U2.3", "through a gateway, an absent unit is exception 0x0B", transport="tcp")
def u2_3(k):
    for unit in (9, 5):
        code, _ = k.link.read(unit, "input", 0, 4)
        check(code == 0x0B, f"read for absent unit {unit}: exception {code}, expected 0x0B")
    code, regs = k.link.read(k.unit("chassis"), "input", 0, 4)
    check(code is None, f"unit 2 behind the gateway gave exception {code}")
