#!/usr/bin/env python3
"""The officer's phone loses the network: real kernel packet loss and gaps, with delay.

Builds its own network namespace and a veth pair (10.213.0.1/30 on the robot's side in
the root namespace, 10.213.0.2/30 on the phone's side in the namespace); no other address
is used. robotd (with the simulator, the clean 20 ft container, simulator 3x real time, and a
test profile: the demo profile with a denser grid, 42 points, so that one scan lasts the
whole scan part) listens on 10.213.0.1 only. The "phone" is a Python client run inside the namespace: it
logs in, holds the motion lease and sends a keep-alive every 0.25 s (each in its own
connection, so one lost packet does not hold up the next), logging each one's outcome.
The observer runs in the root namespace and reads robotd directly (GET /api/v1/state and
/api/v1/scans/ID at 20 Hz): its path is not the one under test.

How the network is degraded (chosen automatically, printed at the start and in the summary):
  netem      if `tc qdisc add dev VETH root netem ...` works (the kernel's sch_netem):
             netem on the phone's veth, baseline `delay 50ms 20ms loss 2%`, a gap of G s
             is `loss 100%` for G s. Everything in the kernel.
  nftables   otherwise (kernels built without CONFIG_NET_SCH_NETEM, like this project's
             machines and CI), if nft works in the namespace. LOSS AND GAPS ARE REAL KERNEL
             DROPS: a table `inet commsloss` in the phone's namespace, chains on the input
             and output hooks, `numgen random mod 100 lt 2 drop` on the phone's veth in each
             direction (the 2 % baseline), and a gap is a plain `drop` rule added to both
             chains and deleted after G s; TCP really retransmits. DELAY IS EMULATED IN USER
             SPACE (netem being unavailable): a small TCP relay in the phone's namespace
             listens on 127.0.0.1 there and forwards to robotd at 10.213.0.1, holding each
             chunk it reads 50 ms +- 20 ms (uniform, order kept) before it forwards it, in
             both directions; the phone talks to robotd through it. Loss applies only on the
             veth, not on the namespace's loopback between the phone and the relay.
             Named nft counters say how many packets the baseline and the gaps dropped.
  link-down  only with `--link-down-gaps` (NOT the real test): each gap sets the phone's
             veth down, no baseline loss or delay.
Neither netem nor nftables usable (and no --link-down-gaps): exit status 2, saying why.

Cases (the policy, docs/api.md and the brief for scanCommsLossSeconds):
  walk 0.5 s gap   a 4 m walk completes with no stop. The margin is thin: with keep-alives
                   every 0.25 s the silence is up to about 0.8 s, and when the baseline loss
                   also takes the first keep-alive after the gap (a lost SYN costs 1 s) it
                   exceeds the 1 s deadman and the stop is correct. So a deadman stop is
                   checked against the keep-alive log (refused as stale within 1 s of the
                   last accepted one, or a stop before 1 s of silence: robotd wrong, FAIL)
                   and, if robotd was consistent, the case runs once more; both attempts
                   are reported.
  walk 2 s gap     deadman stop within 1.5 s of the gap's start, lease stale, robot halted
  scan baseline    a demo scan under the baseline loss/delay alone runs on
  scan 0.5/2/5 s   the scan never stops or pauses, completedPoints keeps growing, the lease
                   is never stale and the phone's keep-alives are accepted again after the
                   gap without taking the lease again (none refused)
  scan 12 s gap    the scan runs on for safety.scanCommsLossSeconds (8 s here), then pauses
                   ("comms lost" in pausedReason) and the robot halts; after the gap the
                   officer's one action (take the lease again: POST /api/v1/lease, then POST
                   resume with X-Lease) and completedPoints grows again
  whole scan part  no stop or pause outside the gaps, no keep-alive refused outside the gaps
                   (and the pause after the long gap, until the officer takes control)
--quick runs walk 0.5 s and 2 s, the scan baseline, scan 2 s and 12 s (about 1 minute;
the full run about 75 s; budgets 115 s and 290 s).

Needs root and `ip` (iproute2); `tc` (iproute2) with sch_netem, or `nft` (Debian's
nftables). Logs (robotd, the phone's keep-alives, the observer's samples, the relay's
counts) go to test-output/comms-loss/. Prints a table; exits 1 if a case failed, 2 if it
cannot run. Cleans up: the namespace (and with it the nft table and the veth's peer), the
veth, robotd, the phone and the relay (both also quit when their stdin closes).

Usage: scripts/comms_loss.py [path/to/bin] [--quick] [--link-down-gaps]
"""
import argparse
import atexit
import http.client
import json
import math
import os
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

from campaign import ROOT, add_user, bin_dir as find_bin_dir, stop as stop_process

ROBOT_ADDRESS, PHONE_ADDRESS, PREFIX = "10.213.0.1", "10.213.0.2", 30
BASELINE = "delay 50ms 20ms loss 2%"     # netem
GAP = "loss 100%"                        # netem
LOSS_PERCENT = 2                         # nftables: per direction, on the phone's veth
RELAY_DELAY, RELAY_JITTER = 0.050, 0.020  # nftables mode: user-space delay per chunk, each way
NFT_TABLE = "commsloss"
DEADMAN = 1.0            # safety.deadmanTimeoutSeconds (the default, set explicitly)
COMMS_LIMIT = 8.0        # safety.scanCommsLossSeconds for the test (default 30)
KEEPALIVE_PERIOD = 0.25
TIME_SCALE = 3           # simulator: a 4 m walk takes about 3 s, a demo-scan point about 2.3 s
STOP_WITHIN = 1.5        # deadman stop after the gap's start, at the latest
CONTAINER = {"containerNumber": "CSQU3054383", "size": "22G1", "xMetres": 0, "yMetres": 0, "headingDegrees": 0, "profile": "commsloss"}
# The demo profile with a denser grid (42 points instead of 16, about 2 s each at 3x), so
# one scan lasts the whole scan part: a second scan would start from beside the container.
PROFILE_CHANGES = {"name: demo (short)": "name: comms-loss test (the demo profile, denser grid)",
                   "maxColumnSpacingMetres: 2.0": "maxColumnSpacingMetres: 1.0",
                   "heightsMetres: [1.0, 2.0]": "heightsMetres: [1.0, 1.5, 2.0]"}
PASSWORDS = {"officer": "officer phone password 1", "watcher": "observer password 1"}
OUT = os.path.join(ROOT, "test-output", "comms-loss")
PID = os.getpid()
NAMESPACE, ROOT_VETH, PHONE_VETH = f"commsloss-{PID}", f"clr{PID}", f"clp{PID}"


class CannotRun(Exception):
    """The environment cannot run the test (exit status 2)."""


class OutOfTime(Exception):
    pass


def run(*command, check=True, quiet=False, input=None):
    result = subprocess.run(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=20, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stdout.strip()}")
    return result


def in_namespace(*command, check=True, input=None):
    return run("ip", "netns", "exec", NAMESPACE, *command, check=check, input=input)


# ---------------------------------------------------------------- the network

