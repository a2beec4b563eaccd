#!/usr/bin/env python3
"""Security checks against a real robotd (with the simulator) on a loopback port.

1. Every mutating route in /openapi.json is tried without a token, with a viewer's
   token and with an expired token. Each must be refused (a viewer keeps what the
   document grants a viewer: e-stop, log-out), and each refusal must be in the audit log.
2. Brute-force log-in is rate-limited: after 5 failures the right password is refused too.
3. Tokens and passwords never appear in robotd's log.

Prints what it tried and the figures; exits non-zero on any failure.
Usage: scripts/security_check.py [path/to/bin]
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORDS = {"sam": "supervisor secret 42", "vera": "viewer secret 42"}
failures = []


def check(condition, what):
    if not condition:
        print("FAIL " + what, flush=True)
        failures.append(what)
    return condition


def call(port, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw = error.read()
        status = error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def login(port, name, password):
    status, body = call(port, "POST", "/api/v1/login", body={"name": name, "password": password})
    return status, body


def main():
    bin_dir = sys.argv[1] if len(sys.argv) > 1 else subprocess.check_output(["swift", "build", "--show-bin-path"], cwd=ROOT, text=True).strip()
    work = tempfile.mkdtemp(prefix="security-check-")
    store = os.path.join(work, "scans.sqlite")
    for name, role in [("sam", "supervisor"), ("vera", "viewer")]:
        subprocess.run([os.path.join(bin_dir, "robotctl"), "user", "add", name, "--role", role, "--store", store],
                       check=True, env=dict(os.environ, ROBOTD_PASSWORD=PASSWORDS[name]), stdout=subprocess.DEVNULL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        f.write(f"store: {store}\nserver:\n  port: {port}\n  tokenLifetimeSeconds: 2\n  profiles: {ROOT}/profiles\n  defaultProfile: demo\n")
    log_path = os.path.join(work, "robotd.log")
    log = open(log_path, "w")
    daemon = subprocess.Popen([os.path.join(bin_dir, "robotd"), "--config", config, "--sim"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    tokens = []
    try:
        deadline = time.time() + 30
        while time.time() < deadline and "command server listening" not in open(log_path).read():
            time.sleep(0.1)
        status, document = call(port, "GET", "/openapi.json")
        check(status == 200, "the OpenAPI document is served")
        operations = []
        for path, methods in document["paths"].items():
            for method, operation in methods.items():
                if method != "get":
                    operations.append((method.upper(), path, operation.get("x-required-role")))
        concrete = lambda p: p.replace("{id}", "x").replace("{name}", "x")

        # Expired: log in, let the 2 s token lapse.
        _, expired_login = login(port, "vera", PASSWORDS["vera"])
        expired = expired_login["token"]
        tokens.append(expired)
        time.sleep(2.5)
        _, viewer_login = login(port, "vera", PASSWORDS["vera"])
        viewer = viewer_login["token"]
        tokens.append(viewer)

        tried = refused = 0
        expected_refusals = {}
        for method, path, role in operations:
            if role is None:
                continue  # log-in: public by design
            for label, token, want in [("no token", None, {401}), ("expired token", expired, {401}),
                                       ("viewer token", viewer, {403} if role != "viewer" else None)]:
                if want is None:
                    continue  # a viewer may do this (e-stop, log-out)
                status, body = call(port, method, concrete(path), token=token, body={})
                tried += 1
                code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                if check(status in want, f"{method} {path} with {label}: {status} {code}"):
                    refused += 1
                expected_refusals[(method, path)] = expected_refusals.get((method, path), 0) + 1
                if label == "expired token":
                    check(code == "token_expired", f"{method} {path} with an expired token says token_expired (got {code})")
        print(f"mutating routes: {len(operations)}; calls tried {tried}, refused {refused}")

        # Every refusal is in the audit log.
        _, supervisor = login(port, "sam", PASSWORDS["sam"])
        tokens.append(supervisor["token"])
        status, audit = call(port, "GET", "/api/v1/audit?limit=10000", token=supervisor["token"])
        check(status == 200, "the audit log can be read")
        audited = {}
        for entry in audit:
            if entry["detail"].startswith("refused"):
                key = tuple(entry["action"].split(" ", 1))
                audited[key] = audited.get(key, 0) + 1
        missing = {k: v - audited.get(k, 0) for k, v in expected_refusals.items() if audited.get(k, 0) < v}
        check(not missing, f"every refused call is audited (missing: {missing})")
        print(f"refusals audited: {sum(min(audited.get(k, 0), v) for k, v in expected_refusals.items())} of {refused}")

        # Brute force.
        statuses = [login(port, "sam", f"guess number {i}")[0] for i in range(8)]
        locked, _ = login(port, "sam", PASSWORDS["sam"])
        check(statuses[:5] == [401] * 5 and all(s == 429 for s in statuses[5:]), f"failed log-ins are rate-limited after 5: {statuses}")
        check(locked == 429, f"the right password is refused during the lock-out ({locked})")
        print(f"brute force: statuses {statuses}, then the right password: {locked}")
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
    text = open(log_path).read()
    leaked = [t[:6] + "…" for t in tokens if t in text] + [n for n, p in PASSWORDS.items() if p in text]
    check(not leaked, f"no token or password in robotd's log ({len(text)} bytes checked; leaked: {leaked})")
    print(f"log checked: {len(text.splitlines())} lines, {len(tokens)} tokens and {len(PASSWORDS)} passwords searched, found {len(leaked)}")
    shutil.rmtree(work, ignore_errors=True)
    print(f"security: {'FAILED ' + str(len(failures)) if failures else 'all passed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
