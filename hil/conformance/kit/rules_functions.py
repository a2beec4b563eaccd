"""The rules of §3 Functions, validation order, writes (firmware-protocol/README.md)."""
import struct
import time

from .cia402 import ENABLE_OP, HALT, NEW_SETPOINT, RTSO, SHUTDOWN, SO, SOD
from .common import Fail, NoReply, check, hx
from .helpers import along
from .registry import rule
from .wire import exception_of, pdu_read, pdu_write1, pdu_write_n


def ask(k, unit, pdu, what):
    """A raw request; a lost connection or a wrong reply is reported with the case."""
    try:
        reply = k.link.raw(unit, pdu)
        if reply is None:  # once more, in case the host was too busy
            reply = k.link.raw(unit, pdu)
        return reply
    except (NoReply, Fail) as e:
        raise Fail(f"{what} ({len(pdu)}-byte PDU {hx(pdu[:12])}{' ...' if len(pdu) > 12 else ''}): {e}")


def follow_up(k, unit, after):
    """The unit still answers a plain request correctly after an odd one (it framed it right)."""
    try:
        reply = k.link.raw(unit, pdu_read(4, 0, 1))
    except Fail as e:
        raise Fail(f"after {after}, the next request (0x04 read of register 0) got a wrong reply: {e}")
    check(reply is not None and reply[:2] == bytes([4, 2]),
          f"after {after}, the next request (0x04 read of register 0) got {hx(reply)}")


@rule("F3.1", "functions 0x03, 0x04, 0x06, 0x10 only; any other is exception 1")
def f3_1(k):
    others = [("0x01 read coils", bytes([1, 0, 0, 0, 1])),
              ("0x02 read discrete inputs", bytes([2, 0, 0, 0, 1])),
              ("0x05 write coil", bytes([5, 0, 0, 0xFF, 0])),
              ("0x07 read exception status", bytes([7])),
              ("0x08 diagnostics echo", bytes([8, 0, 0, 0x12, 0x34])),
              ("0x0F write coils", bytes([0x0F, 0, 0, 0, 1, 1, 1])),
              ("0x11 report server id", bytes([0x11])),
              ("0x16 mask write", bytes([0x16, 0, 16, 0xFF, 0xFF, 0, 0])),
              ("0x17 read/write registers", bytes([0x17, 0, 16, 0, 1, 0, 16, 0, 1, 2, 0, 0])),
              ("0x2B read device identification", bytes([0x2B, 0x0E, 1, 0])),
              ("0x41 user function", bytes([0x41, 0, 0]))]
    units = list(k.map.units.values())
    for i, (what, pdu) in enumerate(others):
        unit = units[i % len(units)]
        reply = ask(k, unit, pdu, what)
        check(reply is not None, f"{what} to unit {unit}: no reply (expected exception 1)")
        check(reply[0] == (pdu[0] | 0x80) and exception_of(reply) == 1,
              f"{what} to unit {unit}: reply {reply.hex(' ')}, expected exception 1")
        follow_up(k, unit, f"{what} ({hx(pdu)})")
    for dev in k.map.units:
        blk = k.map.block(dev, "identity")
        code, _ = k.link.read(k.unit(dev), "input", blk.start, blk.length)
        check(code is None, f"0x04 read of {dev} identity gave exception {code}")
        cmd = k.map.block(dev, "command")
        code, regs = k.link.read(k.unit(dev), "holding", cmd.start, cmd.length)
        check(code is None, f"0x03 read of {dev} command gave exception {code}")


