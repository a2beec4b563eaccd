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
"""
import argparse
import json
import logging
import math
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAP_PATH = os.path.join(ROOT, "firmware-protocol", "register-map.json")

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
}

# What a person at a hardware rig without a stimulus controller would have to do.
RIG_ACTIONS = {
    "reboot": "power-cycle the units",
    "estop": "press and release the e-stop button",
    "bumper": "press and release a bumper",
    "limitSwitch": "close and open the lift's upper limit switch",
    "detectorOverload": "put the probe in a field above its range",
}

# Boot defaults from the protocol 1.1 rules, used only when the map has no `bootDefault`.
FALLBACK_BOOT_DEFAULTS = {
    ("safety", "command"): {"watchdogToken": 0, "watchdogTimeout": 500, "outputs": 0},
    ("chassis", "command"): {"controlword": 0, "mode": 0, "targetA": 0, "targetB": 0, "speed": 500,
                             "turnRate": 3000, "acceleration": 500},
    ("chassis", "pose"): {"x": 0, "y": 0, "heading": 0},
    ("lift", "command"): {"controlword": 0, "mode": 0, "targetHeight": 1000, "speed": 200, "acceleration": 400},
    ("detector", "command"): {"control": 1, "alarmLevel": 250},
}

# CiA 402 (firmware-protocol/README.md, "Drives"): commands and statusword bits.
SHUTDOWN, SWITCH_ON, ENABLE_OP, DISABLE_VOLTAGE, QUICK_STOP = 0x0006, 0x0007, 0x000F, 0x0000, 0x0002
NEW_SETPOINT, FAULT_RESET, HALT = 0x0010, 0x0080, 0x0100
SW_TARGET_REACHED, SW_SETPOINT_ACK = 1 << 10, 1 << 12
SOD, RTSO, SO, OE, QSA, FAULT = ("switch on disabled", "ready to switch on", "switched on",
                                  "operation enabled", "quick stop active", "fault")


def cia_state(sw):
    if sw & 0x4F == 0x00:
        return "not ready to switch on"
    if sw & 0x4F == 0x40:
        return SOD
    if sw & 0x6F == 0x21:
        return RTSO
    if sw & 0x6F == 0x23:
        return SO
    if sw & 0x6F == 0x27:
        return OE
    if sw & 0x6F == 0x07:
        return QSA
    if sw & 0x4F == 0x0F:
        return "fault reaction active"
    if sw & 0x4F == 0x08:
        return FAULT
    return f"unknown statusword 0x{sw:04X}"


class Fail(Exception):
    pass


class Skip(Exception):
    pass


class NoReply(Exception):
    pass


class MapMissing(Exception):
    pass


def hx(data):
    return data.hex(" ") if data else "nothing"


def check(condition, detail):
    if not condition:
        raise Fail(detail)


# ---------------------------------------------------------------- register map

class Field:
    def __init__(self, block, spec):
        self.block = block
        self.name = spec["name"]
        self.offset = spec["offset"]
        self.type = spec["type"]
        self.words = spec.get("words", 2 if self.type in ("u32", "i32") else 1)
        self.address = block.start + self.offset
        self.min = spec.get("min")
        self.max = spec.get("max")
        self.values = spec.get("values")
        self.access = spec.get("access", "r")
        self.bits = {b["name"]: b["bit"] for b in spec.get("bits", [])}
        self.boot_default = spec.get("bootDefault")

    @property
    def signed(self):
        return self.type in ("i16", "i32")

    def type_range(self):
        return {"u16": (0, 0xFFFF), "i16": (-0x8000, 0x7FFF), "bits16": (0, 0xFFFF),
                "u32": (0, 0xFFFFFFFF), "i32": (-0x80000000, 0x7FFFFFFF)}.get(self.type, (0, 0xFFFF))

    def encode(self, value):
        if self.words == 1:
            return [value & 0xFFFF]
        if self.words == 2:
            v = value & 0xFFFFFFFF
            return [v >> 16, v & 0xFFFF]
        raise ValueError(f"cannot encode {self.type}")

    def decode(self, regs):
        if self.type == "ascii":
            raw = b"".join(struct.pack(">H", r) for r in regs)
            return raw.rstrip(b"\0").decode("ascii", "replace")
        if self.words == 1:
            v = regs[0]
            return v - 0x10000 if self.signed and v >= 0x8000 else v
        v = regs[0] << 16 | regs[1]
        return v - 0x100000000 if self.signed and v >= 0x80000000 else v


class Block:
    def __init__(self, device, spec):
        self.device = device
        self.name = spec["name"]
        self.table = spec["table"]
        self.start = spec["start"]
        self.fields = [Field(self, f) for f in spec["fields"]]
        self.length = max(f.offset + f.words for f in self.fields)
        self.by_name = {f.name: f for f in self.fields}

    @property
    def end(self):
        return self.start + self.length

    def field(self, name):
        if name not in self.by_name:
            raise MapMissing(f"register map has no {self.device}.{self.name}.{name}")
        return self.by_name[name]

    def decode(self, regs):
        out = {}
        for f in self.fields:
            v = f.decode(regs[f.offset:f.offset + f.words])
            out[f.name] = v
            for bit_name, bit in f.bits.items():
                out[f"{f.name}.{bit_name}"] = bool(v >> bit & 1)
        return out


class RegisterMap:
    def __init__(self, path=MAP_PATH):
        with open(path) as fh:
            self.doc = json.load(fh)
        self.devices = {}
        self.units = {}
        for dev in self.doc["devices"]:
            self.units[dev["name"]] = dev["unitId"]
            self.devices[dev["name"]] = {b["name"]: Block(dev["name"], b) for b in dev["blocks"]}

    def unit(self, dev):
        return self.units[dev]

    def has(self, dev, block):
        return block in self.devices.get(dev, {})

    def block(self, dev, block):
        if not self.has(dev, block):
            raise MapMissing(f"register map has no {dev}.{block} block")
        return self.devices[dev][block]

    def field(self, dev, block, name):
        return self.block(dev, block).field(name)

    def bit(self, dev, block, field, bit):
        f = self.field(dev, block, field)
        if bit not in f.bits:
            raise MapMissing(f"register map has no bit {dev}.{block}.{field}.{bit}")
        return 1 << f.bits[bit]

    def blocks(self, dev, table=None):
        return [b for b in self.devices[dev].values() if table is None or b.table == table]

    def mapped(self, dev, table, address):
        return any(b.start <= address < b.end for b in self.blocks(dev, table))

    def boot_defaults(self, dev, block):
        blk = self.block(dev, block)
        fallback = FALLBACK_BOOT_DEFAULTS.get((dev, block), {})
        out = {}
        for f in blk.fields:
            out[f.name] = f.boot_default if f.boot_default is not None else fallback.get(f.name, 0)
        return out

    def has_boot_defaults(self, dev, block):
        return all(f.boot_default is not None for f in self.block(dev, block).fields)


# ---------------------------------------------------------------- Modbus framing (raw requests)

def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def rtu_frame(unit, pdu):
    body = bytes([unit]) + pdu
    c = crc16(body)
    return body + bytes([c & 0xFF, c >> 8])


def pdu_read(function, address, count):
    return struct.pack(">BHH", function, address, count)


def pdu_write1(address, value):
    return struct.pack(">BHH", 6, address, value & 0xFFFF)


def pdu_write_n(address, values, count=None, byte_count=None):
    data = b"".join(struct.pack(">H", v & 0xFFFF) for v in values)
    count = len(values) if count is None else count
    byte_count = len(data) if byte_count is None else byte_count
    return struct.pack(">BHHB", 16, address, count, byte_count) + data


def exception_of(pdu):
    """The exception code of a reply PDU, or None for a normal reply."""
    if pdu and pdu[0] & 0x80 and len(pdu) >= 2:
        return pdu[1]
    return None


def rtu_reply_length(buf):
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc & 0x80:
        return 5
    if fc in (3, 4):
        return 5 + buf[2] if len(buf) >= 3 else None
    if fc in (6, 16):
        return 8
    return None


# ---------------------------------------------------------------- the link (pymodbus)

class Link:
    """One pymodbus client shared under a lock (pymodbus clients are not thread-safe)."""

    def __init__(self, serial_port=None, tcp=None, baud=115200, timeout=0.3):
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient
        self.lock = threading.RLock()
        self.transport = "serial" if serial_port else "tcp"
        self.timeout = timeout
        if serial_port:
            self.client = ModbusSerialClient(serial_port, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                             timeout=timeout, retries=0)
            self.where = serial_port
        else:
            host, _, port = tcp.rpartition(":")
            self.client = ModbusTcpClient(host or "127.0.0.1", port=int(port), timeout=timeout, retries=0)
            self.where = tcp
        try:
            self.client.set_max_no_responses(1_000_000)
        except Exception:
            pass
        self.tid = 0x7000
        self.dirty = False

    def recover(self):
        """After a lost or mismatched reply: a fresh TCP connection, or a flushed serial line."""
        with self.lock:
            self.dirty = False
            if self.transport == "tcp":
                self.client.close()
                time.sleep(0.05)
                self.client.connect()
            else:
                time.sleep(0.05)
                if self.client.socket is not None:
                    self.client.socket.reset_input_buffer()

    def connect(self):
        if not self.client.connect():
            raise RuntimeError(f"cannot open {self.transport} link {self.where}")

    def close(self):
        try:
            self.client.close()
        except Exception:
            pass

    def _call(self, what, fn, *args, **kwargs):
        from pymodbus.exceptions import ConnectionException, ModbusIOException
        with self.lock:
            for attempt in (0, 1):
                # One retry: a reply lost to a busy host must not fail a rule. Repeating
                # a request is harmless here: the same value again is no edge, and a
                # refused write is refused again.
                try:
                    return fn(*args, **kwargs)
                except ModbusIOException as e:
                    if attempt == 1:
                        self.dirty = True
                        raise NoReply(f"no reply to {what} (tried twice, {self.timeout:.2f} s each)") from e
                    self.recover()
                except ConnectionException as e:
                    if attempt == 1:
                        raise NoReply(f"link lost at {what}: {e}") from e
                    self.client.close()
                    time.sleep(0.2)
                    self.client.connect()

    def read(self, unit, table, address, count):
        """(exception code or None, registers)."""
        fn = self.client.read_input_registers if table == "input" else self.client.read_holding_registers
        r = self._call(f"read {table} {address}+{count} of unit {unit}", fn, address, count=count, device_id=unit)
        if r.isError():
            return getattr(r, "exception_code", -1), None
        return None, list(r.registers)

    def write1(self, unit, address, value):
        r = self._call(f"0x06 write {address}={value} to unit {unit}", self.client.write_register, address,
                       value & 0xFFFF, device_id=unit)
        return getattr(r, "exception_code", -1) if r.isError() else None

    def write_n(self, unit, address, values):
        r = self._call(f"0x10 write {address}+{len(values)} to unit {unit}", self.client.write_registers, address,
                       [v & 0xFFFF for v in values], device_id=unit)
        return getattr(r, "exception_code", -1) if r.isError() else None

    # Raw requests go through pymodbus's own transport (its serial port or socket).
    def raw(self, unit, pdu, wait=None):
        """Sends one request PDU; returns the reply PDU, or None when nothing came within `wait`."""
        wait = self.timeout if wait is None else wait
        with self.lock:
            if self.transport == "serial":
                buf = self._serial_exchange(rtu_frame(unit, pdu), wait)
                if not buf:
                    return None
                if len(buf) < 4 or crc16(buf[:-2]) != (buf[-2] | buf[-1] << 8):
                    raise Fail(f"reply with a bad CRC or cut short: {buf.hex(' ')}")
                if buf[0] != unit:
                    raise Fail(f"reply from unit {buf[0]} to a request for unit {unit}")
                return buf[1:-2]
            return self._tcp_exchange(unit, pdu, wait)

    def raw_frame(self, frame, wait):
        """Serial only: sends raw bytes, returns whatever came back within `wait`."""
        with self.lock:
            return self._serial_exchange(frame, wait, return_early=False)

    def _serial_exchange(self, frame, wait, return_early=True):
        s = self.client.socket
        if s is None:
            self.client.connect()
            s = self.client.socket
        s.reset_input_buffer()
        s.write(frame)
        s.flush()
        buf = b""
        deadline = time.monotonic() + wait
        last = None
        while True:
            n = s.in_waiting
            now = time.monotonic()
            if n:
                buf += s.read(n)
                last = now
                length = rtu_reply_length(buf)
                if return_early and length is not None and len(buf) >= length:
                    break
                continue
            if return_early and buf and now - last > 0.02:
                break
            if now >= deadline:
                break
            time.sleep(0.0005)
        return buf

    def _tcp_exchange(self, unit, pdu, wait):
        sock = self.client.socket
        if sock is None:
            self.client.connect()
            sock = self.client.socket
        while select.select([sock], [], [], 0)[0]:
            if not sock.recv(4096):
                break
        self.tid = (self.tid + 1) & 0xFFFF
        sock.sendall(struct.pack(">HHHB", self.tid, 0, len(pdu) + 1, unit) + pdu)
        buf = b""
        deadline = time.monotonic() + wait
        while True:
            need = 7 if len(buf) < 7 else 6 + struct.unpack(">H", buf[4:6])[0]
            if len(buf) >= need and len(buf) >= 7:
                break
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None if not buf else buf[7:] or None
            chunk = sock.recv(4096)
            if not chunk:
                self.dirty = True
                raise NoReply("gateway closed the connection")
            buf += chunk
        tid, _, _, reply_unit = struct.unpack(">HHHB", buf[:7])
        if tid != self.tid:
            self.dirty = True
            raise Fail(f"reply {hx(buf)} has transaction id {tid}, expected {self.tid}")
        return buf[7:need]


# ---------------------------------------------------------------- stimuli (control socket)

class Stimulus:
    """The simulator's control socket, or a hardware rig's stimulus controller."""

    def __init__(self, address):
        self.address = address
        self.sock = None
        self.file = None
        self.active = {}

    @property
    def available(self):
        return self.address is not None

    def command(self, line):
        if not self.available:
            raise Skip("needs a stimulus controller (rig key control)")
        if self.sock is None:
            host, _, port = self.address.rpartition(":")
            self.sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=5)
            self.file = self.sock.makefile("rw", encoding="utf-8", newline="\n")
        self.file.write(line + "\n")
        self.file.flush()
        reply = self.file.readline().strip()
        if not reply.startswith("ok"):
            raise Skip(f"the rig's control refused '{line}': {reply or 'no answer'}")
        return reply[2:].strip()

    def fault(self, kind, key, **params):
        words = " ".join(f"{k}={'true' if v is True else 'false' if v is False else v}" for k, v in params.items())
        self.command(f"fault kind={kind} {words}".strip())
        if params.get("on") is True:
            self.active[key] = (kind, {k: v for k, v in params.items() if k != "on"})
        elif params.get("on") is False:
            self.active.pop(key, None)

    def estop(self, on):
        self.fault("estop", "estop", on=on)

    def bumper(self, on):
        self.fault("bumper", "bumper", on=on)

    def limit_switch(self, which, on):
        self.fault("limitSwitch", f"limitSwitch.{which}", switch=which, on=on)

    def overload(self, on):
        self.fault("detectorOverload", "detectorOverload", on=on)

    def reboot(self):
        self.command("fault kind=reboot")

    def release_all(self):
        for key, (kind, params) in list(self.active.items()):
            try:
                self.fault(kind, key, on=False, **params)
            except Exception:
                self.active.pop(key, None)

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except Exception:
                pass


# ---------------------------------------------------------------- the watchdog keep-alive

class Keepalive(threading.Thread):
    """Refreshes the safety token every 100 ms while active."""

    def __init__(self, kit):
        super().__init__(daemon=True, name="keepalive")
        self.kit = kit
        self.active = threading.Event()
        self.stopping = threading.Event()
        self.busy = threading.Lock()
        self.errors = 0

    def run(self):
        while not self.stopping.is_set():
            if self.active.is_set():
                with self.busy:
                    if self.active.is_set():
                        try:
                            if self.kit.refresh() is not None:
                                self.errors += 1
                        except Exception:
                            self.errors += 1
            self.stopping.wait(0.1)

    def resume(self):
        self.active.set()

    def pause(self):
        self.active.clear()
        with self.busy:
            pass

    def stop(self):
        self.pause()
        self.stopping.set()


# ---------------------------------------------------------------- the kit: helpers the rules use

class Kit:
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

    # ---- safety
    def next_token(self):
        self.token = (self.token + 1) & 0xFFFF or 1
        return self.token

    def refresh(self):
        return self.write_field("safety", "command", "watchdogToken", self.next_token())

    def outputs_bit(self, name):
        return self.map.bit("safety", "command", "outputs", name)

    def safety(self):
        return self.read("safety")

    def power_up(self, timeout_ms=None):
        """Refresh, then a reset edge (W7.5); then keeps the watchdog refreshed."""
        self.keepalive.pause()
        timeout_ms = timeout_ms or self.map.boot_defaults("safety", "command")["watchdogTimeout"]
        code = self.write_block("safety", "command", {"watchdogToken": self.next_token(),
                                                      "watchdogTimeout": timeout_ms, "outputs": 0})
        check(code is None, f"safety: refresh write gave exception {code}")
        code = self.write_field("safety", "command", "outputs", self.outputs_bit("estopReset"))
        check(code is None, f"safety: reset edge gave exception {code}")
        self.write_field("safety", "command", "outputs", 0)
        self.keepalive.resume()
        s = self.safety()
        check(s["flags.motionPowerOn"], f"motion power does not come on after refresh and reset (safety flags 0x{s['flags']:04X})")

    def expire_watchdog(self):
        """Stops refreshing and waits for the watchdog to expire."""
        self.keepalive.pause()
        s = self.wait_for(lambda: (lambda s: s if s["flags.watchdogExpired"] else None)(self.safety()), 3.0)
        check(s is not None, "watchdog did not expire within 3 s without refreshes")
        return s

    # ---- reboots
    def wait_ready(self, timeout=3.0):
        """Polls every unit until a read succeeds (booting units answer exception 6)."""
        deadline = time.monotonic() + timeout
        pending = list(self.map.units)
        last = {}
        while pending:
            dev = pending[0]
            try:
                if self.link.dirty:
                    self.link.recover()
                code, _ = self.link.read(self.unit(dev), "input", 0, 1)
            except NoReply:
                code = "no reply"
            if code is None:
                pending.pop(0)
                continue
            last[dev] = code
            if time.monotonic() >= deadline:
                raise Fail(f"{dev} does not answer a read within {timeout} s (last answer: {code})")
            time.sleep(0.02)
        return time.monotonic()

    def reboot(self):
        self.keepalive.pause()
        self.stim.reboot()
        t0 = time.monotonic()
        self.wait_ready()
        return t0

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


# ---------------------------------------------------------------- rules

class Rule:
    def __init__(self, rid, text, fn, needs, slow, transport):
        self.id = rid
        self.section = "§" + re.match(r"[A-Z](\d+)\.", rid).group(1)
        self.text = text
        self.fn = fn
        self.needs = needs
        self.slow = slow
        self.transport = transport


RULES = []


def rule(rid, text, needs=(), slow=False, transport=None):
    def register(fn):
        RULES.append(Rule(rid, text, fn, tuple(needs), slow, transport))
        return fn
    return register


# §2 Units, silence, broadcast

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


# §3 Functions, validation order, writes

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


# §4 Boot state

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


# §5 Drives

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


# §6 Lift

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


# §7 Safety controller

@rule("W7.1", "a refresh is a different token; 0 after power-up is not one; the first refresh starts the watchdog",
      needs=("reboot",))
def w7_1(k):
    k.reboot()
    code = k.write_field("safety", "command", "watchdogToken", 0)
    check(code is None, f"token 0: exception {code}")
    for _ in range(6):
        s = k.safety()
        check(s["watchdogRemaining"] == 0, f"token 0 after power-up started the watchdog (remaining {s['watchdogRemaining']} ms)")
        time.sleep(0.05)
    k.write_field("safety", "command", "watchdogToken", 0x1234)
    s = k.safety()
    check(s["watchdogRemaining"] > 0, "the first refresh did not start the watchdog")
    t0 = time.monotonic()
    expired = None
    while time.monotonic() - t0 < 1.5:
        k.write_field("safety", "command", "watchdogToken", 0x1234)
        s = k.safety()
        if s["flags.watchdogExpired"]:
            expired = time.monotonic() - t0
            break
        time.sleep(0.1)
    check(expired is not None, "writing the same token every 100 ms kept the watchdog alive (not a refresh)")
    check(expired >= 0.35, f"watchdog expired {expired:.2f} s after the refresh (timeout 500 ms)")


@rule("W7.2", "no refresh within watchdogTimeout: expires, chain opens, power off; refreshes do not clear it")
def w7_2(k):
    for timeout in (500, 300):
        if timeout != 500:
            k.keepalive.pause()
            k.write_block("safety", "command", {"watchdogToken": k.next_token(), "watchdogTimeout": timeout,
                                                "outputs": k.outputs_bit("estopReset")})
            k.write_field("safety", "command", "outputs", 0)
            k.keepalive.resume()
            time.sleep(0.3)
            check(k.safety()["flags.motionPowerOn"], f"no motion power with timeout {timeout}")
        k.enable("chassis")
        k.keepalive.pause()
        t_last = k.last_refresh
        s = k.wait_for(lambda: (lambda s: s if s["flags.watchdogExpired"] else None)(k.safety()), 2.0, 0.01)
        t = time.monotonic() - t_last
        check(s is not None, f"timeout {timeout} ms: the watchdog did not expire within 2 s")
        check(timeout / 1000 - 0.05 <= t <= timeout / 1000 + 0.15,
              f"timeout {timeout} ms: expired {t * 1000:.0f} ms after the last refresh")
        check(s["flags.estopLatched"] and not s["flags.motionPowerOn"],
              f"timeout {timeout} ms: expired but chain closed or power on (flags 0x{s['flags']:04X})")
        k.expect_state("chassis", SOD, "after the watchdog expired")
        k.refresh()
        s = k.safety()
        check(s["watchdogRemaining"] > 0, "a refresh after expiry did not restart the timer")
        check(s["flags.watchdogExpired"] and not s["flags.motionPowerOn"], "a refresh cleared watchdogExpired")
        k.power_up()


@rule("W7.3", "the chain opens and latches on the button, on softwareEstop (a level) and on expiry")
def w7_3(k):
    sw = k.outputs_bit("softwareEstop")
    reset = k.outputs_bit("estopReset")
    k.write_field("safety", "command", "outputs", sw)
    s = k.safety()
    check(s["flags.estopLatched"] and s["flags.softwareEstop"] and not s["flags.motionPowerOn"],
          f"softwareEstop did not open the chain (flags 0x{s['flags']:04X})")
    k.write_field("safety", "command", "outputs", sw | reset)
    s = k.safety()
    check(s["flags.estopLatched"], "a reset edge closed the chain while softwareEstop is set")
    k.write_field("safety", "command", "outputs", 0)
    time.sleep(0.1)
    s = k.safety()
    check(s["flags.estopLatched"] and not s["flags.softwareEstop"], "the chain did not stay latched after clearing softwareEstop")
    k.power_up()
    if k.stim.available:
        k.stim.estop(True)
        s = k.safety()
        check(s["flags.estopButton"] and s["flags.estopLatched"] and not s["flags.motionPowerOn"],
              f"the e-stop button did not open the chain (flags 0x{s['flags']:04X})")
        k.stim.estop(False)
        time.sleep(0.05)
        s = k.safety()
        check(not s["flags.estopButton"] and s["flags.estopLatched"], "the chain did not stay latched after the button's release")
        k.power_up()
    s = k.expire_watchdog()
    check(s["flags.estopLatched"], "watchdog expiry did not latch the chain")


@rule("W7.4", "a reset edge closes the chain only with no cause left; else every flag stays as it was")
def w7_4(k):
    reset = k.outputs_bit("estopReset")
    k.expire_watchdog()
    time.sleep(0.1)
    before = k.safety()["flags"]
    k.write_field("safety", "command", "outputs", 0)
    k.write_field("safety", "command", "outputs", reset)
    after = k.safety()
    check(after["flags"] == before,
          f"reset edge without a refresh after expiry changed the flags 0x{before:04X} -> 0x{after['flags']:04X}")
    check(after["flags.estopLatched"], "reset edge without a refresh closed the chain")
    k.write_field("safety", "command", "outputs", 0)
    code = k.write_block("safety", "command", {"watchdogToken": k.next_token(),
                                               "outputs": reset | k.outputs_bit("softwareEstop")})
    s = k.safety()
    check(code is None and s["flags.estopLatched"], "refresh + reset with softwareEstop set closed the chain")
    k.write_field("safety", "command", "outputs", 0)
    if k.stim.available:
        k.stim.estop(True)
        k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": reset})
        s = k.safety()
        k.write_field("safety", "command", "outputs", 0)
        k.stim.estop(False)
        check(s["flags.estopLatched"], "refresh + reset with the e-stop button pressed closed the chain")
    code = k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": reset})
    s = k.safety()
    k.write_field("safety", "command", "outputs", 0)
    k.keepalive.resume()
    check(code is None, f"refresh + reset: exception {code}")
    check(not s["flags.estopLatched"] and not s["flags.watchdogExpired"] and not s.get("flags.bootInterlock", False)
          and s["flags.motionPowerOn"], f"refresh + reset with no cause left did not close the chain (flags 0x{s['flags']:04X})")


@rule("W7.5", "after power-up a refresh alone never powers the drives; refresh then reset edge does",
      needs=("reboot",))
def w7_5(k):
    k.reboot()
    k.keepalive.resume()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.6:
        s = k.safety()
        check(not s["flags.motionPowerOn"], f"motion power on {time.monotonic() - t0:.2f} s after power-up with refreshes only")
        check(s["flags.estopLatched"], "chain closed after power-up with refreshes only")
        time.sleep(0.05)
    k.write_field("safety", "command", "outputs", 0)
    k.write_field("safety", "command", "outputs", k.outputs_bit("estopReset"))
    k.write_field("safety", "command", "outputs", 0)
    s = k.safety()
    check(s["flags.motionPowerOn"] and not s.get("flags.bootInterlock", False),
          f"refresh and a reset edge did not power motion after power-up (flags 0x{s['flags']:04X})")


@rule("W7.6", "motion power on exactly when chain closed, watchdog running and not expired, battery not empty")
def w7_6(k):
    states = []

    def observe(what):
        s = k.safety()
        want = (not s["flags.estopLatched"] and not s["flags.watchdogExpired"] and s["watchdogRemaining"] > 0
                and s["batteryCharge"] > 0)
        check(s["flags.motionPowerOn"] == want, f"{what}: motionPowerOn {s['flags.motionPowerOn']} with flags "
                                                f"0x{s['flags']:04X}, watchdogRemaining {s['watchdogRemaining']}")
        states.append(what)
    observe("powered")
    k.write_field("safety", "command", "outputs", k.outputs_bit("softwareEstop"))
    observe("softwareEstop set")
    k.write_field("safety", "command", "outputs", 0)
    observe("softwareEstop cleared, chain latched")
    k.power_up()
    observe("reset")
    k.expire_watchdog()
    observe("watchdog expired")
    k.refresh()
    observe("refreshed after expiry")
    k.power_up()
    observe("reset after expiry")


@rule("W7.7", "beacon and buzzer follow their output bits and nothing else")
def w7_7(k):
    beacon, buzzer = k.outputs_bit("beacon"), k.outputs_bit("buzzer")
    for outputs in (beacon, buzzer, beacon | buzzer, 0):
        k.write_field("safety", "command", "outputs", outputs)
        s = k.safety()
        check(s["flags.beaconOn"] == bool(outputs & beacon) and s["flags.buzzerOn"] == bool(outputs & buzzer),
              f"outputs 0x{outputs:04X}: beaconOn {s['flags.beaconOn']}, buzzerOn {s['flags.buzzerOn']}")
    k.write_field("safety", "command", "outputs", k.outputs_bit("softwareEstop"))
    s = k.safety()
    check(not s["flags.beaconOn"] and not s["flags.buzzerOn"], "beacon or buzzer on by itself during a software e-stop")
    k.write_field("safety", "command", "outputs", 0)
    k.power_up()
    s = k.expire_watchdog()
    time.sleep(0.2)
    s = k.safety()
    check(not s["flags.beaconOn"] and not s["flags.buzzerOn"], "beacon or buzzer on by itself after the watchdog expired")


@rule("W7.8", "a softwareEstop write (0x06 or 0x10) has acted before its reply")
def w7_8(k):
    sw = k.outputs_bit("softwareEstop")
    for how in ("0x06", "0x10"):
        k.enable("chassis")
        if how == "0x06":
            code = k.write_field("safety", "command", "outputs", sw)
        else:
            k.keepalive.pause()
            code = k.write_block("safety", "command", {"watchdogToken": k.next_token(), "outputs": sw})
        s = k.safety()
        st = k.state("chassis")
        k.write_field("safety", "command", "outputs", 0)
        check(code is None, f"{how} softwareEstop: exception {code}")
        check(s["flags.softwareEstop"] and s["flags.estopLatched"] and not s["flags.motionPowerOn"],
              f"{how} softwareEstop: the first read after the reply shows flags 0x{s['flags']:04X}")
        check(st == SOD, f"{how} softwareEstop: chassis in {st} right after the reply")
        k.power_up()


# §8 Detector

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


# §9 Chassis pose

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


# ---------------------------------------------------------------- rig, simulator, main

def load_rig(path):
    import yaml
    with open(path) as fh:
        rig = yaml.safe_load(fh)
    if not isinstance(rig, dict):
        raise SystemExit(f"{path}: not a rig file (a mapping with name, kind, ...)")
    unknown = set(rig) - {"name", "kind", "scenario", "bus", "deviant", "control"}
    if unknown:
        raise SystemExit(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; allowed name, kind, scenario, bus, deviant, control")
    if rig.get("kind") not in ("simulator", "hardware"):
        raise SystemExit(f"{path}: kind must be simulator or hardware")
    bus = rig.get("bus") or {}
    if rig["kind"] == "hardware" and bool(bus.get("port")) == bool(bus.get("tcp")):
        raise SystemExit(f"{path}: a hardware rig names exactly one of bus.port or bus.tcp")
    deviant = rig.get("deviant")
    if deviant is not None:
        if rig["kind"] != "simulator":
            raise SystemExit(f"{path}: deviant is for simulator rigs only")
        if deviant == "all":
            deviant = ["all"]
        if not isinstance(deviant, list):
            raise SystemExit(f"{path}: deviant is a list of flags or 'all'")
        bad = [d for d in deviant if d != "all" and d not in DEVIATIONS]
        if bad:
            raise SystemExit(f"{path}: unknown deviant flag(s) {', '.join(bad)}; known {', '.join(DEVIATIONS)}")
        rig["deviant"] = deviant
    return rig


def resolve_serial(port):
    """A path, or usb-serial:SERIAL, or usb:VID:PID[:SERIAL] (as in the Swift rig files)."""
    if not port.startswith(("usb-serial:", "usb:")):
        return port
    from serial.tools import list_ports
    parts = port.split(":")
    for p in list_ports.comports():
        if parts[0] == "usb-serial" and p.serial_number == parts[1]:
            return p.device
        if parts[0] == "usb" and p.vid == int(parts[1], 16) and p.pid == int(parts[2], 16) \
                and (len(parts) < 4 or p.serial_number == parts[3]):
            return p.device
    raise SystemExit(f"no serial adapter matches {port}")


class SimulatorProcess:
    def __init__(self, build, rig):
        exe = os.path.join(build, "robot-sim")
        if not os.path.exists(exe):
            raise SystemExit(f"{exe} not found (build it, or give --build DIR)")
        self.tmp = tempfile.mkdtemp(prefix="conformance-")
        self.link = os.path.join(self.tmp, "bus0")
        cmd = [exe, "--link", self.link, "--control-port", "0", "--tcp-port", "0"]
        if rig.get("scenario"):
            scenario = rig["scenario"]
            cmd += ["--scenario", scenario if os.path.isabs(scenario) else os.path.join(ROOT, scenario)]
        if rig.get("deviant"):
            cmd += ["--deviant", "all" if "all" in rig["deviant"] else ",".join(rig["deviant"])]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self.control = self.tcp = None
        self.started = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        self.started.wait(20)
        if self.control is None:
            self.stop()
            raise SystemExit("robot-sim did not start: " + " | ".join(self.lines))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            m = re.search(r"Modbus TCP on ([\d.]+:\d+)", line)
            if m:
                self.tcp = m.group(1)
            m = re.search(r"control socket on ([\d.]+:\d+)", line)
            if m:
                self.control = m.group(1)
                self.started.set()
        self.started.set()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
    rig = load_rig(args.rig)
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