class Network:
    """The namespace, the veth pair, and what degrades the phone's link: netem, nftables
    (loss and gaps; delay then comes from the user-space relay) or, with --link-down-gaps,
    the link set down. `gap(seconds)` cuts the phone off for that long."""

    def __init__(self, link_down_gaps):
        self.mode = "link-down" if link_down_gaps else None     # then "netem" or "nftables"
        self.made = False
        self.gap_rules = None
        self.why_not_netem = None

    def set_up(self):
        if os.geteuid() != 0:
            raise CannotRun("needs root (network namespaces, veth, tc or nft)")
        if not shutil.which("ip"):
            raise CannotRun("'ip' not found: install Debian's iproute2")
        self.remove_stale()
        used = run("ip", "-o", "-4", "addr", "show").stdout
        if re.search(r"inet 10\.213\.0\.[0-3]/", used):
            raise CannotRun("10.213.0.0/30 is already in use on this machine (another run?):\n" + used)
        self.made = True
        run("ip", "netns", "add", NAMESPACE)
        run("ip", "link", "add", ROOT_VETH, "type", "veth", "peer", "name", PHONE_VETH, "netns", NAMESPACE)
        run("ip", "addr", "add", f"{ROBOT_ADDRESS}/{PREFIX}", "dev", ROOT_VETH)
        run("ip", "link", "set", ROOT_VETH, "up")
        run("ip", "-n", NAMESPACE, "addr", "add", f"{PHONE_ADDRESS}/{PREFIX}", "dev", PHONE_VETH)
        run("ip", "-n", NAMESPACE, "link", "set", PHONE_VETH, "up")
        run("ip", "-n", NAMESPACE, "link", "set", "lo", "up")
        if self.mode == "link-down":
            return
        # netem if the kernel has it (everything in the kernel), else nftables.
        if shutil.which("tc"):
            problem = self.netem("add", BASELINE)
            if problem and shutil.which("modprobe"):
                loaded = run("modprobe", "sch_netem", check=False)
                problem = self.netem("add", BASELINE) and (problem + "; modprobe sch_netem: " + (loaded.stdout.strip() or "ok"))
        else:
            problem = "'tc' not found (Debian: iproute2)"
        if not problem:
            self.mode = "netem"
            return
        self.why_not_netem = problem
        nft_problem = self.nft_set_up() if shutil.which("nft") else "'nft' not found (Debian: nftables; scripts/setup.sh installs it)"
        if not nft_problem:
            self.mode = "nftables"
            return
        raise CannotRun(
            "neither netem nor nftables can degrade the phone's link here.\n"
            "netem: `tc qdisc add dev VETH root netem ...` failed: " + problem + "\n" + kernel_netem_hint()
            + "nftables: " + nft_problem + "\n"
            "The test needs either the kernel's sch_netem (Debian: the module ships in linux-image-*, `modprobe "
            "sch_netem`) or nftables in a network namespace (kernel nf_tables, Debian's nftables package), and "
            "CAP_NET_ADMIN + CAP_SYS_ADMIN (in a container: --privileged).\n"
            "(`--link-down-gaps` runs the cases with gaps made by setting the phone's link down, without "
            "loss or delay: not the real test.)")

    def netem(self, verb, parameters):
        """None if tc accepted it, else its message."""
        result = in_namespace("tc", "qdisc", verb, "dev", PHONE_VETH, "root", "netem", *parameters.split(), check=False)
        return None if result.returncode == 0 else result.stdout.strip()

    def nft(self, script, echo=False):
        """Runs an nft script in the namespace (one transaction): (None, output) or (message, output)."""
        result = in_namespace("nft", *(["-e", "-a"] if echo else []), "-f", "-", check=False, input=script)
        return (None if result.returncode == 0 else (result.stdout.strip() or f"nft exit {result.returncode}")), result.stdout

    def nft_set_up(self):
        """The table with the baseline loss in both directions on the phone's veth. None if it worked."""
        problem, _ = self.nft(f"""table inet {NFT_TABLE} {{
  counter loss_in {{ }}
  counter loss_out {{ }}
  counter gap_in {{ }}
  counter gap_out {{ }}
  chain input {{ type filter hook input priority 0; policy accept;
    iifname "{PHONE_VETH}" numgen random mod 100 lt {LOSS_PERCENT} counter name "loss_in" drop
  }}
  chain output {{ type filter hook output priority 0; policy accept;
    oifname "{PHONE_VETH}" numgen random mod 100 lt {LOSS_PERCENT} counter name "loss_out" drop
  }}
}}
""")
        if problem:
            return f"`nft -f` (table inet {NFT_TABLE} in the namespace) failed: {problem}"
        listed = in_namespace("nft", "list", "table", "inet", NFT_TABLE, check=False)
        if listed.returncode != 0 or "numgen random" not in listed.stdout:
            return f"the table did not load as written: {listed.stdout.strip()}"
        return None

    def counters(self):
        """The nft counters (packets dropped): loss_in/out (baseline) and gap_in/out, or {}."""
        if self.mode != "nftables" or not self.made:
            return {}
        result = in_namespace("nft", "-j", "list", "counters", "table", "inet", NFT_TABLE, check=False)
        try:
            return {item["counter"]["name"]: item["counter"]["packets"]
                    for item in json.loads(result.stdout)["nftables"] if "counter" in item}
        except (ValueError, KeyError):
            return {}

    def cut(self):
        if self.mode == "link-down":
            run("ip", "-n", NAMESPACE, "link", "set", PHONE_VETH, "down")
        elif self.mode == "netem":
            problem = self.netem("change", GAP)
            if problem:
                raise RuntimeError("tc qdisc change (gap): " + problem)
        else:
            problem, echoed = self.nft(f'insert rule inet {NFT_TABLE} input iifname "{PHONE_VETH}" counter name "gap_in" drop\n'
                                       f'insert rule inet {NFT_TABLE} output oifname "{PHONE_VETH}" counter name "gap_out" drop\n',
                                       echo=True)
            handles = re.findall(r"^insert rule inet \S+ (input|output) .*# handle (\d+)$", echoed, re.M)
            if problem or len(handles) != 2:
                raise RuntimeError(f"nft (the gap's drop rules): {problem or echoed.strip()}")
            self.gap_rules = handles

    def restore(self):
        if self.mode == "link-down":
            run("ip", "-n", NAMESPACE, "link", "set", PHONE_VETH, "up")
        elif self.mode == "netem":
            problem = self.netem("change", BASELINE)
            if problem:
                raise RuntimeError("tc qdisc change (baseline): " + problem)
        elif self.gap_rules:
            rules, self.gap_rules = self.gap_rules, None
            problem, _ = self.nft("".join(f"delete rule inet {NFT_TABLE} {chain} handle {handle}\n" for chain, handle in rules))
            if problem:
                raise RuntimeError(f"nft (deleting the gap's drop rules {rules}): {problem}")

    def gap(self, seconds):
        """Cuts the phone off for `seconds`; returns (start, end) on the monotonic clock,
        each taken once tc, nft or ip has returned."""
        self.cut()
        start = time.monotonic()
        try:
            time.sleep(max(0.0, start + seconds - time.monotonic()))
        finally:
            self.restore()
        return start, time.monotonic()

    def describe(self):
        if self.mode is None:
            return "not set up"
        if self.mode == "link-down":
            return "gaps by setting the phone's veth down (NOT the real test: no baseline loss or delay)"
        if self.mode == "netem":
            return f"netem on the phone's veth: baseline `{BASELINE}`, gaps `{GAP}` (all in the kernel)"
        return (f"nftables (no netem in this kernel): REAL kernel drops, {LOSS_PERCENT} % of packets each way on the phone's veth "
                f"(numgen random), gaps a drop rule on input and output; delay EMULATED IN USER SPACE by a TCP relay in the "
                f"phone's namespace holding each chunk {RELAY_DELAY * 1000:.0f} ms +- {RELAY_JITTER * 1000:.0f} ms each way")

    def tear_down(self):
        if not self.made:
            return
        self.made = False
        run("ip", "link", "del", ROOT_VETH, check=False)        # takes its peer with it
        run("ip", "netns", "del", NAMESPACE, check=False)       # and the nft table with it

    @staticmethod
    def remove_stale():
        """Namespaces and veths an earlier run (killed with SIGKILL) left behind."""
        for line in run("ip", "netns", "list", check=False).stdout.splitlines():
            match = re.match(r"commsloss-(\d+)\b", line)
            if match and not os.path.exists(f"/proc/{match.group(1)}"):
                run("ip", "netns", "del", f"commsloss-{match.group(1)}", check=False)
        for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
            match = re.match(r"\d+: clr(\d+)[@:]", line)
            if match and not os.path.exists(f"/proc/{match.group(1)}"):
                run("ip", "link", "del", f"clr{match.group(1)}", check=False)