@rule("F3.2", "read count 1-125, write count 1-123 with byte count 2 x count; else exception 3")
def f3_2(k):
    u = k.unit("chassis")
    cmd = k.map.block("chassis", "command")
    st = k.map.block("chassis", "status")
    cases = [("0x03 count 0", pdu_read(3, cmd.start, 0)),
             ("0x04 count 0", pdu_read(4, st.start, 0)),
             ("0x03 count 126", pdu_read(3, cmd.start, 126)),
             ("0x04 count 126", pdu_read(4, st.start, 126)),
             ("0x04 count 65535", pdu_read(4, st.start, 0xFFFF)),
             ("0x10 count 0, byte count 0", pdu_write_n(cmd.start, [], count=0, byte_count=0)),
             ("0x10 count 124", pdu_write_n(cmd.start, [0] * 123, count=124)),
             ("0x10 count 1 with byte count 4", pdu_write_n(cmd.start, [0, 0], count=1)),
             ("0x10 count 2 with byte count 2", pdu_write_n(cmd.start, [0], count=2))]
    for what, pdu in cases:
        reply = ask(k, u, pdu, what)
        check(reply is not None, f"{what} ({len(pdu)}-byte PDU): no reply (expected exception 3)")
        check(exception_of(reply) == 3, f"{what}: reply {reply.hex(' ')}, expected exception 3")
        follow_up(k, u, what)
    check(k.state("chassis") == SOD, "a refused write changed the chassis state")


def adjacent_blocks(k):
    for dev in k.map.units:
        for table in ("input", "holding"):
            blocks = sorted(k.map.blocks(dev, table), key=lambda b: b.start)
            for a, b in zip(blocks, blocks[1:]):
                if a.end == b.start:
                    return dev, table, a, b
    return None


def unmapped(k, dev, table, start=0):
    a = start
    while k.map.mapped(dev, table, a):
        a += 1
    return a


@rule("F3.3", "range inside one block, no half of a 32-bit field (reads and writes); else exception 2")
def f3_3(k):
    cases = []
    adj = adjacent_blocks(k)
    if adj:
        dev, table, a, b = adj
        cases.append((f"read across {dev} {a.name}/{b.name}", dev, pdu_read(3 if table == "holding" else 4, a.end - 1, 2)))
    for dev in k.map.units:
        for blk in k.map.blocks(dev):
            fn = 3 if blk.table == "holding" else 4
            if not k.map.mapped(dev, blk.table, blk.end):
                cases.append((f"read past the end of {dev}.{blk.name}", dev, pdu_read(fn, blk.start, blk.length + 1)))
                break
    cases.append(("read of unmapped input 200", "detector", pdu_read(4, unmapped(k, "detector", "input", 200), 1)))
    cases.append(("read of unmapped holding", "safety", pdu_read(3, unmapped(k, "safety", "holding", 0), 1)))
    cases.append(("0x06 write of unmapped holding", "safety",
                  pdu_write1(unmapped(k, "safety", "holding", 0), 0)))
    lift_cmd = k.map.block("lift", "command")
    cases.append(("0x10 write past the end of lift.command", "lift",
                  pdu_write_n(lift_cmd.end - 1, [k.map.boot_defaults("lift", "command")[lift_cmd.fields[-1].name], 0])))
    # Halves of 32-bit fields.
    px = k.map.field("chassis", "status", "positionX")
    cases += [("read of the low half of chassis positionX", "chassis", pdu_read(4, px.address + 1, 1)),
              ("read of the high half of chassis positionX", "chassis", pdu_read(4, px.address, 1)),
              ("read of positionX low half + positionY high half", "chassis", pdu_read(4, px.address + 1, 2))]
    ta = k.map.field("chassis", "command", "targetA")
    cases += [("read of the high half of chassis targetA", "chassis", pdu_read(3, ta.address, 1)),
              ("0x06 write of the high half of chassis targetA", "chassis", pdu_write1(ta.address, 0)),
              ("0x06 write of the low half of chassis targetA", "chassis", pdu_write1(ta.address + 1, 0)),
              ("0x10 write of targetA low half + targetB high half", "chassis", pdu_write_n(ta.address + 1, [0, 0]))]
    al = k.map.field("detector", "command", "alarmLevel")
    cases += [("0x06 write of the low half of detector alarmLevel", "detector", pdu_write1(al.address + 1, 300)),
              ("0x10 write of control + alarmLevel high half", "detector", pdu_write_n(al.address - 1, [1, 0]))]
    before = {dev: k.regs(dev, "command") for dev in ("chassis", "lift", "detector")}
    for what, dev, pdu in cases:
        reply = ask(k, k.unit(dev), pdu, what)
        check(reply is not None, f"{what}: no reply (expected exception 2)")
        check(exception_of(reply) == 2, f"{what}: reply {reply.hex(' ')}, expected exception 2")
    for dev, regs in before.items():
        check(k.regs(dev, "command") == regs, f"a refused write changed {dev}.command")


