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
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from campaign import ROOT, add_user, bin_dir, free_port, log_in, start_robotd, stop

PASSWORD = "schemathesis secret 1"


def main():
    examples = sys.argv[1] if len(sys.argv) > 1 else "25"
    bins = bin_dir(sys.argv[2] if len(sys.argv) > 2 else None)
    work = tempfile.mkdtemp(prefix="schemathesis-")
    store = os.path.join(work, "scans.sqlite")
    profiles = os.path.join(work, "profiles")
    shutil.copytree(os.path.join(ROOT, "profiles"), profiles)
    add_user(bins, store, "sam", "supervisor", PASSWORD)
    port = free_port()
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        f.write(f"store: {store}\nserver:\n  port: {port}\n  profiles: {profiles}\n  defaultProfile: demo\n  reports: {work}/reports\n"
                f"  loginMaxFailures: 100\n")
    log_path = os.path.join(work, "robotd.log")
    daemon = start_robotd(bins, ["--config", config, "--sim"], log_path)
    if daemon is None:
        return 1
    status = 1
    try:
        token = log_in(port, "sam", PASSWORD)[1]["token"]
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
        stop(daemon)
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