def kernel_netem_hint():
    for path in ("/proc/config.gz", f"/boot/config-{os.uname().release}"):
        try:
            if path.endswith(".gz"):
                import gzip
                text = gzip.open(path, "rt").read()
            else:
                text = open(path).read()
        except OSError:
            continue
        line = next((l for l in text.splitlines() if "CONFIG_NET_SCH_NETEM" in l), "CONFIG_NET_SCH_NETEM absent")
        return f"This kernel ({os.uname().release}, {path}): {line}\n"
    return f"This kernel: {os.uname().release} (no config found to check CONFIG_NET_SCH_NETEM)\n"


# ---------------------------------------------------------------- robotd

def start_robotd(bins, work, port):
    """robotd with the simulator, bound to the veth address. Keys today's robotd may not
    know yet (server.allowPlaintext, safety.scanCommsLossSeconds) are dropped one by one if
    it refuses them; a robotd that does not start (being rebuilt?) is retried. Returns
    (process, log path, dropped keys)."""
    optional = {"allowPlaintext": "  allowPlaintext: true\n", "scanCommsLossSeconds": f"  scanCommsLossSeconds: {COMMS_LIMIT:g}\n"}
    dropped, failures = [], 0
    log_path = os.path.join(work, "robotd.log")
    profiles = os.path.join(work, "profiles")
    os.makedirs(profiles, exist_ok=True)
    text = open(os.path.join(ROOT, "profiles", "demo.yaml")).read()
    for old, new in PROFILE_CHANGES.items():
        if old not in text:
            raise RuntimeError(f"profiles/demo.yaml has changed: no '{old}' in it to make the test's denser profile")
        text = text.replace(old, new)
    for name, content in (("demo.yaml", open(os.path.join(ROOT, "profiles", "demo.yaml")).read()), ("commsloss.yaml", text)):
        with open(os.path.join(profiles, name), "w") as f:
            f.write(content)
    config = os.path.join(work, "robotd.yaml")
    while True:
        keep = lambda key: optional[key] if key not in dropped else ""
        with open(config, "w") as f:
            f.write(f"robot: RIR-COMMS\nstore: {os.path.join(work, 'scans.sqlite')}\n"
                    f"safety:\n  deadmanTimeoutSeconds: {DEADMAN:g}\n{keep('scanCommsLossSeconds')}"
                    f"server:\n  host: {ROBOT_ADDRESS}\n  port: {port}\n{keep('allowPlaintext')}"
                    f"  profiles: {profiles}\n  defaultProfile: demo\n  reports: {os.path.join(work, 'reports')}\n")
        arguments = [os.path.join(bins, "robotd"), "--config", config, "--sim", "--scenario", "hil/scenarios/clean-20ft.yaml",
                     "--sim-time-scale", str(TIME_SCALE)]
        daemon, problem = None, None
        with open(log_path, "w") as log:
            try:
                daemon = subprocess.Popen(arguments, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            except OSError as error:
                problem = f"could not run robotd: {error}"
        deadline = time.time() + 30
        while daemon and time.time() < deadline:
            if "command server listening" in open(log_path).read():
                return daemon, log_path, dropped
            if daemon.poll() is not None:
                break
            time.sleep(0.1)
        text = open(log_path).read()
        if daemon:
            stop_process(daemon, 10)
            problem = f"robotd did not start (exit {daemon.returncode}): {text.strip()[-600:]}"
        unknown = [k for k in optional if k not in dropped and f"unknown key '{k}'" in text]
        if unknown:
            print(f"  robotd refuses the key {unknown[0]} (not in this build): retrying without it", flush=True)
            dropped.append(unknown[0])
            continue
        failures += 1
        if failures >= 3:
            raise RuntimeError(problem)
        print(f"  {problem}\n  retrying in 10 s (the binaries may be being rebuilt)", flush=True)
        time.sleep(10)


def die_with_parent():
    """In the child before exec: SIGTERM when this script dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def request(port, method, path, token=None, body=None, lease=None, timeout=5.0):
    """One request on a fresh connection: (status, JSON or text), or (None, error text)."""
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = "Bearer " + token
    if lease:
        headers["X-Lease"] = lease
    connection = http.client.HTTPConnection(ROBOT_ADDRESS, port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw, status = response.read(), response.status
    except (OSError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"
    finally:
        connection.close()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


# ---------------------------------------------------------------- the relay (user-space delay)

RELAY = r"""
# Delay emulated in user space (the kernel has no netem): a TCP relay inside the phone's
# network namespace. Listens on 127.0.0.1 there (its port on stdout), forwards each
# connection to robotd, and holds every chunk it reads DELAY +- JITTER s (uniform) before
# forwarding it, in both directions and in order (a chunk never overtakes the one before).
# Packet loss is not made here: it is the kernel's (nftables) on the veth behind. A
# connection whose phone side closes before robotd's side is connected (its SYNs lost) is
# dropped, nothing is sent on its behalf later. Quits when stdin closes, printing its counts.
import asyncio, json, random, sys
TARGET, PORT, DELAY, JITTER = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
stats = {"connections": 0, "abandoned": 0, "failed": 0, "chunksToRobot": 0, "chunksToPhone": 0, "heldSeconds": 0.0}

async def pump(reader, queue, key):
    loop, last = asyncio.get_running_loop(), 0.0
    while True:
        try:
            data = await reader.read(65536)
        except OSError:
            data = b""
        now = loop.time()
        last = max(last, now + random.uniform(DELAY - JITTER, DELAY + JITTER))
        await queue.put((last, data))
        if not data:
            return
        stats[key] += 1
        stats["heldSeconds"] += last - now

async def deliver(queue, writer):
    loop = asyncio.get_running_loop()
    while True:
        release, data = await queue.get()
        await asyncio.sleep(max(0.0, release - loop.time()))
        if not data:
            return
        writer.write(data)
        await writer.drain()

async def handle(phone_reader, phone_writer):
    stats["connections"] += 1
    to_robot, to_phone = asyncio.Queue(), asyncio.Queue()
    tasks = [asyncio.ensure_future(pump(phone_reader, to_robot, "chunksToRobot"))]
    connect = asyncio.ensure_future(asyncio.wait_for(asyncio.open_connection(TARGET, PORT), 30))
    robot_writer = None
    try:
        await asyncio.wait([connect, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        if not connect.done():
            connect.cancel()
            stats["abandoned"] += 1
            return
        try:
            robot_reader, robot_writer = connect.result()
        except (OSError, asyncio.TimeoutError):
            stats["failed"] += 1
            return
        tasks += [asyncio.ensure_future(pump(robot_reader, to_phone, "chunksToPhone")),
                  asyncio.ensure_future(deliver(to_robot, robot_writer)), asyncio.ensure_future(deliver(to_phone, phone_writer))]
        # One side's end (or an error), delivered after its hold: the exchange is over.
        await asyncio.wait(tasks[2:], return_when=asyncio.FIRST_COMPLETED)
    except OSError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        for writer in (phone_writer, robot_writer):
            if writer is not None:
                writer.close()

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.close()
    stats["heldSeconds"] = round(stats["heldSeconds"], 3)
    print(json.dumps(stats), flush=True)

asyncio.run(main())
"""


class Relay:
    """The user-space delay (nftables mode): the relay runs in the phone's namespace."""

    def __init__(self, work, port):
        path = os.path.join(work, "relay.py")
        with open(path, "w") as f:
            f.write(RELAY)
        self.process = subprocess.Popen(["ip", "netns", "exec", NAMESPACE, sys.executable, path, ROBOT_ADDRESS, str(port),
                                         str(RELAY_DELAY), str(RELAY_JITTER)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=open(os.path.join(work, "relay.err"), "w"), text=True, bufsize=1)
        self.stats = None
        ready, _, _ = select.select([self.process.stdout], [], [], 10)
        line = self.process.stdout.readline() if ready else ""
        try:
            self.port = json.loads(line)["port"]
        except (ValueError, KeyError):
            stop_process(self.process, 3)
            raise RuntimeError(f"the relay did not start: {line!r} {open(os.path.join(work, 'relay.err')).read()[-400:]}")

    def stop(self):
        """Closes its stdin (it quits) and keeps its counts."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            ready, _, _ = select.select([self.process.stdout], [], [], 3)
            if ready:
                try:
                    self.stats = json.loads(self.process.stdout.readline())
                except ValueError:
                    pass
        stop_process(self.process, 3)

    def describe(self):
        if not self.stats:
            return "relay: no counts"
        chunks = self.stats["chunksToRobot"] + self.stats["chunksToPhone"]
        mean = self.stats["heldSeconds"] / chunks * 1000 if chunks else 0
        return (f"relay (user-space delay): {self.stats['connections']} connections, {self.stats['chunksToRobot']} chunks to robotd "
                f"and {self.stats['chunksToPhone']} to the phone, held {mean:.0f} ms on average; {self.stats['abandoned']} given up "
                f"by the phone before robotd's side connected, {self.stats['failed']} could not connect")


# ---------------------------------------------------------------- the phone

PHONE = r'''
"""The officer's phone, inside the network namespace: commands on stdin (JSON lines),
answers on stdout, each keep-alive's outcome in the log (JSON lines, monotonic times)."""
import http.client, json, sys, threading, time
HOST, PORT, NAME, PASSWORD, LOG, PERIOD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
lock = threading.Lock()
state = {"token": None, "lease": None, "keepalive": False}
log = open(LOG, "a", buffering=1)

def request(method, path, body=None, lease=False, timeout=8.0):
    with lock:
        token, lease_id = state["token"], state["lease"]
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    if lease and lease_id:
        headers["X-Lease"] = lease_id
    connection = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        connection.request(method, path, body=json.dumps({} if body is None else body).encode(), headers=headers)
        response = connection.getresponse()
        raw, status = response.read(), response.status
    except (OSError, http.client.HTTPException) as error:
        return None, type(error).__name__ + ": " + str(error)
    finally:
        connection.close()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")

def code(status, body):
    if status is None:
        return body
    return body.get("error", {}).get("code") if isinstance(body, dict) and status >= 400 else None

def keepalive(n):
    sent = time.monotonic()
    status, body = request("POST", "/api/v1/lease/keepalive", lease=True, timeout=2.0)
    line = json.dumps({"n": n, "sent": sent, "done": time.monotonic(), "status": status, "code": code(status, body)})
    with lock:
        log.write(line + "\n")

def keepalives():
    n, due = 0, time.monotonic()
    while True:
        due += PERIOD
        with lock:
            on = state["keepalive"]
        if on:
            n += 1
            threading.Thread(target=keepalive, args=(n,), daemon=True).start()
        time.sleep(max(0.0, due - time.monotonic()))

def acquire(steps):
    status, body = request("POST", "/api/v1/lease", {"client": "phone"})
    steps.append(["lease", status, code(status, body)])
    if status == 200:
        with lock:
            state["lease"] = body["lease"]
    return status

def fresh_lease(steps):
    """The phone UI's 'take control' when its lease is gone: one keep-alive tells."""
    status, body = request("POST", "/api/v1/lease/keepalive", lease=True)
    steps.append(["keepalive", status, code(status, body)])
    if status != 200:
        acquire(steps)

threading.Thread(target=keepalives, daemon=True).start()
for line in sys.stdin:
    command = json.loads(line)
    op, steps, answer = command["op"], [], {}
    if op == "login":
        status, body = request("POST", "/api/v1/login", {"name": NAME, "password": PASSWORD})
        if status == 200:
            with lock:
                state["token"] = body["token"]
        answer = {"status": status, "code": code(status, body)}
    elif op == "acquire":
        answer = {"status": acquire(steps)}
    elif op == "keepalive":
        with lock:
            state["keepalive"] = command["on"]
        answer = {"status": 200}
    elif op == "call":
        status, body = request(command["method"], command["path"], command.get("body"), lease=command.get("lease", False))
        answer = {"status": status, "body": body}
    elif op == "resume":
        # The officer's one action once the phone is back: take control again (POST
        # /api/v1/lease: granted to the same user although the old lease is stale), then
        # resume the paused scan with the new lease.
        if acquire(steps) == 200:
            status, body = request("POST", "/api/v1/scans/" + command["scan"] + "/resume", lease=True)
            steps.append(["resume", status, code(status, body)])
        else:
            status, body = steps[-1][1], "lease not granted"
        answer = {"status": status, "body": body}
    elif op == "recover":
        # Back to a usable robot: the lease again if stale, then resetFault if it stopped.
        fresh_lease(steps)
        if command.get("reset"):
            status, body = request("POST", "/api/v1/commands", {"type": "resetFault"}, lease=True)
            steps.append(["resetFault", status, code(status, body)])
        answer = {"status": steps[-1][1]}
    elif op == "quit":
        break
    answer["steps"] = steps
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
'''


class Phone:
    def __init__(self, work, host, port):
        """`host`, `port`: robotd itself, or the relay in the namespace (nftables mode)."""
        self.path = os.path.join(work, "phone.py")
        self.log = os.path.join(work, "phone-keepalives.jsonl")
        with open(self.path, "w") as f:
            f.write(PHONE)
        self.process = subprocess.Popen(["ip", "netns", "exec", NAMESPACE, sys.executable, self.path, host, str(port),
                                         "officer", PASSWORDS["officer"], self.log, str(KEEPALIVE_PERIOD)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(work, "phone.err"), "w"),
                                        text=True, bufsize=1)
        self.answers = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            self.answers.put(json.loads(line))
        self.answers.put(None)

    def do(self, op, timeout=25, **fields):
        self.process.stdin.write(json.dumps(dict(fields, op=op)) + "\n")
        self.process.stdin.flush()
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the phone did not answer '{op}' within {timeout} s")
        if answer is None:
            raise RuntimeError("the phone's process ended")
        return answer

    def call(self, method, path, body=None, lease=False):
        answer = self.do("call", method=method, path=path, body=body, lease=lease)
        return answer["status"], answer["body"]

    def keepalives(self):
        try:
            return [json.loads(line) for line in open(self.log) if line.strip()]
        except OSError:
            return []

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write('{"op": "quit"}\n')
                self.process.stdin.flush()
            except OSError:
                pass
        stop_process(self.process, 3)


# ---------------------------------------------------------------- the observer

class Observer:
    """Reads robotd from the root namespace at 20 Hz; keeps every sample."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.samples, self.errors = [], 0
        self.scan_id = None
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def get(self, path):
        return request(self.port, "GET", path, token=self.token, timeout=2)

    def loop(self):
        while self.running:
            began = time.monotonic()
            status, frame = self.get("/api/v1/state")
            scan_id = self.scan_id
            scan_status, scan = self.get(f"/api/v1/scans/{scan_id}") if scan_id else (None, None)
            now = time.monotonic()
            if status == 200:
                sample = {"t": now, "stopped": frame["safety"]["stopped"], "cause": frame["safety"]["cause"],
                          "stale": frame["lease"]["stale"], "held": frame["lease"]["held"], "moving": frame["pose"]["moving"],
                          "speed": frame["pose"]["speedMetresPerSecond"], "x": frame["pose"]["xMetres"], "y": frame["pose"]["yMetres"],
                          "lift": frame["lift"]["heightMetres"], "liftMoving": frame["lift"]["moving"], "scan": None}
                if scan_status == 200:
                    progress = scan.get("progress") or {}
                    sample["scan"] = {"id": scan_id, "state": scan.get("state"), "phase": progress.get("phase"),
                                      "completed": progress.get("completedPoints"), "total": progress.get("totalPoints"),
                                      "paused": progress.get("paused"), "pausedReason": progress.get("pausedReason"),
                                      "waiting": progress.get("waitingForReset")}
                with self.lock:
                    self.samples.append(sample)
            else:
                self.errors += 1
            time.sleep(max(0.0, began + 0.05 - time.monotonic()))

    def latest(self, timeout=3):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.samples and self.samples[-1]["t"] > time.monotonic() - 0.5:
                    return self.samples[-1]
            time.sleep(0.05)
        raise RuntimeError("the observer has no fresh state from robotd (robotd gone?)")

    def between(self, start, end=None):
        with self.lock:
            return [s for s in self.samples if s["t"] >= start and (end is None or s["t"] <= end)]

    def wait_for(self, predicate, timeout, after=None):
        """The first sample (taken after `after`, default now) that satisfies `predicate`, or None."""
        after = time.monotonic() if after is None else after
        deadline = time.monotonic() + timeout
        seen = after
        while True:
            for sample in self.between(seen):
                seen = max(seen, sample["t"] + 1e-9)
                if predicate(sample):
                    return sample
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- the cases

def halted(sample):
    return not sample["moving"] and abs(sample["speed"]) < 0.005 and not sample["liftMoving"]


def scan_trouble(sample):
    """What is wrong with a sample during a scan that must run on, or None."""
    scan = sample["scan"]
    if sample["stopped"]:
        waiting = f"; scan waiting for reset ({scan['waiting']})" if scan and scan.get("waiting") else ""
        return f"safety stop ({sample['cause']}){waiting}"
    if scan is None:
        return "no scan"
    if scan["state"] != "running" or scan["paused"]:
        return f"scan {scan['state']}" + (f" ({scan['pausedReason']})" if scan.get("pausedReason") else "")
    if scan.get("waiting"):
        return f"scan waiting for reset ({scan['waiting']})"
    return None


def trouble_kind(sample):
    """'stop' (a safety stop, or the scan waiting for a reset) or 'pause'."""
    return "stop" if sample["stopped"] or (sample["scan"] and sample["scan"].get("waiting")) else "pause"


class Campaign:
    def __init__(self, network, phone, observer, quick):
        self.network, self.phone, self.observer, self.quick = network, phone, observer, quick
        self.rows, self.gaps = [], []
        self.pause_windows = []     # from a long gap's end to the officer's resume

    def row(self, case, gap, happened, timing, ok):
        self.rows.append((case, gap, happened, timing, ok))
        print(f"  {'ok  ' if ok else 'FAIL'} {case} {gap}: {happened}" + (f" [{timing}]" if timing != "-" else ""), flush=True)

    def gap(self, seconds):
        start, end = self.network.gap(seconds)
        self.gaps.append((start, end))
        return start, end

    def ready(self, reason=""):
        """The robot not stopped, the phone's lease fresh, keep-alives flowing."""
        sample = self.observer.latest()
        if sample["stopped"] or sample["stale"] or not sample["held"]:
            answer = self.phone.do("recover", reset=sample["stopped"])
            print(f"  (recovery{reason}: {answer['steps']})", flush=True)
            if not self.observer.wait_for(lambda s: not s["stopped"] and not s["stale"] and s["held"], 5):
                raise RuntimeError(f"the robot could not be made ready after {answer['steps']}: {self.observer.latest()}")
        time.sleep(0.5)

    # -- manual walk

    def walk(self, gap):
        """A gap shorter than the deadman: the walk completes. Under the baseline loss the
        first keep-alives after the gap may be lost too (a lost SYN costs 1 s), so robotd's
        silence can exceed the deadman: then the stop is correct, and the case runs once
        more if the keep-alive log shows robotd refused none it should have taken."""
        if gap >= DEADMAN:
            return self.walk_once(gap)
        first = self.walk_once(gap, record=False)
        if first["ok"] or not first.get("retry"):
            return self.row(*first["row"])
        print(f"  (walk {gap:g} s, attempt 1: {first['row'][2]}; once more)", flush=True)
        second = self.walk_once(gap, record=False)
        case, label, happened, timing, ok = second["row"]
        # Two stops that the keep-alive log explains (the lossy link lengthened the silence
        # past the deadman, and robotd refused nothing it should have taken) are robotd
        # doing its job on this link, not a failure of the policy under test.
        explained = not ok and second.get("retry")
        self.row(case, label, f"attempt 1: {first['row'][2]}; attempt 2: {happened}"
                 + ("; both stops explained by the lossy link" if explained else ""), timing, ok or explained)

    def walk_stop_explained(self, gap_start, stop_t):
        """After a deadman stop in a short gap: (robotd consistent?, what the keep-alive log says)."""
        log = [k for k in self.phone.keepalives() if k["sent"] >= gap_start - 3]
        accepted = [k for k in log if k["status"] == 200 and k["done"] <= stop_t]
        last = max(accepted, key=lambda k: k["done"], default=None)
        if last is None:
            return False, "no keep-alive accepted before the stop"
        # Refused as stale although it surely reached robotd within the deadman of the last
        # accepted one (arrival is between sending and the answer): robotd wrong.
        # Only keep-alives sent after that one (earlier refusals belong to an earlier stop).
        wrong = [k for k in log if k["code"] == "lease_stale" and k["sent"] > last["sent"] and k["done"] < last["sent"] + DEADMAN]
        silence = stop_t - last["done"]
        slow = [k for k in log if k["sent"] > last["sent"] and (k["done"] - k["sent"] > 0.9 or k["status"] is None)]
        text = (f"last keep-alive accepted {last['done'] - gap_start:+.2f} s from the gap's start, stop seen {silence:.2f} s later"
                + (f"; after it {len(slow)} keep-alive(s) slow or lost (" + ", ".join(
                    f"sent {k['sent'] - gap_start:+.2f} s " + (f"answered after {k['done'] - k['sent']:.2f} s" if k["status"] else "no answer")
                    for k in slow[:4]) + ")" if slow else ""))
        if wrong:
            return False, text + f"; robotd refused {len(wrong)} keep-alive(s) as stale within {DEADMAN:g} s of the last accepted one"
        if silence < DEADMAN - 0.1:
            return False, text + f"; robotd stopped before {DEADMAN:g} s of silence"
        return True, text + (" (robotd consistent: the stop is correct; " + ("the baseline loss lengthened the gap)" if slow else
                                     "the gap and the keep-alive period exceeded the deadman)"))

    def walk_once(self, gap, record=True):
        case = "walk 4 m"
        label = f"{gap:g} s"

        def result(happened, timing, ok, retry=False):
            if record:
                self.row(case, label, happened, timing, ok)
            return {"ok": ok, "retry": retry, "row": (case, label, happened, timing, ok)}

        self.ready()
        start = self.observer.latest()
        status, body = self.phone.call("POST", "/api/v1/commands", {"type": "walk", "metres": 4}, lease=True)
        if status != 202:
            return result(f"walk refused: {status} {body}", "-", False)
        command = body["id"]
        moving = self.observer.wait_for(lambda s: s["moving"], 5)
        if not moving:
            return result("the robot never started moving", "-", False)
        time.sleep(max(0.0, moving["t"] + 0.5 - time.monotonic()))
        gap_start, gap_end = self.gap(gap)
        end = self.observer.wait_for(lambda s: halted(s), 15, after=gap_end)
        samples = self.observer.between(start["t"], end["t"] if end else None)
        _, feedback = self.observer.get(f"/api/v1/commands/{command}")
        command_state = feedback.get("state") if isinstance(feedback, dict) else feedback
        walked = math.hypot((end or samples[-1])["x"] - start["x"], (end or samples[-1])["y"] - start["y"])
        stop = next((s for s in samples if s["stopped"]), None)
        if gap < DEADMAN:
            ok = stop is None and command_state == "done" and abs(walked - 4) < 0.05
            if ok:
                return result(f"walk completed {walked:.2f} m, no stop", "-", True)
            if stop is None:
                return result(f"command {command_state}, walked {walked:.2f} m", "-", False)
            retry, why = (False, "") if stop["cause"] != "deadman" else self.walk_stop_explained(gap_start, stop["t"])
            return result(f"stop ({stop['cause']}) after {walked:.2f} m" + (f": {why}" if why else ""),
                          f"stop {stop['t'] - gap_start:.2f} s", False, retry)
        if stop is None:
            return result(f"no stop; command {command_state}, walked {walked:.2f} m", "-", False)
        after = stop["t"] - gap_start
        stale = any(s["stale"] for s in samples if stop["t"] <= s["t"] <= stop["t"] + 0.5)
        halt = next((s for s in samples if s["t"] >= stop["t"] and halted(s)), None)
        halt_text = f"halted {halt['t'] - gap_start:.2f} s" if halt else "NOT halted"
        ok = stop["cause"] == "deadman" and 0.5 <= after <= STOP_WITHIN and stale and halt is not None and halt["t"] - stop["t"] < 2
        happened = (f"{stop['cause']} stop after {walked:.2f} m, lease {'stale' if stale else 'NOT stale'}, {halt_text}, "
                    f"command {command_state}")
        return result(happened, f"stop {after:.2f} s", ok)

    # -- the scan

    def plan_and_start(self):
        status, body = self.phone.call("POST", "/api/v1/scans", CONTAINER)
        if status != 201:
            raise RuntimeError(f"planning the scan: {status} {body}")
        scan = body["id"]
        status, body = self.phone.call("POST", f"/api/v1/scans/{scan}/start", lease=True)
        if status != 202:
            raise RuntimeError(f"starting the scan: {status} {body}")
        self.observer.scan_id = scan
        # The survey: the background comes first (about 14 s at 3x).
        survey = self.observer.wait_for(lambda s: s["scan"] and s["scan"]["id"] == scan and s["scan"]["phase"] == "survey"
                                        and (s["scan"]["completed"] or 0) >= 1, 45)
        if not survey:
            raise RuntimeError(f"the scan did not reach its first survey point in 45 s: {self.observer.latest()}")
        print(f"  scan {scan[:8]} surveying ({survey['scan']['completed']} of {survey['scan']['total']} points)", flush=True)

    def scan_ready(self, points_needed):
        """A running scan with enough points left (else a new one), the robot not stopped."""
        self.ready(" before the case")
        sample = self.observer.latest()
        scan = sample["scan"]
        if scan and scan["state"] in ("running", "paused") and scan["total"] - scan["completed"] >= points_needed:
            return sample
        if scan and scan["state"] in ("running", "paused"):
            self.phone.call("POST", f"/api/v1/scans/{scan['id']}/abort", lease=True)
            if not self.observer.wait_for(lambda s: s["scan"] and s["scan"]["state"] not in ("running", "paused"), 20):
                raise RuntimeError("the scan did not end after abort")
        print(f"  (a new scan: {points_needed} points are needed; NB robotd walks from where the robot stands straight "
              "to the background station, which may cross the container)", flush=True)
        self.plan_and_start()
        return self.observer.latest()

    def keepalives_after_gap(self, gap_start, gap_end, wait=4):
        """The phone's keep-alives answered after a gap's end: (seconds from the gap's end to
        the first one accepted, or None; the refused ones' codes). Waits up to `wait` s for
        an accepted one."""
        deadline = time.monotonic() + wait
        while True:
            answered = [k for k in self.phone.keepalives()
                        if k["sent"] >= gap_start - 3 and k["done"] >= gap_end and k["status"] is not None]
            accepted = sorted(k["done"] for k in answered if k["status"] == 200)
            if accepted or time.monotonic() >= deadline:
                refused = [k["code"] or str(k["status"]) for k in answered
                           if k["status"] != 200 and (not accepted or k["done"] <= accepted[0])]
                return (accepted[0] - gap_end if accepted else None), refused
            time.sleep(0.1)

    def scan_runs_on(self, gap):
        """Baseline (gap 0) or a gap shorter than scanCommsLossSeconds: never stops or pauses,
        grows, the lease never stale; after a gap the phone's keep-alives are accepted again
        without its taking the lease again."""
        case = "scan"
        label = "none" if gap == 0 else f"{gap:g} s"
        start = self.scan_ready(4 + math.ceil(gap / 2))
        p0 = start["scan"]["completed"]
        if gap == 0:
            gap_start = gap_end = time.monotonic()
            time.sleep(4 if self.quick else 6)
            label = f"none ({'4' if self.quick else '6'} s baseline)"
        else:
            gap_start, gap_end = self.gap(gap)
        grown = self.observer.wait_for(lambda s: s["t"] >= gap_end + 2 and s["scan"] and (s["scan"]["completed"] or 0) > p0,
                                       12, after=gap_start)
        samples = self.observer.between(gap_start, grown["t"] if grown else None)
        trouble = next(((s, scan_trouble(s)) for s in samples if scan_trouble(s)), None)
        stale = next((s for s in samples if s["stale"]), None)
        last = samples[-1]["scan"] if samples else None
        notes, ok, timing = [], True, "-"
        if trouble:
            sample, what = trouble
            ok, timing = False, f"{trouble_kind(sample)} {sample['t'] - gap_start:.2f} s"
            notes.append(what)
        elif not grown:
            ok = False
            notes.append(f"completedPoints did not grow ({p0} -> {last and last['completed']})")
        else:
            notes.append(f"ran on, no stop or pause; completedPoints {p0} -> {grown['scan']['completed']}")
        if stale:
            ok = False
            notes.append(f"lease STALE at +{stale['t'] - gap_start:.2f} s")
        if gap > 0:
            accepted, refused = self.keepalives_after_gap(gap_start, gap_end)
            if refused:
                ok = False
                notes.append(f"keep-alives after the gap REFUSED ({len(refused)}: {', '.join(sorted(set(refused)))}): "
                             "the phone would have to take control again")
            if accepted is None:
                ok = False
                notes.append("no keep-alive accepted after the gap")
            else:
                notes.append(f"lease never stale; keep-alives accepted again {accepted:.2f} s after the gap, "
                             "the lease not taken again")
        else:
            window = [k for k in self.phone.keepalives() if gap_start <= k["sent"] <= gap_start + (4 if self.quick else 6)]
            notes.append(f"lease never stale; keep-alives {sum(k['status'] == 200 for k in window)} of {len(window)} accepted, "
                         f"{sum(k['status'] is None for k in window)} lost (2 s timeout)")
        self.row(case, label, "; ".join(notes), timing, ok)

    def scan_pauses(self, gap):
        """A gap longer than scanCommsLossSeconds: runs on, pauses ("comms lost ..."), robot
        halted; the officer's one action (the lease again, then resume) and it grows again."""
        case = "scan"
        label = f"{gap:g} s"
        start = self.scan_ready(math.ceil((COMMS_LIMIT + 8) / 2.3) + 2)
        p0 = start["scan"]["completed"]
        scan_id = start["scan"]["id"]
        gap_start, gap_end = self.gap(gap)
        samples = self.observer.between(gap_start, gap_end)
        # Up to scanCommsLossSeconds (less half a second: the last keep-alive came before
        # the gap) the scan must run on.
        trouble = next((s for s in samples if scan_trouble(s)), None)
        early = trouble is not None and trouble["t"] < gap_start + COMMS_LIMIT - 0.5
        pause = next((s for s in samples if s["scan"] and s["scan"]["state"] == "paused"
                      and (s["scan"].get("pausedReason") or "").startswith("comms lost")), None)
        notes, ok = [], True
        if early:
            ok = False
            notes.append(f"{scan_trouble(trouble)} at {trouble['t'] - gap_start:.2f} s")
        if pause is None:
            ok = False
            other = next((s for s in samples if s["scan"] and s["scan"]["state"] == "paused"), None)
            notes.append("no pause with pausedReason 'comms lost...' during the gap"
                         + (f" (paused: {other['scan'].get('pausedReason')!r})" if other else ""))
            timing = f"{trouble_kind(trouble)} {trouble['t'] - gap_start:.2f} s" if trouble is not None else "-"
        else:
            after = pause["t"] - gap_start
            timing = f"pause {after:.2f} s"
            if not COMMS_LIMIT - 0.5 <= after <= COMMS_LIMIT + 2:
                ok = False
                notes.append(f"paused at {after:.2f} s, expected {COMMS_LIMIT:g} s (-0.5/+2)")
            before = [s for s in samples if s["t"] < pause["t"]] or [start]
            moved = any(math.hypot(s["x"] - start["x"], s["y"] - start["y"]) > 0.1 or abs(s["lift"] - start["lift"]) > 0.05 for s in before)
            grew = max((s["scan"]["completed"] or 0) for s in before if s["scan"]) if before else p0
            notes.append(f"ran on before the pause (points {p0} -> {grew}{', moved' if moved else ''})")
            if grew <= p0 and not moved:
                ok = False
                notes[-1] = "did NOT run on before the pause"
            halt = next((s for s in samples if s["t"] >= pause["t"] and halted(s)), None)
            later = [s for s in samples if halt and s["t"] >= halt["t"]]
            still = halt is not None and halt["t"] - pause["t"] < 2 and all(
                math.hypot(s["x"] - halt["x"], s["y"] - halt["y"]) < 0.01 and abs(s["lift"] - halt["lift"]) < 0.005 for s in later)
            notes.append(f"robot halted {halt['t'] - gap_start:.2f} s" if still else "robot NOT halted")
            ok = ok and still
            stale = next((s for s in before if s["t"] < pause["t"] - 0.1 and s["stale"]), None)
            if stale:
                ok = False
                notes.append(f"lease STALE before the pause (+{stale['t'] - gap_start:.2f} s)")
            notes.append(f"reason {pause['scan']['pausedReason']!r}")
        # The phone is back: one resume.
        time.sleep(0.5)
        before_resume = self.observer.latest()
        asked = time.monotonic()
        answer = self.phone.do("resume", scan=scan_id)
        self.pause_windows.append((gap_end, time.monotonic()))
        after_gap = [k for k in self.phone.keepalives() if gap_end <= k["done"] <= asked and k["status"] is not None]
        refused = [k["code"] or str(k["status"]) for k in after_gap if k["status"] != 200]
        notes.append(f"keep-alives after the gap until the officer took control: {len(after_gap) - len(refused)} accepted, "
                     f"{len(refused)} refused{' (' + ', '.join(sorted(set(refused))) + ')' if refused else ''}")
        steps = " + ".join(f"{step[0]} {step[1]}" + (f" {step[2]}" if step[2] else "") for step in answer["steps"])
        if answer["status"] != 200:
            ok = False
            notes.append(f"resume: {steps}")
            self.row(case, label, "; ".join(notes), timing, ok)
            return
        if pause is not None:
            # Paused, the loop's deadman is disarmed: no safety stop until the officer is back.
            stop = next((s for s in self.observer.between(pause["t"], self.pause_windows[-1][1]) if s["stopped"]), None)
            if stop:
                ok = False
                notes.append(f"safety STOP ({stop['cause']}) while paused at +{stop['t'] - gap_start:.2f} s")
            else:
                notes.append("no safety stop while paused")
        base = before_resume["scan"]["completed"] if before_resume["scan"] else p0
        grown = self.observer.wait_for(lambda s: s["scan"] and s["scan"]["state"] == "running" and (s["scan"]["completed"] or 0) > base, 15)
        notes.append(f"resume ({steps}): " + (f"points {base} -> {grown['scan']['completed']}" if grown else "completedPoints did NOT grow"))
        self.row(case, label, "; ".join(notes), timing, ok and grown is not None)

    def whole_scan_part(self, start, end):
        """No stop or pause outside the gaps (and 1 s after each) during the scan part."""
        samples = self.observer.between(start, end)
        inside = lambda t: any(a <= t <= b + 1.0 for a, b in self.gaps)
        onsets, previous = [], None
        for s in samples:
            bad = scan_trouble(s) if s["scan"] and s["scan"]["state"] in ("running", "paused") else (s["stopped"] and "safety stop")
            if bad and not previous and not inside(s["t"]):
                onsets.append((s["t"] - start, bad))
            previous = bad
        keepalives = [k for k in self.phone.keepalives() if start <= k["sent"] <= end]
        ok_times = sorted(k["done"] for k in keepalives if k["status"] == 200)
        silences = [b - a for a, b in zip(ok_times, ok_times[1:]) if not any(a <= g_end and b >= g_start for g_start, g_end in self.gaps)]
        paused = lambda t: any(a <= t <= b + 0.5 for a, b in self.pause_windows)
        lost = sum(1 for k in keepalives if k["status"] is None and not inside(k["sent"]))
        refused_paused = sum(1 for k in keepalives if k["status"] not in (None, 200) and paused(k["done"]))
        refused = sum(1 for k in keepalives if k["status"] not in (None, 200) and not inside(k["sent"]) and not paused(k["done"]))
        happened = (f"{len(onsets)} stops/pauses outside the gaps"
                    + "".join(f"; {what} at +{t:.1f} s" for t, what in onsets[:3])
                    + f"; keep-alives {len(keepalives)} sent, {len(ok_times)} ok; outside the gaps {lost} lost on the network "
                    f"and {refused} refused outside the long gaps' pauses ({refused_paused} refused while paused after a long gap, "
                    f"until the officer took control); "
                    f"longest silence between answered keep-alives outside the gaps {max(silences, default=0):.2f} s")
        self.row("whole scan part", "baseline", happened, "-", not onsets and refused == 0)

    def run(self):
        walk_gaps = [0.5, 2.0]
        scan_gaps = [2.0, 12.0] if self.quick else [0.5, 2.0, 5.0, 12.0]
        print("manual walk:", flush=True)
        for gap in walk_gaps:
            self.walk(gap)
        print("automated scan:", flush=True)
        self.ready()
        start = time.monotonic()
        self.plan_and_start()
        self.scan_runs_on(0)
        for gap in scan_gaps:
            if gap > COMMS_LIMIT:
                self.scan_pauses(gap)
            else:
                self.scan_runs_on(gap)
        self.whole_scan_part(start, time.monotonic())


def print_table(rows):
    headers = ("case", "gap", "what happened", "time to stop/pause", "result")
    lines = [(c, g, h, t, "pass" if ok else "FAIL") for c, g, h, t, ok in rows]
    widths = [max(len(headers[i]), *(len(l[i]) for l in lines)) if lines else len(headers[i]) for i in range(5)]
    widths[2] = min(widths[2], 80)
    def fmt(cells):
        wrapped = textwrap.wrap(cells[2], widths[2]) or [""]
        out = []
        for n, part in enumerate(wrapped):
            row = [cells[0], cells[1], part, cells[3], cells[4]] if n == 0 else ["", "", part, "", ""]
            out.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        return "\n".join(out)
    print(fmt(headers))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt(line))


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description="The robot's behaviour when the officer's phone loses the network "
                                     "(netem, else nftables drops with user-space delay).")
    parser.add_argument("bin_dir", nargs="?", help="folder with robotd and robotctl (default: swift build --show-bin-path)")
    parser.add_argument("--quick", action="store_true", help="a subset: walk 0.5 s and 2 s, scan baseline, 2 s and 12 s")
    parser.add_argument("--link-down-gaps", action="store_true",
                        help="gaps by setting the phone's veth down, no baseline loss/delay (NOT the real test)")
    options = parser.parse_args()
    budget = 115 if options.quick else 290

    network = Network(options.link_down_gaps)
    daemon = phone = observer = relay = campaign = None
    drops = {}
    work = tempfile.mkdtemp(prefix="comms-loss-")
    finished = {"done": False}

    def clean_up():
        if finished["done"]:
            return
        finished["done"] = True
        signal.alarm(0)
        if observer:
            observer.stop()
        if phone:
            phone.stop()
        if relay:
            relay.stop()
        drops.update(network.counters())
        stop_process(daemon, 20)
        network.tear_down()
        shutil.rmtree(OUT, ignore_errors=True)      # only this run's logs
        os.makedirs(OUT, exist_ok=True)
        for name in ("robotd.log", "robotd.yaml", "phone-keepalives.jsonl", "phone.err", "relay.err", "profiles/commsloss.yaml",
                     "scans.sqlite", "scans.sqlite-wal", "scans.sqlite-shm"):     # the store: plans, readings, audit
            if os.path.exists(os.path.join(work, name)):
                shutil.copy(os.path.join(work, name), OUT)
        if observer:
            with open(os.path.join(OUT, "observer-samples.jsonl"), "w") as f:
                for sample in observer.samples:
                    f.write(json.dumps(sample) + "\n")
        with open(os.path.join(OUT, "network.json"), "w") as f:
            json.dump({"mode": network.mode, "describe": network.describe(), "whyNotNetem": network.why_not_netem,
                       "nftDrops": drops, "relay": relay and relay.stats, "gaps": campaign and campaign.gaps,
                       "pauseWindows": campaign and campaign.pause_windows}, f, indent=1)
        shutil.rmtree(work, ignore_errors=True)

    atexit.register(clean_up)

    def on_signal(number, _frame):
        raise SystemExit(128 + number)

    def on_alarm(_number, _frame):
        raise OutOfTime(f"the run exceeded its {budget} s budget")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(budget)
    began = time.monotonic()
    try:
        bins = find_bin_dir(options.bin_dir)
        network.set_up()
        print(f"network: namespace {NAMESPACE}, {ROOT_VETH} {ROBOT_ADDRESS}/{PREFIX} (robotd) <-> {PHONE_VETH} "
              f"{PHONE_ADDRESS}/{PREFIX} (phone)", flush=True)
        print(f"mode: {network.mode}: {network.describe()}", flush=True)
        if network.mode == "nftables":
            print(f"  (netem: {network.why_not_netem})\n"
                  "  => packet loss and gaps are REAL kernel drops (TCP retransmits); the delay is EMULATED IN USER SPACE", flush=True)
        store = os.path.join(work, "scans.sqlite")
        add_user(bins, store, "officer", "operator", PASSWORDS["officer"])
        add_user(bins, store, "watcher", "viewer", PASSWORDS["watcher"])
        with socket.socket() as s:
            s.bind((ROBOT_ADDRESS, 0))
            port = s.getsockname()[1]
        daemon, log_path, dropped = start_robotd(bins, work, port)
        print(f"robotd listening on {ROBOT_ADDRESS}:{port} (simulator {TIME_SCALE}x, clean 20 ft container, "
              f"deadman {DEADMAN:g} s, scanCommsLossSeconds {COMMS_LIMIT:g} s)", flush=True)
        if dropped:
            print(f"NOTE: this robotd refuses {', '.join(dropped)}: "
                  + ("the scan cases test a policy it does not have yet (expected to fail). " if "scanCommsLossSeconds" in dropped else "")
                  + "Ran without " + ", ".join(dropped) + ".", flush=True)
        status, body = request(port, "POST", "/api/v1/login", body={"name": "watcher", "password": PASSWORDS["watcher"]})
        if status != 200:
            raise RuntimeError(f"observer log-in: {status} {body}")
        observer = Observer(port, body["token"])
        if network.mode == "nftables":
            relay = Relay(work, port)
            print(f"relay in the namespace: 127.0.0.1:{relay.port} -> {ROBOT_ADDRESS}:{port} (the phone talks through it)", flush=True)
            phone = Phone(work, "127.0.0.1", relay.port)
        else:
            phone = Phone(work, ROBOT_ADDRESS, port)
        answer = phone.do("login")
        if answer["status"] != 200:
            raise RuntimeError(f"the phone could not log in over the veth: {answer}")
        answer = phone.do("acquire")
        if answer["status"] != 200:
            raise RuntimeError(f"the phone could not acquire the lease: {answer}")
        phone.do("keepalive", on=True)
        if not observer.wait_for(lambda s: s["held"] and not s["stale"], 5):
            raise RuntimeError(f"the observer does not see the phone's lease: {observer.latest()}")
        campaign = Campaign(network, phone, observer, options.quick)
        campaign.run()
    except CannotRun as problem:
        print(f"comms-loss: cannot run here: {problem}", file=sys.stderr)
        return 2
    except (OutOfTime, RuntimeError) as problem:
        print(f"comms-loss: ABORTED: {problem}", flush=True)
        if campaign:
            campaign.rows.append(("(run)", "-", f"aborted: {problem}", "-", False))
        else:
            clean_up()
            return 1
    finally:
        signal.alarm(0)
        clean_up()
    print()
    print(f"comms loss: {network.mode}: {network.describe()}; {time.monotonic() - began:.0f} s; logs in {os.path.relpath(OUT, ROOT)}/")
    if drops:
        print(f"kernel drops (nft counters): baseline {drops.get('loss_in', 0)} packets in / {drops.get('loss_out', 0)} out, "
              f"gaps {drops.get('gap_in', 0)} in / {drops.get('gap_out', 0)} out")
    if relay:
        print(relay.describe())
    print_table(campaign.rows)
    failed = sum(1 for row in campaign.rows if not row[4])
    print(f"comms-loss: {'FAILED ' + str(failed) + ' of ' + str(len(campaign.rows)) if failed else 'all passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