def f34_cases(k):
    """(what, dev, address, registers) for writes F3.4 says are exception 3."""
    cases = []
    for dev in k.map.units:
        for blk in k.map.blocks(dev, "holding"):
            if blk.name == "pose":
                continue  # a pose field alone is a partial pose write (F3.10)
            for f in blk.fields:
                lo, hi = f.type_range()
                if f.min is not None and f.min - 1 >= lo:
                    cases.append((f"{dev}.{f.name} = {f.min - 1} (below min)", dev, f, f.min - 1))
                if f.max is not None and f.max + 1 <= hi:
                    cases.append((f"{dev}.{f.name} = {f.max + 1} (above max)", dev, f, f.max + 1))
                if f.values:
                    gaps = [v for v in range(f.min if f.min is not None else 0, (f.max if f.max is not None else 16) + 1)
                            if v not in f.values]
                    for v in gaps:
                        cases.append((f"{dev}.{f.name} = {v} (not an allowed value)", dev, f, v))
                if f.type == "bits16" and f.bits and f.access == "rw":
                    defined = sum(1 << b for b in f.bits.values())
                    for b in range(16):
                        if not defined >> b & 1:
                            cases.append((f"{dev}.{f.name} with undefined bit {b}", dev, f, 1 << b))
                            break
    return cases


@rule("F3.4", "values within min..max, allowed values, defined bits, per-mode targetA limits; else exception 3")
def f3_4(k):
    cases = f34_cases(k)
    names = [c[0] for c in cases]
    # The rules' own examples, whatever the map says.
    if not any(n.startswith("lift.mode = 3") for n in names):
        cases.append(("lift.mode = 3 (not an allowed value)", "lift", k.map.field("lift", "command", "mode"), 3))
    if not any(n.startswith("chassis.controlword with undefined bit 5") for n in names):
        cases.append(("chassis.controlword with bit 5", "chassis", k.map.field("chassis", "command", "controlword"), 0x0020))
    for what, dev, f, value in cases:
        before = k.regs(dev, f.block.name)
        code = k.write_field(dev, f.block.name, f.name, value)
        check(code == 3, f"write {what}: {'accepted' if code is None else f'exception {code}'}, expected exception 3")
        after = k.regs(dev, f.block.name)
        if dev == "safety":
            tok = k.map.field("safety", "command", "watchdogToken").offset
            before[tok] = after[tok] = 0
        check(after == before, f"refused write {what} changed {dev}.{f.block.name}")
    # Per-mode limits of targetA, written together with the mode.
    for mode, target in ((3, 40000), (3, -40000), (3, 36001), (4, 20000), (4, -18001)):
        code = k.write_fields("chassis", "command", {"mode": mode, "targetA": target})
        check(code == 3, f"chassis mode {mode} with targetA {target}: "
                         f"{'accepted' if code is None else f'exception {code}'}, expected exception 3")
    for mode, target in ((3, 36000), (3, -36000), (4, 18000), (4, -18000), (1, 1000000)):
        code = k.write_fields("chassis", "command", {"mode": mode, "targetA": target})
        check(code is None, f"chassis mode {mode} with targetA {target} (allowed) gave exception {code}")
    for height in (300, 2800):
        code = k.write_field("lift", "command", "targetHeight", height)
        check(code is None, f"lift targetHeight {height} (allowed) gave exception {code}")


