#!/usr/bin/env python3
"""Security checks against a real robotd (with the simulator) on a loopback port.

1. Every mutating route in /openapi.json is tried without a token, with a viewer's
   token and with an expired token. Each must be refused (a viewer keeps what the
   document grants a viewer: e-stop, log-out), and each refusal must be in the audit log:
   a logged-in user's one by one, those without a valid token counted per address (one
   "refusals" entry per address and interval, so a flood cannot fill the log).
2. Brute-force log-in is rate-limited: after 5 failures the right password is refused too.
3. Tokens and passwords never appear in robotd's log.

Prints what it tried and the figures; exits non-zero on any failure.
Usage: scripts/security_check.py [path/to/bin]
"""
import os
import shutil
import sys
import tempfile
import time

from campaign import ROOT, add_user, bin_dir, call, check as check_any, free_port, log_in as login, start_robotd, stop, summary

PASSWORDS = {"sam": "supervisor secret 42", "vera": "viewer secret 42"}


def check(condition, what):
    # Dozens of calls: only failures are printed, the figures say the rest.
    return check_any(condition, what, show_passes=False)


def main():
    bins = bin_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    work = tempfile.mkdtemp(prefix="security-check-")
    store = os.path.join(work, "scans.sqlite")
    for name, role in [("sam", "supervisor"), ("vera", "viewer")]:
        add_user(bins, store, name, role, PASSWORDS[name])
    port = free_port()
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        f.write(f"store: {store}\nserver:\n  port: {port}\n  tokenLifetimeSeconds: 2\n  refusalLogIntervalSeconds: 1\n  profiles: {ROOT}/profiles\n  defaultProfile: demo\n")
    log_path = os.path.join(work, "robotd.log")
    daemon = start_robotd(bins, ["--config", config, "--sim"], log_path)
    if not check(daemon is not None, "robotd started with the command server"):
        return 1
    tokens = []
    try:
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

        tried = refused = anonymous = 0
        expected_refusals = {}
        for method, path, role in operations:
            if role is None:
                continue  # log-in: public by design
            for label, token, want in [("no token", None, {401}), ("expired token", expired, {401}),
                                       ("viewer token", viewer, {403} if role != "viewer" else None)]:
                if want is None:
                    continue  # a viewer may do this (e-stop, log-out)
                if path == "/api/v1/estop" and label == "expired token":
                    # The e-stop rule (docs/safety.md): a token this robotd issued in the last
                    # 24 h may press it even expired; stopping is always safe.
                    status, body = call(port, method, path, token=token, body={})
                    check(status == 200 and isinstance(body, dict) and body.get("latched") is True,
                          f"the e-stop takes an expired token this robotd issued: {status} {body}")
                    continue
                status, body = call(port, method, concrete(path), token=token, body={})
                tried += 1
                code = body.get("error", {}).get("code") if isinstance(body, dict) else None
                if check(status in want, f"{method} {path} with {label}: {status} {code}"):
                    refused += 1
                if label == "viewer token":
                    expected_refusals[(method, path)] = expected_refusals.get((method, path), 0) + 1
                else:
                    anonymous += 1
                if label == "expired token":
                    check(code == "token_expired", f"{method} {path} with an expired token says token_expired (got {code})")
        print(f"mutating routes: {len(operations)}; calls tried {tried}, refused {refused}")

        # Every refusal is in the audit log: the viewer's one by one, the anonymous ones
        # (no token, expired token) counted in "refusals" entries per address and interval.
        time.sleep(2.5)
        _, supervisor = login(port, "sam", PASSWORDS["sam"])
        tokens.append(supervisor["token"])
        status, audit = call(port, "GET", "/api/v1/audit?limit=10000", token=supervisor["token"])
        check(status == 200, "the audit log can be read")
        audited = {}
        counted = 0
        for entry in audit:
            if entry["detail"].startswith("refused"):
                key = tuple(entry["action"].split(" ", 1))
                audited[key] = audited.get(key, 0) + 1
            if entry["action"] == "refusals" and entry["actor"] == "anonymous":
                words = entry["detail"].split()
                if len(words) > 2 and words[2].isdigit():
                    counted += int(words[2])
        missing = {k: v - audited.get(k, 0) for k, v in expected_refusals.items() if audited.get(k, 0) < v}
        check(not missing, f"every refusal of a logged-in user is audited (missing: {missing})")
        check(counted >= anonymous, f"every refusal without a valid token is counted in the audit ({counted} of {anonymous})")
        print(f"refusals audited: {sum(min(audited.get(k, 0), v) for k, v in expected_refusals.items())} one by one, "
              f"{counted} counted per address, of {refused}")

        # Brute force.
        statuses = [login(port, "sam", f"guess number {i}")[0] for i in range(8)]
        locked, _ = login(port, "sam", PASSWORDS["sam"])
        check(statuses[:5] == [401] * 5 and all(s == 429 for s in statuses[5:]), f"failed log-ins are rate-limited after 5: {statuses}")
        check(locked == 429, f"the right password is refused during the lock-out ({locked})")
        print(f"brute force: statuses {statuses}, then the right password: {locked}")
    finally:
        stop(daemon)
    text = open(log_path).read()
    leaked = [t[:6] + "…" for t in tokens if t in text] + [n for n, p in PASSWORDS.items() if p in text]
    check(not leaked, f"no token or password in robotd's log ({len(text)} bytes checked; leaked: {leaked})")
    print(f"log checked: {len(text.splitlines())} lines, {len(tokens)} tokens and {len(PASSWORDS)} passwords searched, found {len(leaked)}")
    shutil.rmtree(work, ignore_errors=True)
    return summary("security")


if __name__ == "__main__":
    sys.exit(main())
