#!/usr/bin/env python3
"""Writes test-vectors.json from register-map.json and the example values below.

This encoder is deliberately independent of the Swift code: it reads only the
map, so the Swift vectors test checks the Swift codecs against the map through a
second implementation. Run it after changing the map or the examples:

    python3 firmware-protocol/make-test-vectors.py
"""
import json
import os

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


def block_length(block):
    return max(f["offset"] + f.get("words", 2 if f["type"] in ("u32", "i32") else 1) for f in block["fields"])


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


def main():
    vectors = []
    for device_name, block_name, kind, values in EXAMPLES:
        device = next(d for d in MAP["devices"] if d["name"] == device_name)
        block = next(b for b in device["blocks"] if b["name"] == block_name)
        unit = device["unitId"]
        start = block["start"]
        regs = encode(block, values)
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
        vectors.append({
            "name": "%s.%s %s" % (device_name, block_name, kind),
            "device": device_name, "block": block_name, "unitId": unit,
            "request": hexs(request), "response": hexs(response),
            "registers": regs, "fields": values,
        })
    # Exceptions: the same request shapes with refusals.
    vectors.append({"name": "lift.command write out of range -> exception 3", "device": "lift", "block": "command",
                    "unitId": 3, "request": hexs(seal([3, 0x06, 0, 18, 0x13, 0x88])),
                    "response": hexs(seal([3, 0x86, 3])), "exception": 3})
    vectors.append({"name": "chassis read outside the map -> exception 2", "device": "chassis", "block": None,
                    "unitId": 2, "request": hexs(seal([2, 0x04, 0, 100, 0, 2])),
                    "response": hexs(seal([2, 0x84, 2])), "exception": 2})
    vectors.append({"name": "detector unsupported function 0x01 -> exception 1", "device": "detector", "block": None,
                    "unitId": 4, "request": hexs(seal([4, 0x01, 0, 0, 0, 8])),
                    "response": hexs(seal([4, 0x81, 1])), "exception": 1})
    out = {"comment": "Generated by make-test-vectors.py from register-map.json. Frames are Modbus RTU, "
                      "CRC-16/MODBUS low byte first. 'fields' are raw register values.",
           "vectors": vectors}
    with open(os.path.join(HERE, "test-vectors.json"), "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