@rule("F3.5", "check order function, count, address, value, state: the first failing decides")
def f3_5(k):
    u = k.unit("chassis")
    cmd = k.map.block("chassis", "command")
    cases = [("0x01 with count 0 (function before count)", u, bytes([1, 0, 0, 0, 0]), 1),
             ("0x01 at an unmapped address (function before address)", u, bytes([1, 0x0F, 0xFF, 0, 1]), 1),
             ("0x03 count 0 at an unmapped address (count before address)", u,
              pdu_read(3, unmapped(k, "chassis", "holding", 0), 0), 3),
             ("0x04 count 126 at an unmapped address (count before address)", u, pdu_read(4, 500, 126), 3),
             ("0x03 count 125 in a 9-register block (address)", u, pdu_read(3, cmd.start, 125), 2),
             ("0x10 count 124 past the block (count before address)", u, pdu_write_n(cmd.start, [0] * 123, count=124), 3)]
    lift_cmd = k.map.block("lift", "command")
    th = k.map.field("lift", "command", "targetHeight")
    n = lift_cmd.end - th.address + 1
    cases.append(("0x10 lift targetHeight 5000 running past the block (address before value)", k.unit("lift"),
                  pdu_write_n(th.address, [5000] + [0] * (n - 1)), 2))
    ta = k.map.field("chassis", "command", "targetA")
    cases.append(("0x06 out-of-range half of targetA (address before value)", u, pdu_write1(ta.address, 0x7FFF), 2))
    for what, unit, pdu, want in cases:
        reply = ask(k, unit, pdu, what)
        check(reply is not None, f"{what}: no reply (expected exception {want})")
        check(exception_of(reply) == want, f"{what}: reply {reply.hex(' ')}, expected exception {want}")
    # Value before state: enable + set-point from switched on (state: 4) with targetA out of range (value: 3).
    k.to_state("chassis", SO)
    code = k.write_fields("chassis", "command", {"controlword": ENABLE_OP | NEW_SETPOINT, "mode": 1, "targetA": 2000000})
    check(code == 3, f"set-point edge from switched on with targetA 2000000: exception {code}, expected 3 (value before state)")
    code = k.write_fields("chassis", "command", {"controlword": ENABLE_OP | NEW_SETPOINT | 0x0020, "mode": 1, "targetA": -100})
    check(code == 3, f"set-point edge from switched on with controlword bit 5: exception {code}, expected 3 (value before state)")
    k.expect_state("chassis", SO, "after the refused writes")


@rule("F3.6", "a write answered with an exception changes no register, state or edge memory")
def f3_6(k):
    k.to_state("chassis", RTSO)
    before = k.regs("chassis", "command")
    code = k.cw("chassis", ENABLE_OP | NEW_SETPOINT)
    check(code == 4, f"0x001F in ready to switch on: exception {code}, expected 4")
    check(k.regs("chassis", "command") == before,
          f"refused 0x001F changed chassis.command: {before} -> {k.regs('chassis', 'command')}")
    k.expect_state("chassis", RTSO, "after the refused 0x001F")
    code = k.write_fields("chassis", "command", {"controlword": ENABLE_OP | NEW_SETPOINT, "mode": 1, "targetA": -200,
                                                 "speed": 123})
    check(code == 4, f"0x10 block with 0x001F in ready to switch on: exception {code}, expected 4")
    check(k.regs("chassis", "command") == before, "refused 0x10 write changed chassis.command")
    k.expect_state("chassis", RTSO, "after the refused 0x10 write")
    # A value refusal: a valid transition and an out-of-range target in one write.
    lift_before = k.regs("lift", "command")
    code = k.write_fields("lift", "command", {"controlword": SHUTDOWN, "mode": 1, "targetHeight": 5000})
    check(code == 3, f"lift shutdown with targetHeight 5000: exception {code}, expected 3")
    check(k.regs("lift", "command") == lift_before, "refused lift write changed lift.command")
    k.expect_state("lift", SOD, "after the refused shutdown + bad target")
    # Edge memory: a refused 0x011F must not become the previous controlword.
    k.enable("chassis")
    code = k.cw("chassis", ENABLE_OP | NEW_SETPOINT | HALT)
    check(code == 4, f"0x011F (halt with a set-point edge): exception {code}, expected 4")
    check(k.value("chassis", "command", "controlword") == ENABLE_OP, "refused 0x011F was stored")
    code = k.write_fields("chassis", "command", {"controlword": ENABLE_OP | NEW_SETPOINT, "mode": 1, "targetA": -100,
                                                 "speed": 200})
    check(code is None, f"0x001F after a refused 0x011F: exception {code} (the refused write's edge was remembered)")
    s = k.read("chassis")
    check(s["flags.setpointAcknowledged"], "0x001F after a refused 0x011F was not taken as an edge (no acknowledge)")
    k.wait_still("chassis", 3)
    # Safety: an out-of-range timeout with a new token and the beacon.
    k.keepalive.pause()
    sb = k.regs("safety", "command")
    code = k.write_block("safety", "command", {"watchdogToken": k.token ^ 0x5A5A or 1, "watchdogTimeout": 20,
                                               "outputs": k.outputs_bit("beacon")})
    sa = k.regs("safety", "command")
    flags = k.safety()
    k.keepalive.resume()
    check(code == 3, f"safety block with watchdogTimeout 20: exception {code}, expected 3")
    check(sa == sb, f"refused safety write changed safety.command: {sb} -> {sa}")
    check(not flags["flags.beaconOn"], "refused safety write lit the beacon")


