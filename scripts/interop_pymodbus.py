#!/usr/bin/env python3
"""Interoperability check with an independent Modbus stack (pymodbus).

1. pymodbus as the master against our simulator (robot-sim) over a pty and over TCP:
   reads every unit's identity and status, writes and reads back a command block,
   and checks the firmware's exception replies and the silence of an absent unit.
2. pymodbus as the slave (a TCP server laid out by register-map.json) and our
   `robotctl probe` as the master: every unit identified, every block decoded.

Prints 'N passed, N failed' and exits non-zero on any failure.
Usage: interop_pymodbus.py BUILD_DIR   (the folder holding robot-sim and robotctl)
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAP = json.load(open(os.path.join(ROOT, "firmware-protocol", "register-map.json")))
BUILD = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug")

results = []


def check(name, ok, detail=""):
    results.append((name, ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else "  -- " + detail))


def block_len(block):
    return max(f["offset"] + f.get("words", 2 if f["type"] in ("u32", "i32") else 1) for f in block["fields"])


def master_checks(client, transport):
    for dev in MAP["devices"]:
        unit = dev["unitId"]
        rr = client.read_input_registers(0, count=4, device_id=unit)
        check(f"{transport}: pymodbus reads {dev['name']} identity", not rr.isError() and rr.registers[0] == MAP["protocol"]["versionMajor"]
              and rr.registers[2] == dev["deviceType"], str(rr))
        for block in dev["blocks"]:
            if block["table"] != "input" or block["name"] == "identity":
                continue
            rr = client.read_input_registers(block["start"], count=block_len(block), device_id=unit)
            check(f"{transport}: pymodbus reads {dev['name']}.{block['name']} ({block_len(block)} registers)",
                  not rr.isError() and len(rr.registers) == block_len(block), str(rr))
    # Write the lift command block and read it back.
    values = [0, 1, 1750, 150, 300]
    wr = client.write_registers(16, values, device_id=3)
    rr = client.read_holding_registers(16, count=5, device_id=3)
    check(f"{transport}: pymodbus writes and reads back lift.command", not wr.isError() and not rr.isError() and rr.registers == values, f"{wr} {rr}")
    # Out of range: lift target 5.000 m -> exception 3.
    wr = client.write_register(18, 5000, device_id=3)
    check(f"{transport}: out-of-range write gives exception 3", wr.isError() and getattr(wr, "exception_code", None) == 3, str(wr))
    # Outside the map -> exception 2.
    rr = client.read_input_registers(100, count=2, device_id=2)
    check(f"{transport}: read outside the map gives exception 2", rr.isError() and getattr(rr, "exception_code", None) == 2, str(rr))
    # Unsupported function (read coils) -> exception 1.
    rr = client.read_coils(0, count=8, device_id=4)
    check(f"{transport}: unsupported function gives exception 1", rr.isError() and getattr(rr, "exception_code", None) == 1, str(rr))


def start_simulator(extra):
    link = os.path.join(tempfile.mkdtemp(prefix="interop-"), "bus0")
    proc = subprocess.Popen([os.path.join(BUILD, "robot-sim"), "--link", link] + extra,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 10
    while time.time() < deadline and len(lines) < 2 + (1 if "--tcp-port" in extra else 0):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    return proc, link, lines


def simulator_side():
    proc, link, lines = start_simulator(["--tcp-port", "0"])
    try:
        tcp_port = None
        for line in lines:
            m = re.search(r"TCP on 127\.0\.0\.1:(\d+)", line)
            if m:
                tcp_port = int(m.group(1))
        check("robot-sim starts and reports its ports", os.path.exists(link) and tcp_port is not None, "; ".join(lines))
        serial = ModbusSerialClient(link, baudrate=115200, timeout=0.5, retries=0)
        check("pymodbus opens the simulator's pty", serial.connect())
        master_checks(serial, "rtu")
        # An absent unit stays silent on RS-485: pymodbus sees no answer.
        try:
            rr = serial.read_input_registers(16, count=4, device_id=9)
            check("rtu: absent unit 9 does not answer", rr.isError(), str(rr))
        except Exception as error:  # pymodbus raises ModbusIOException on silence
            check("rtu: absent unit 9 does not answer", "No response" in str(error), str(error))
        serial.close()
        tcp = ModbusTcpClient("127.0.0.1", port=tcp_port, timeout=1, retries=0)
        check("pymodbus connects to the simulator over TCP", tcp.connect())
        master_checks(tcp, "tcp")
        tcp.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pymodbus_slave_side():
    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import ServerStop, StartTcpServer

    devices = {}
    for dev in MAP["devices"]:
        ir = [0] * 70
        ir[0:4] = [MAP["protocol"]["versionMajor"], MAP["protocol"]["versionMinor"], dev["deviceType"], 0x0203]
        if dev["name"] == "lift":
            ir[16:21] = [0x0427, 0x0001, 1234, 0, 0]
        if dev["name"] == "detector":
            serial = b"PYMODBUS-PEER\0\0\0"
            ir[32:40] = [serial[2 * i] << 8 | serial[2 * i + 1] for i in range(8)]
        # pymodbus data blocks are addressed from 1: block address 1 is wire address 0.
        devices[dev["unitId"]] = ModbusDeviceContext(ir=ModbusSequentialDataBlock(1, ir),
                                                     hr=ModbusSequentialDataBlock(1, [0] * 70))
    context = ModbusServerContext(devices=devices, single=False)
    port = free_port()
    thread = threading.Thread(target=lambda: StartTcpServer(context=context, address=("127.0.0.1", port)), daemon=True)
    thread.start()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    out = subprocess.run([os.path.join(BUILD, "robotctl"), "probe", "--tcp", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    check("robotctl probe against a pymodbus slave exits 0", out.returncode == 0, text[-2000:])
    check("robotctl sees firmware 2.3 on every unit", text.count("firmware 2.3") == 4, text[-2000:])
    check("robotctl decodes the pymodbus lift height", "status.height                 1.234 m" in text, text[-2000:])
    check("robotctl decodes the pymodbus detector serial", '"PYMODBUS-PEER"' in text, text[-2000:])
    try:
        ServerStop()
    except Exception:
        pass


def main():
    simulator_side()
    pymodbus_slave_side()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
