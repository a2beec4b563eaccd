#!/usr/bin/env python3
"""schemathesis (PyPI) against our own OpenAPI document on a running robotd.

Starts robotd with the simulator and the command server on a free loopback port, with
a scratch copy of the profiles (PUT /api/v1/profiles writes there), logs in as a
supervisor, and lets schemathesis generate requests for every operation in
/openapi.json (log-out excluded: it would end the session under test). Checks: no 5xx
response (`not_a_server_error`), and responses that match the document's status codes
and content types. Prints schemathesis's summary and the count of server errors seen in
robotd's own request metrics. Exits non-zero on any failure.

Usage: scripts/schemathesis_check.py [MAX_EXAMPLES] [path/to/bin]   (default 25 per operation)
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "schemathesis secret 1"


def main():
    examples = sys.argv[1] if len(sys.argv) > 1 else "25"
    bin_dir = sys.argv[2] if len(sys.argv) > 2 else subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip()
    work = tempfile.mkdtemp(prefix="schemathesis-")
    store = os.path.join(work, "scans.sqlite")
    profiles = os.path.join(work, "profiles")
    shutil.copytree(os.path.join(ROOT, "profiles"), profiles)
    subprocess.run([os.path.join(bin_dir, "robotctl"), "user", "add", "sam", "--role", "supervisor", "--store", store],
                   check=True, env=dict(os.environ, ROBOTD_PASSWORD=PASSWORD), stdout=subprocess.DEVNULL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        f.write(f"store: {store}\nserver:\n  port: {port}\n  profiles: {profiles}\n  defaultProfile: demo\n  reports: {work}/reports\n"
                f"  loginMaxFailures: 100\n")
    log_path = os.path.join(work, "robotd.log")
    daemon = subprocess.Popen([os.path.join(bin_dir, "robotd"), "--config", config, "--sim"], cwd=ROOT,
                              stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    status = 1
    try:
        deadline = time.time() + 30
        while time.time() < deadline and "command server listening" not in open(log_path).read():
            time.sleep(0.1)
            if daemon.poll() is not None:
                print(open(log_path).read())
                return 1
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/login", data=json.dumps({"name": "sam", "password": PASSWORD}).encode(),
                                         headers={"Content-Type": "application/json"})
        token = json.load(urllib.request.urlopen(request, timeout=10))["token"]
        st = shutil.which("st") or os.path.join(os.path.dirname(sys.executable), "st")
        command = [st, "run", f"http://127.0.0.1:{port}/openapi.json", "-H", f"Authorization: Bearer {token}",
                   "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
                   "--max-examples", examples, "--seed", "20261130", "--exclude-path", "/api/v1/logout",
                   "--request-timeout", "30", "--workers", "2"]
        print("$ " + " ".join(c if "Bearer" not in c else "Authorization: Bearer …" for c in command), flush=True)
        result = subprocess.run(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = result.stdout
        print(output if result.returncode else "\n".join(output.splitlines()[-40:]))
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        total = sum(float(v) for v in re.findall(r'^robotd_http_requests_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        server_errors = sum(float(v) for v in re.findall(r'^robotd_http_requests_total\{[^}]*status="5\d\d"[^}]*\} ([0-9.e+]+)$', metrics, re.M))
        print(f"schemathesis: robotd answered {int(total)} requests, {int(server_errors)} with a 5xx; schemathesis exit {result.returncode}")
        status = 0 if result.returncode == 0 and server_errors == 0 else 1
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