@rule("F3.7", "one write acts once: token + reset edge after expiry closes the chain; set-point with its edge")
def f3_7(k):
    k.expire_watchdog()
    code = k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": k.outputs_bit("estopReset")})
    check(code is None, f"token + reset edge in one write: exception {code}")
    s = k.safety()
    k.write_field("safety", "command", "outputs", 0)
    k.keepalive.resume()
    check(not s["flags.estopLatched"] and not s["flags.watchdogExpired"] and s["flags.motionPowerOn"],
          f"token + reset edge in one 0x10 write after expiry did not close the chain (flags 0x{s['flags']:04X})")
    # A controlword and its set-point registers arrive together.
    k.enable("chassis")
    code = k.write_fields("chassis", "command", {"controlword": ENABLE_OP, "mode": 1, "targetA": -20, "speed": 300})
    check(code is None, f"storing a set-point: exception {code}")
    s0 = k.read("chassis")
    code = k.write_fields("chassis", "command", {"controlword": ENABLE_OP | NEW_SETPOINT, "mode": 1, "targetA": -150})
    check(code is None, f"edge with a new target in one write: exception {code}")
    time.sleep(0.1)
    s1 = k.wait_still("chassis", 5)
    check(s1 is not None, "chassis did not stop after a 150 mm move")
    d = along(s0, s1)
    check(abs(d + 150) <= 10, f"edge + targetA -150 in one write moved {d:.0f} mm (the stored -20 was used?)")


@rule("F3.8", "0x06 echoes, 0x10 answers address and count, 0x03 reads back what was stored")
def f3_8(k):
    u = k.unit("chassis")
    sp = k.map.field("chassis", "command", "speed")
    pdu = pdu_write1(sp.address, 321)
    reply = k.link.raw(u, pdu)
    check(reply == pdu, f"0x06 reply {hx(reply)} is not the echo {pdu.hex(' ')}")
    cmd = k.map.block("chassis", "command")
    tr = k.map.field("chassis", "command", "turnRate")
    pdu = pdu_write_n(tr.address, [4321, 432])
    reply = k.link.raw(u, pdu)
    want = struct.pack(">BHH", 16, tr.address, 2)
    check(reply == want, f"0x10 reply {hx(reply)}, expected {want.hex(' ')}")
    got = k.read("chassis", "command")
    check(got["speed"] == 321 and got["turnRate"] == 4321 and got["acceleration"] == 432,
          f"read-back speed/turnRate/acceleration {got['speed']}/{got['turnRate']}/{got['acceleration']}, wrote 321/4321/432")
    code = k.write_field("detector", "command", "alarmLevel", 123456789)
    check(code is None, f"0x10 alarmLevel: exception {code}")
    check(k.value("detector", "command", "alarmLevel") == 123456789, "alarmLevel read back differs from 123456789")
    code = k.write_fields("lift", "command", {"targetHeight": 2345, "speed": 77, "acceleration": 88})
    check(code is None, f"0x10 lift targetHeight/speed/acceleration: exception {code}")
    got = k.read("lift", "command")
    check((got["targetHeight"], got["speed"], got["acceleration"]) == (2345, 77, 88),
          f"lift read-back {(got['targetHeight'], got['speed'], got['acceleration'])}, wrote (2345, 77, 88)")
    k.keepalive.pause()
    code = k.write_field("safety", "command", "watchdogTimeout", 777)
    t = k.value("safety", "command", "watchdogTimeout")
    k.write_field("safety", "command", "watchdogTimeout", 500)
    k.keepalive.resume()
    check(code is None and t == 777, f"safety watchdogTimeout 777: exception {code}, read back {t}")


