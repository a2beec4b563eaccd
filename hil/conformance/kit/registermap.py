"""The register map (firmware-protocol/register-map.json): blocks, fields, encode/decode."""
import json
import os
import struct

from .common import ROOT, MapMissing

MAP_PATH = os.path.join(ROOT, "firmware-protocol", "register-map.json")

# Boot defaults from the protocol 1.1 rules, used only when the map has no `bootDefault`.
FALLBACK_BOOT_DEFAULTS = {
    ("safety", "command"): {"watchdogToken": 0, "watchdogTimeout": 500, "outputs": 0},
    ("chassis", "command"): {"controlword": 0, "mode": 0, "targetA": 0, "targetB": 0, "speed": 500,
                             "turnRate": 3000, "acceleration": 500},
    ("chassis", "pose"): {"x": 0, "y": 0, "heading": 0},
    ("lift", "command"): {"controlword": 0, "mode": 0, "targetHeight": 1000, "speed": 200, "acceleration": 400},
    ("detector", "command"): {"control": 1, "alarmLevel": 250},
}


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
