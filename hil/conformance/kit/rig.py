"""The rig: rig files, serial ports, starting robot-sim, the stimulus (control) socket."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading

from .common import ROOT, Skip


# ---------------------------------------------------------------- rig files, the simulator

def load_rig(path, deviations):
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
        bad = [d for d in deviant if d != "all" and d not in deviations]
        if bad:
            raise SystemExit(f"{path}: unknown deviant flag(s) {', '.join(bad)}; known {', '.join(deviations)}")
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

    def obstacle(self, metres):
        """A test piece `metres` ahead of the chassis' leading edge; None takes it away."""
        if metres is None:
            self.fault("obstacle", "obstacle", on=False)
        else:
            self.fault("obstacle", "obstacle", on=True, metres=metres)

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