@rule("F3.9", "right after power-up every request is exception 6 and changes nothing; ready within 2 s",
      needs=("reboot",))
def f3_9(k):
    k.keepalive.pause()
    k.stim.reboot()
    t0 = time.monotonic()
    codes = {}
    for dev in k.map.units:
        try:
            codes[dev], _ = k.link.read(k.unit(dev), "input", 0, 4)
        except NoReply:
            codes[dev] = "no reply"
    try:
        wcode = k.cw("chassis", SHUTDOWN)
    except NoReply:
        wcode = "no reply"
    elapsed = time.monotonic() - t0
    t_ready = k.wait_ready(3.0)
    for dev, code in codes.items():
        check(code == 6, f"{dev}: read {elapsed * 1000:.0f} ms after the reboot answered "
                         f"{'normally' if code is None else code}, expected exception 6")
    check(wcode == 6, f"chassis write while booting answered {'normally' if wcode is None else wcode}, expected exception 6")
    check(t_ready - t0 <= 2.3, f"units ready {t_ready - t0:.2f} s after the reboot (at most 2 s)")
    check(k.value("chassis", "command", "controlword") == 0, "the write made while booting was stored")
    k.expect_state("chassis", SOD, "after booting")


@rule("F3.10", "a write may cover part of a block, the rest keeps its value; pose only whole (else exception 3)")
def f3_10(k):
    before = k.read("chassis", "command")
    code = k.write_field("chassis", "command", "turnRate", 4444)
    check(code is None, f"0x06 turnRate: exception {code}")
    code = k.write_fields("chassis", "command", {"targetB": -4242, "speed": 222})
    check(code is None, f"0x10 targetB + speed: exception {code}")
    after = k.read("chassis", "command")
    for name, v in before.items():
        want = {"turnRate": 4444, "targetB": -4242, "speed": 222}.get(name, v)
        check(after[name] == want, f"chassis.command.{name}: {after[name]}, expected {want}")
    pose = k.map.block("chassis", "pose")
    x, y, h = (pose.field(n) for n in ("x", "y", "heading"))
    pose_before = k.regs("chassis", "pose")
    status_before = k.read("chassis")
    parts = [("x only", x.address, x.encode(1000)), ("y only", y.address, y.encode(1000)),
             ("x and y", x.address, x.encode(1000) + y.encode(2000)),
             ("y and heading", y.address, y.encode(1000) + h.encode(100))]
    for what, address, regs in parts:
        code = k.link.write_n(k.unit("chassis"), address, regs)
        check(code == 3, f"0x10 pose {what}: {'accepted' if code is None else f'exception {code}'}, expected 3")
    code = k.link.write1(k.unit("chassis"), h.address, 100)
    check(code == 3, f"0x06 pose heading alone: {'accepted' if code is None else f'exception {code}'}, expected 3")
    check(k.regs("chassis", "pose") == pose_before, "a refused partial pose write changed the pose registers")
    s = k.read("chassis")
    check(s["positionX"] == status_before["positionX"] and s["heading"] == status_before["heading"],
          "a refused partial pose write moved the odometry")
