"""What the campaign scripts share (browser_test, security_check, schemathesis_check,
crash_campaign): checks that count failures, a free loopback port, the binaries' folder,
officer accounts, robotd started with its command server, HTTP calls, stopping a process.

Imported as `campaign` by scripts run as `python3 scripts/NAME.py` (their folder is on
sys.path).
"""
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []


def check(condition, what, show_passes=True):
    """Prints the check (passes only when `show_passes`) and counts a failure."""
    if condition and show_passes:
        print("ok   " + what, flush=True)
    if not condition:
        print("FAIL " + what, flush=True)
        failures.append(what)
    return condition


def summary(name):
    """The last line of a campaign, and its exit status."""
    print(f"{name}: {'FAILED ' + str(len(failures)) if failures else 'all passed'}")
    return 1 if failures else 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bin_dir(argument=None):
    """The folder with robotd, robotctl and robot-sim: the argument, else SwiftPM's debug bin path."""
    if argument:
        return argument
    return subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip()


def add_user(bins, store, name, role, password):
    """`robotctl user add` (the password goes in through ROBOTD_PASSWORD, never the command line)."""
    subprocess.run([os.path.join(bins, "robotctl"), "user", "add", name, "--role", role, "--store", store],
                   check=True, cwd=ROOT, env=dict(os.environ, ROBOTD_PASSWORD=password), stdout=subprocess.DEVNULL)


def start_robotd(bins, arguments, log_path, seconds=30):
    """Starts robotd and waits until its command server listens. Returns the process, or
    None (after printing robotd's log) if it exited or did not listen in time."""
    log = open(log_path, "w")
    daemon = subprocess.Popen([os.path.join(bins, "robotd")] + arguments, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.time() + seconds
    while time.time() < deadline:
        if "command server listening" in open(log_path).read():
            return daemon
        if daemon.poll() is not None:
            break
        time.sleep(0.1)
    print(open(log_path).read())
    stop(daemon)
    return None


def stop(process, seconds=60):
    """SIGTERM, then SIGKILL if it has not gone in `seconds`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def call(port, method, path, token=None, body=None, timeout=10):
    """One request to robotd's API on loopback: (status, decoded JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw = error.read()
        status = error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def log_in(port, name, password):
    """(status, body) of POST /api/v1/login."""
    return call(port, "POST", "/api/v1/login", body={"name": name, "password": password})
