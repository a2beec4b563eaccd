"""What the campaign scripts share (browser_test, security_check, schemathesis_check,
crash_campaign, hostile_clients): checks that count failures, a free loopback port, the
binaries' folder, officer accounts, robotd started with its command server, HTTP calls
(one-off, or many on a keep-alive connection), a Prometheus metric, stopping a process.

Imported as `campaign` by scripts run as `python3 scripts/NAME.py` (their folder is on
sys.path).
"""
import json
import os
import re
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


def call(port, method, path, token=None, body=None, timeout=10, headers=None):
    """One request to robotd's API on loopback: (status, decoded JSON or text).
    `headers`: extra ones, e.g. {"X-Lease": lease}."""
    data = None if body is None else json.dumps(body).encode()
    headers = dict(headers or {})
    if data is not None:
        headers["Content-Type"] = "application/json"
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


def error_code(body):
    """The `error.code` of an API error body, or None."""
    return body.get("error", {}).get("code") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None


def decode(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def metric(port, name, timeout=10):
    """The value of an unlabelled sample in robotd's GET /metrics (Prometheus text), or None."""
    status, text = call(port, "GET", "/metrics", timeout=timeout)
    if status != 200 or not isinstance(text, str):
        return None
    found = re.search(r"^" + re.escape(name) + r" ([^ \n]+)", text, re.MULTILINE)
    return float(found.group(1)) if found else None


class Connection:
    """A keep-alive HTTP/1.1 connection to robotd on loopback, for campaigns that send
    many requests: `request` sends one and reads its answer; `send` and `receive` let a
    caller pipeline several. After any error the connection is dropped and the next
    request opens a new one. Answers are (status, decoded JSON or text); status 0 and the
    error's text when the connection failed or timed out."""

    def __init__(self, port, token=None, timeout=10):
        self.port, self.token, self.timeout = port, token, timeout
        self.sock = self.reader = None

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.reader = None

    def encode(self, method, path, body=None, headers=None, raw=None):
        """The bytes of one request. `body` is sent as JSON, `raw` (bytes) as it is."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.token:
            lines.append("Authorization: Bearer " + self.token)
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if data is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        elif method in ("POST", "PUT", "PATCH", "DELETE"):
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + (data or b"")

    def send(self, request_bytes):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.reader = self.sock.makefile("rb")
        self.sock.sendall(request_bytes)

    def receive(self):
        """Reads one answer: (status, decoded body). Raises OSError/ValueError on a broken one."""
        line = self.reader.readline(65537)
        if not line:
            raise ConnectionError("closed by the server")
        status = int(line.split()[1])
        length, chunked, close = None, False, False
        while True:
            header = self.reader.readline(65537)
            if header in (b"\r\n", b"\n"):
                break
            if not header:
                raise ConnectionError("closed inside the answer's head")
            name, _, value = header.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection" and value == b"close":
                close = True
        if chunked:
            raw = b""
            while True:
                size = int(self.reader.readline(65537).split(b";")[0], 16)
                raw += self.reader.read(size + 2)[:size]
                if size == 0:
                    break
        else:
            raw = self.reader.read(length or 0)
        if close:
            self.close()
        return status, decode(raw)

    def request(self, method, path, body=None, headers=None, raw=None):
        try:
            self.send(self.encode(method, path, body, headers, raw))
            return self.receive()
        except (OSError, ValueError, IndexError) as error:
            self.close()
            return 0, f"{type(error).__name__}: {error}"
