"""The Kit: the helpers the rules use (registers, drives, motion, the baseline state)."""
import math
import time

from .cia402 import (DISABLE_VOLTAGE, ENABLE_OP, FAULT, FAULT_RESET, HALT, NEW_SETPOINT, OE, RTSO, SHUTDOWN, SO, SOD,
                     SWITCH_ON, cia_state)
from .common import Fail, check
from .power import Keepalive, PowerMixin


class Kit(PowerMixin):
    """What every rule is given as `k`; the safety and reboot helpers are in PowerMixin (kit/power.py)."""

    def __init__(self, rig, link, stimulus, args, regmap):
        self.rig = rig
        self.link = link
        self.stim = stimulus
        self.args = args
        self.map = regmap
        self.token = 0x100
        self.last_refresh = 0.0
        self.keepalive = Keepalive(self)
        self.keepalive.start()

    # ---- registers
    def unit(self, dev):
        return self.map.unit(dev)

    def addr(self, dev, block, field):
        return self.map.field(dev, block, field).address

    def regs(self, dev, block):
        blk = self.map.block(dev, block)
        code, regs = self.link.read(self.unit(dev), blk.table, blk.start, blk.length)
        if code is not None:
            raise Fail(f"reading {dev}.{block} gave exception {code}")
        return regs

    def read(self, dev, block="status"):
        return self.map.block(dev, block).decode(self.regs(dev, block))

    def value(self, dev, block, field):
        return self.read(dev, block)[field]

    def write_field(self, dev, block, name, value):
        f = self.map.field(dev, block, name)
        if f.words == 1:
            code = self.link.write1(self.unit(dev), f.address, value)
        else:
            code = self.link.write_n(self.unit(dev), f.address, f.encode(value))
        self.note_write(dev, [name], code)
        return code

    def note_write(self, dev, names, code):
        """Remembers when the watchdog token was last written (a refresh)."""
        if dev == "safety" and "watchdogToken" in names and code is None:
            self.last_refresh = time.monotonic()

    def write_fields(self, dev, block, values, current=None):
        """One 0x10 write covering the given fields (gaps filled with what is stored)."""
        blk = self.map.block(dev, block)
        regs = list(current if current is not None else self.regs(dev, block))
        fields = [blk.field(n) for n in values]
        for f in fields:
            regs[f.offset:f.offset + f.words] = f.encode(values[f.name])
        lo = min(f.offset for f in fields)
        hi = max(f.offset + f.words for f in fields)
        code = self.link.write_n(self.unit(dev), blk.start + lo, regs[lo:hi])
        self.note_write(dev, [f.name for f in blk.fields if lo <= f.offset < hi], code)
        return code

    def write_block(self, dev, block, values):
        """The whole block in one 0x10 write: given fields, boot defaults for the rest."""
        blk = self.map.block(dev, block)
        full = self.map.boot_defaults(dev, block)
        full.update(values)
        regs = [0] * blk.length
        for f in blk.fields:
            regs[f.offset:f.offset + f.words] = f.encode(full[f.name])
        code = self.link.write_n(self.unit(dev), blk.start, regs)
        self.note_write(dev, list(full), code)
        return code

    # ---- drives
    def cw(self, dev, value):
        return self.write_field(dev, "command", "controlword", value)

    def state(self, dev):
        return cia_state(self.value(dev, "status", "statusword"))

    def expect_state(self, dev, want, doing):
        got = self.state(dev)
        check(got == want, f"{dev}: {doing}: state {got}, expected {want}")

    def step(self, dev, word, want, doing=None):
        code = self.cw(dev, word)
        check(code is None, f"{dev}: controlword 0x{word:04X} ({doing or 'step'}) gave exception {code}")
        self.expect_state(dev, want, doing or f"after controlword 0x{word:04X}")

    def to_state(self, dev, want):
        """From switch on disabled, the standard path to `want`."""
        self.step(dev, DISABLE_VOLTAGE, SOD, "disable voltage")
        if want == SOD:
            return
        self.step(dev, SHUTDOWN, RTSO, "shutdown")
        if want == RTSO:
            return
        self.step(dev, SWITCH_ON, SO, "switch on")
        if want == SO:
            return
        self.step(dev, ENABLE_OP, OE, "enable operation")

    def enable(self, dev):
        self.to_state(dev, OE)

    def setpoint(self, dev, values, word=ENABLE_OP | NEW_SETPOINT):
        """Bit 4 low first, then the set-point fields and the edge in one 0x10 write."""
        code = self.cw(dev, word & ~NEW_SETPOINT)
        if code is not None:
            return code
        return self.write_fields(dev, "command", dict(values, controlword=word))

    def chassis_move(self, mm, speed=300, accel=500):
        self.enable("chassis")
        code = self.setpoint("chassis", {"mode": 1, "targetA": mm, "targetB": 0, "speed": speed, "acceleration": accel})
        check(code is None, f"chassis: move {mm} mm refused with exception {code}")

    def wait_for(self, fn, timeout, interval=0.02):
        """Polls fn() until it returns something true; returns it, or None at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() >= deadline:
                return None
            time.sleep(interval)

    def wait_speed(self, dev, speed, timeout=3.0):
        def fast():
            s = self.read(dev)
            return s if abs(s["velocity"]) >= speed else None
        s = self.wait_for(fast, timeout)
        check(s is not None, f"{dev}: never reached {speed} mm/s within {timeout} s")
        return s

    def wait_still(self, dev, timeout=5.0):
        """Waits for standstill (moving clear, velocity 0); returns the status or None."""
        def still():
            s = self.read(dev)
            return s if not s["flags.moving"] and s["velocity"] == 0 else None
        return self.wait_for(still, timeout)

    def sample(self, dev, seconds, interval=0.02, until=None):
        out = []
        t0 = time.monotonic()
        while True:
            s = self.read(dev)
            s["t"] = time.monotonic() - t0
            out.append(s)
            if until and until(s):
                break
            if s["t"] >= seconds:
                break
            time.sleep(interval)
        return out

    def lift_homed(self):
        return self.read("lift")["flags.homed"]

    def home_lift(self, timeout=60):
        self.enable("lift")
        code = self.setpoint("lift", {"mode": 6})
        check(code is None, f"lift: homing refused with exception {code}")
        s = self.wait_for(lambda: (lambda s: s if s["flags.homed"] and s["flags.targetReached"]
                                   and not s["flags.moving"] else None)(self.read("lift")), timeout, 0.05)
        check(s is not None, f"lift: not homed within {timeout} s")
        return s

    def ensure_lift_homed(self):
        if not self.lift_homed():
            self.home_lift()

    def lift_move(self, height, speed=200, timeout=30, watch=None):
        self.enable("lift")
        code = self.setpoint("lift", {"mode": 1, "targetHeight": height, "speed": speed})
        check(code is None, f"lift: move to {height} mm refused with exception {code}")
        samples = []

        def arrived():
            s = self.read("lift")
            samples.append(s)
            if watch:
                watch(s)
            return s if s["flags.targetReached"] and not s["flags.moving"] else None
        s = self.wait_for(arrived, timeout, 0.05)
        check(s is not None, f"lift: did not arrive at {height} mm within {timeout} s")
        return s, samples

    # ---- the known state every rule starts from
    def baseline(self):
        self.keepalive.pause()
        self.stim.release_all()
        self.wait_ready()
        self.power_up()
        for dev in ("chassis", "lift"):
            self.cw(dev, DISABLE_VOLTAGE)
            if self.state(dev) == FAULT:
                self.cw(dev, FAULT_RESET)
                self.cw(dev, DISABLE_VOLTAGE)
            code = self.write_block(dev, "command", {"controlword": DISABLE_VOLTAGE})
            check(code is None, f"setup: restoring the {dev} command block gave exception {code}")
        code = self.write_block("detector", "command", {})
        check(code is None, f"setup: restoring the detector command block gave exception {code}")
        for dev in ("chassis", "lift"):
            s = self.wait_still(dev, 3.0)
            if s is None:
                # A drive that does not stop when disabled (a firmware bug another rule
                # reports): enable it, halt it, and disable it at standstill.
                for word in (SHUTDOWN, SWITCH_ON, ENABLE_OP, ENABLE_OP | HALT):
                    self.cw(dev, word)
                self.wait_still(dev, 5.0)
                self.cw(dev, DISABLE_VOLTAGE)
                s = self.wait_still(dev, 1.0)
            check(s is not None, f"setup: {dev} does not come to a standstill")
            st = cia_state(s["statusword"])
            check(st == SOD, f"setup: {dev} in {st}, not switch on disabled")

    def shutdown(self):
        self.keepalive.stop()
        try:
            self.stim.release_all()
            for dev in ("chassis", "lift"):
                self.cw(dev, DISABLE_VOLTAGE)
            self.write_field("safety", "command", "outputs", 0)
        except Exception:
            pass


def along(s0, s1):
    """Distance in mm travelled from status s0 to s1 along s0's heading."""
    h = math.radians(s0["heading"] / 100)
    return (s1["positionX"] - s0["positionX"]) * math.cos(h) + (s1["positionY"] - s0["positionY"]) * math.sin(h)


def wrap_cdeg(a):
    while a > 18000:
        a -= 36000
    while a < -18000:
        a += 36000
    return a
