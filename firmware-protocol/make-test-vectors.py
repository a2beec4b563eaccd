#!/usr/bin/env python3
"""Writes test-vectors.json from register-map.json and the example values below.

This encoder is deliberately independent of the Swift code: it reads only the
map, so the Swift vectors test checks the Swift codecs against the map through a
second implementation. Run it after changing the map or the examples:

    python3 firmware-protocol/make-test-vectors.py            # writes test-vectors.json
    python3 firmware-protocol/make-test-vectors.py --check    # exits 1 if the file differs

The output has four lists (see README.md, "Test vectors"):
  vectors            block reads and writes of 1.0 blocks, a 0x03 read-back, and exception
                     replies (every entry has request, response and either registers and
                     fields or an exception code)
  newBlockVectors    reads and writes of the blocks added in 1.1 (boot, chassis pose),
                     same shape as `vectors`
  singleWriteVectors 0x06 writes and their echo
  silentVectors      frames no unit may answer ("response": null)
The entries of `vectors` from the 1.0 generator come first and are unchanged.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAP = json.load(open(os.path.join(HERE, "register-map.json")))

# Example values, in raw register units (see the map for scale and unit).
EXAMPLES = [
    ("safety", "identity", "read", {"protocolMajor": 1, "protocolMinor": 0, "deviceType": 1, "firmwareVersion": 0x0102}),
    ("safety", "status", "read", {"flags": 0b1000, "watchdogRemaining": 420, "batteryVoltage": 4850,
                                   "batteryCharge": 87, "uptime": 123456789}),
    ("safety", "command", "write", {"watchdogToken": 0x1234, "watchdogTimeout": 500, "outputs": 0b0001}),
    ("chassis", "status", "read", {"statusword": 0x1427, "flags": 0b10001, "positionX": -12345, "positionY": 6789012,
                                    "heading": -9000, "velocity": -250, "odometer": 4000000000, "faultCode": 0}),
    ("chassis", "command", "write", {"controlword": 0x001F, "mode": 2, "targetA": 15250, "targetB": -3000,
                                      "speed": 500, "turnRate": 4500, "acceleration": 400}),
    ("lift", "status", "read", {"statusword": 0x0437, "flags": 0b1001, "height": 1500, "velocity": 0, "faultCode": 0}),
    ("lift", "command", "write", {"controlword": 0x001F, "mode": 1, "targetHeight": 2500, "speed": 200, "acceleration": 400}),
    ("detector", "status", "read", {"flags": 0b1001, "doseRate": 1385, "counts": 4294967000, "timeBase": 86400000,
                                     "faultCode": 0}),
    ("detector", "info", "read", {"serialNumber": "GD-2026-00417", "calibrationFactor": 1023000,
                                   "calibrationDate": 20260315, "calibrationExpiry": 20270315, "sensitivity": 3000,
                                   "timeConstant": 2000, "rangeMax": 1000000000}),
    ("detector", "command", "write", {"control": 1, "alarmLevel": 250}),
]

# Protocol 1.1 additions to `vectors` (blocks the 1.0 Swift codecs know).
BOOT_DEFAULTS = object()  # marker: take the values from the map's bootDefault
EXAMPLES_11 = [
    ("chassis", "identity", "read", {"protocolMajor": 1, "protocolMinor": 1, "deviceType": 2, "firmwareVersion": 0x0200},
     "a 1.1 chassis", ["C10.4"]),
    ("chassis", "command", "read", BOOT_DEFAULTS,
     "after power-up, before any write: 0x03 reads back the boot defaults", ["F3.8", "B4.1"]),
]

# Blocks new in 1.1 (listed separately: a 1.0 codec set has no codec for them).
NEW_BLOCK_EXAMPLES = [
    ("safety", "boot", "read", {"bootCount": 17, "resetCause": 0, "features": 0}, None, ["B4.3"]),
    ("chassis", "boot", "read", {"bootCount": 4242, "resetCause": 2, "features": 0b1}, None, ["B4.3", "C10.4"]),
    ("lift", "boot", "read", {"bootCount": 65535, "resetCause": 1, "features": 0}, None, ["B4.3"]),
    ("detector", "boot", "read", {"bootCount": 0, "resetCause": 3, "features": 0},
     "bootCount wrapped from 65535 to 0", ["B4.3"]),
    ("chassis", "pose", "write", {"x": 12500, "y": -3250, "heading": 9000},
     "chassis at standstill with no set-point executing; afterwards the status reports x 12500, y -3250, "
     "heading 9000 and poseSet", ["F3.10", "Q9.2"]),
]

# 0x06 writes: (device, block, field, raw value, given, rules). The reply echoes the request.
SINGLE_WRITES = [
    ("safety", "command", "outputs", 0b0100, "the e-stop as a single-register write (softwareEstop)", ["F3.8", "W7.8"]),
    ("chassis", "command", "controlword", 0x0006, "shutdown: switch on disabled -> ready to switch on", ["F3.8", "D5.1"]),
]


def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def seal(body):
    crc = crc16(body)
    return body + [crc & 0xFF, crc >> 8]


def hexs(frame):
    return " ".join("%02x" % b for b in frame)


def words(f):
    return f.get("words", 2 if f["type"] in ("u32", "i32") else 1)


def block_length(block):
    return max(f["offset"] + words(f) for f in block["fields"])


def encode(block, values):
    regs = [0] * block_length(block)
    for f in block["fields"]:
        v = values.get(f["name"], 0)
        o = f["offset"]
        t = f["type"]
        if t == "ascii":
            raw = v.encode("ascii").ljust(f["words"] * 2, b"\0")
            for i in range(f["words"]):
                regs[o + i] = raw[2 * i] << 8 | raw[2 * i + 1]
        elif t in ("u16", "bits16", "i16"):
            regs[o] = v & 0xFFFF
        else:
            v &= 0xFFFFFFFF
            regs[o] = v >> 16
            regs[o + 1] = v & 0xFFFF
    return regs


def find(device_name, block_name):
    device = next(d for d in MAP["devices"] if d["name"] == device_name)
    block = next(b for b in device["blocks"] if b["name"] == block_name) if block_name else None
    return device, block


def value_problem(block, name, v):
    """Why a write of raw `v` to field `name` is exception 3 (F3.4), or None."""
    f = next(x for x in block["fields"] if x["name"] == name)
    if "min" in f and v < f["min"] or "max" in f and v > f["max"]:
        return "outside %s..%s" % (f.get("min"), f.get("max"))
    if "values" in f and v not in f["values"]:
        return "not one of %s" % f["values"]
    if f["type"] == "bits16" and f.get("bits") and f["access"] == "rw":
        defined = sum(1 << b["bit"] for b in f["bits"])
        if v & ~defined:
            return "undefined bits 0x%04x" % (v & ~defined)
    return None


def check_write(block, values):
    for name, v in values.items():
        problem = value_problem(block, name, v)
        if problem:
            raise SystemExit("example %s.%s: %s" % (block["name"], name, problem))


def frames(unit, block, kind, regs):
    start = block["start"]
    n = len(regs)
    if kind == "read":
        fc = 0x04 if block["table"] == "input" else 0x03
        request = seal([unit, fc, start >> 8, start & 0xFF, n >> 8, n & 0xFF])
        body = [unit, fc, 2 * n]
        for r in regs:
            body += [r >> 8, r & 0xFF]
        response = seal(body)
    else:
        body = [unit, 0x10, start >> 8, start & 0xFF, n >> 8, n & 0xFF, 2 * n]
        for r in regs:
            body += [r >> 8, r & 0xFF]
        request = seal(body)
        response = seal([unit, 0x10, start >> 8, start & 0xFF, n >> 8, n & 0xFF])
    return request, response


def block_vector(device_name, block_name, kind, values, given=None, rules=None):
    device, block = find(device_name, block_name)
    if values is BOOT_DEFAULTS:
        values = {f["name"]: f["bootDefault"] for f in block["fields"]}
    if kind == "write":
        check_write(block, values)
    regs = encode(block, values)
    request, response = frames(device["unitId"], block, kind, regs)
    v = {"name": "%s.%s %s" % (device_name, block_name, kind),
         "device": device_name, "block": block_name, "unitId": device["unitId"],
         "request": hexs(request), "response": hexs(response),
         "registers": regs, "fields": values}
    if given:
        v["given"] = given
    if rules:
        v["rules"] = rules
    return v


def exception_vector(name, device_name, block_name, request_body, code, given=None, rules=None):
    device, _ = find(device_name, None)
    unit = device["unitId"]
    v = {"name": name, "device": device_name, "block": block_name, "unitId": unit,
         "request": hexs(seal(request_body)), "response": hexs(seal([unit, request_body[1] | 0x80, code])),
         "exception": code}
    if given:
        v["given"] = given
    if rules:
        v["rules"] = rules
    return v


def write_multiple_body(unit, start, regs):
    body = [unit, 0x10, start >> 8, start & 0xFF, len(regs) >> 8, len(regs) & 0xFF, 2 * len(regs)]
    for r in regs:
        body += [r >> 8, r & 0xFF]
    return body


def build():
    vectors = [block_vector(d, b, k, values) for d, b, k, values in EXAMPLES]
    # Exceptions: the same request shapes with refusals (1.0).
    vectors.append({"name": "lift.command write out of range -> exception 3", "device": "lift", "block": "command",
                    "unitId": 3, "request": hexs(seal([3, 0x06, 0, 18, 0x13, 0x88])),
                    "response": hexs(seal([3, 0x86, 3])), "exception": 3})
    vectors.append({"name": "chassis read outside the map -> exception 2", "device": "chassis", "block": None,
                    "unitId": 2, "request": hexs(seal([2, 0x04, 0, 100, 0, 2])),
                    "response": hexs(seal([2, 0x84, 2])), "exception": 2})
    vectors.append({"name": "detector unsupported function 0x01 -> exception 1", "device": "detector", "block": None,
                    "unitId": 4, "request": hexs(seal([4, 0x01, 0, 0, 0, 8])),
                    "response": hexs(seal([4, 0x81, 1])), "exception": 1})

    # Protocol 1.1 additions.
    for d, b, k, values, given, rules in EXAMPLES_11:
        v = block_vector(d, b, k, values, given, rules)
        if k == "read" and b == "command":
            v["name"] = "%s.%s read-back (0x03) at boot defaults" % (d, b)
        vectors.append(v)

    _, chassis_command = find("chassis", "command")
    enable_and_start = {"controlword": 0x001F, "mode": 1, "targetA": 2000, "targetB": 0,
                        "speed": 300, "turnRate": 3000, "acceleration": 500}
    check_write(chassis_command, enable_and_start)  # every value is legal: the refusal is the state (D5.3)
    vectors.append(exception_vector(
        "chassis.command enable + new set-point (0x001F) from switched on -> exception 4", "chassis", "command",
        write_multiple_body(2, 16, encode(chassis_command, enable_and_start)), 4,
        given="chassis in switched on; afterwards still switched on and no register changed", rules=["D5.3", "F3.6"]))
    vectors.append(exception_vector(
        "safety.status read while booting -> exception 6", "safety", "status", [1, 0x04, 0, 16, 0, 6], 6,
        given="the safety unit is booting (within 2 s of power-up)", rules=["F3.9"]))
    assert value_problem(chassis_command, "controlword", 0x002F)
    vectors.append(exception_vector(
        "chassis.command controlword with undefined bit 5 (0x002F) -> exception 3", "chassis", "command",
        [2, 0x06, 0, 16, 0x00, 0x2F], 3, rules=["F3.4", "C10.3"]))
    vectors.append(exception_vector(
        "chassis.command 0x06 to holding 18 (high word of targetA) -> exception 2", "chassis", "command",
        [2, 0x06, 0, 18, 0x00, 0x00], 2, rules=["F3.3"]))
    _, lift_command = find("lift", "command")
    assert value_problem(lift_command, "mode", 2)
    vectors.append(exception_vector(
        "lift.command mode 2 (not defined) -> exception 3", "lift", "command",
        [3, 0x06, 0, 17, 0x00, 0x02], 3, rules=["F3.4", "D5.13"]))
    _, pose = find("chassis", "pose")
    vectors.append(exception_vector(
        "chassis.pose write of x only -> exception 3", "chassis", "pose",
        write_multiple_body(2, pose["start"], encode(pose, {"x": 1000})[:2]), 3, rules=["F3.10"]))

    new_blocks = [block_vector(*e) for e in NEW_BLOCK_EXAMPLES]

    single = []
    for d, b, field, value, given, rules in SINGLE_WRITES:
        device, block = find(d, b)
        check_write(block, {field: value})
        f = next(x for x in block["fields"] if x["name"] == field)
        address = block["start"] + f["offset"]
        request = seal([device["unitId"], 0x06, address >> 8, address & 0xFF, value >> 8, value & 0xFF])
        single.append({"name": "%s.%s.%s 0x06 write" % (d, b, field), "device": d, "block": b,
                       "unitId": device["unitId"], "field": field, "address": address, "value": value,
                       "request": hexs(request), "response": hexs(request), "given": given, "rules": rules})

    good = seal([1, 0x04, 0, 16, 0, 6])
    bad_crc = good[:-1] + [good[-1] ^ 0xFF]
    silent = [
        {"name": "safety.status read with a bad CRC: no unit answers", "unitId": 1, "request": hexs(bad_crc),
         "response": None, "rules": ["U2.1"]},
        {"name": "read addressed to unit 9 (no such unit): no unit answers", "unitId": 9,
         "request": hexs(seal([9, 0x04, 0, 16, 0, 6])), "response": None, "rules": ["U2.1"]},
        {"name": "broadcast (unit 0) 0x06 of 0x000F to holding 16: no unit answers or executes it", "unitId": 0,
         "request": hexs(seal([0, 0x06, 0, 16, 0x00, 0x0F])), "response": None,
         "given": "holding 16 is the drives' controlword and the safety unit's watchdogToken: "
                  "no unit changes a register or a state", "rules": ["U2.2"]},
    ]

    return {"comment": "Generated by make-test-vectors.py from register-map.json. Frames are Modbus RTU, "
                       "CRC-16/MODBUS low byte first. 'fields' are raw register values. 'given' is the unit's "
                       "state the reply assumes; 'rules' are the README rule IDs the vector shows.",
            "protocol": {"versionMajor": MAP["protocol"]["versionMajor"], "versionMinor": MAP["protocol"]["versionMinor"]},
            "vectors": vectors,
            "newBlockVectors": new_blocks,
            "singleWriteVectors": single,
            "silentVectors": silent}


def main():
    text = json.dumps(build(), indent=2) + "\n"
    path = os.path.join(HERE, "test-vectors.json")
    if "--check" in sys.argv[1:]:
        with open(path) as f:
            if f.read() != text:
                print("test-vectors.json is out of date: run python3 firmware-protocol/make-test-vectors.py")
                sys.exit(1)
        print("test-vectors.json is up to date")
        return
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
