#!/usr/bin/env python3
"""Hostile clients against one real robotd (with the simulator) on a loopback port.

1. E-stop under a command flood: 4 operators flood `measure` commands (pipelined, from
   several threads each) far past the loop's 64-entry queue while a viewer presses the
   e-stop; between presses an operator takes the lease (with keep-alives), releases the
   stop, waits until the state shows it released, and returns the lease. Every press
   must be answered 200 latched, having waited at most 2 ticks (20 ms) for the loop.
   The flood's answers are counted (202, 503 queue_full, ...), as are the 202 answers
   whose command the mailbox had in fact refused (sampled).
2. Log-in flood: 200 KB random ASCII names and "a" + 20 000 combining accents, random
   passwords, from 8 threads (half over the 4 KiB log-in body cap, a quarter 3 KB
   one-character names, a quarter well-formed names that are no account). Resident memory (VmRSS, RssAnon), the audit table (rows and
   UTF-8 bytes of actor+action+detail, read-only with sqlite3; counted again after robotd's
   shutdown, as refusals may be written as per-interval summaries) and the loop's overruns
   (GET /metrics) are measured before and after; a real officer must still log in from the
   same address, during and after. Answers are counted by status and code.
3. Slow clients: hundreds of connections dribbling a request head one byte every 2 s,
   plus telemetry WebSockets (a minimal client on the socket module, reading all the
   time), while the e-stop is pressed and released again and again. Every press must be
   latched within 2 ticks and answered within 1 s. What the server did with the slow
   connections (closed them, when, with what answer) and with the WebSockets (accepted,
   refused, closed) is reported.

Prints the figures and one summary line per campaign; exits non-zero if a target is
missed (WARN and note lines are findings that are not targets). robotd runs once for all
three, on a free loopback port with a temporary store; it is always stopped at the end,
and every loop and wait has a time limit (the whole run: 250 s, or 75 s with --quick).
`--quick` runs smaller counts (20 presses, 1000 log-ins, 100 slow connections, 20
WebSockets) with the same criteria, scaled where they are totals (the memory limit has an
8 MiB floor), in about 30 s; the full run takes about two minutes. On a failure robotd's
log is kept in test-output/hostile/.

Usage: scripts/hostile_clients.py [path/to/bin] [--quick]
"""
import base64
import hashlib
import math
import os
import random
import resource
import selectors
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time

import campaign
from campaign import (ROOT, Connection, add_user, bin_dir, call, check, error_code, free_port, log_in, metric, start_robotd,
                      stop, summary)

FULL = dict(presses=100, flood_threads=3, pipeline=32, logins=10_000, login_threads=8, slow=500, websockets=100,
            slow_presses=20, slow_hold=35.0, limits=(100.0, 80.0, 50.0))
QUICK = dict(presses=20, flood_threads=3, pipeline=32, logins=1000, login_threads=8, slow=100, websockets=20,
             slow_presses=10, slow_hold=14.0, limits=(16.0, 14.0, 22.0))
ESTOP_WAIT_LIMIT_MS = 20.0      # 2 ticks of the 100 Hz loop
ESTOP_ROUND_TRIP_LIMIT_MS = 1000.0
LOGIN_RSS_LIMIT = 20 * 2**20    # per 10 000 attempts
LOGIN_RSS_FLOOR = 8 * 2**20     # the least allowed however few attempts (allocator and thread noise)
LOGIN_AUDIT_LIMIT = 2**20       # per 10 000 attempts
PASSWORD = "hostile campaign secret 42"
OFFICER_PASSWORD = "officer's own secret 42"
WS_PER_ACCOUNT = 8              # the server's expected cap per user; accounts are made to exceed the global cap

results = {}                    # campaign -> summary line
campaign_failures = {}          # campaign -> failures it added


def spread(values, unit="ms", digits=1):
    """min/median/p99/max (nearest rank)."""
    if not values:
        return "none"
    v = sorted(values)
    rank = lambda q: v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))]
    f = f"{{:.{digits}f}}"
    return "min {} median {} p99 {} max {} {}".format(*(f.format(x) for x in (v[0], rank(0.5), rank(0.99), v[-1])), unit).strip()


def tally_text(tally):
    return ", ".join(f"{k}: {v}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1])) or "none"


def count(tally, key, lock, n=1):
    with lock:
        tally[key] = tally.get(key, 0) + n


def token_of(port, name, password):
    status, body = log_in(port, name, password)
    if status != 200:
        raise RuntimeError(f"log-in of {name} answered {status}: {body}")
    return body["token"]


# MARK: e-stop presses and releases (campaigns 1 and 3)

def press(port, token):
    """One e-stop press on a new connection (as a phone would): (status, body, round trip ms)."""
    connection = Connection(port, token, timeout=5)
    started = time.perf_counter()
    status, body = connection.request("POST", "/api/v1/estop")
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    return status, body, elapsed


def keep_alive(port, token, lease, done, record):
    """Sends the lease's keep-alive every 0.2 s until `done`; records the longest gap between
    retained answers and every refusal."""
    connection = Connection(port, token, timeout=2)
    last = time.monotonic()
    while not done.wait(0.2):
        status, body = connection.request("POST", "/api/v1/lease/keepalive", headers={"X-Lease": lease})
        now = time.monotonic()
        if status == 200:
            record["longest_gap"] = max(record.get("longest_gap", 0), now - last)
            last = now
        else:
            record.setdefault("refusals", []).append(f"{status} {error_code(body) or body}")
    connection.close()


def release(port, token, seconds=6.0):
    """The operator's release between presses: take the lease, keep it alive, release the
    e-stop (again if the command was refused or did not take), wait until the state shows
    `safety.stopped == false`, return the lease. Returns (released, attempts, ms, notes)."""
    started = time.monotonic()
    end = started + seconds
    connection = Connection(port, token, timeout=3)
    notes = []
    lease = None
    while lease is None and time.monotonic() < end:
        status, body = connection.request("POST", "/api/v1/lease", body={"client": "campaign"})
        if status == 200:
            lease = body["lease"]
        else:
            notes.append(f"lease {status} {error_code(body) or body}")
            time.sleep(0.05)
    if lease is None:
        return False, 0, (time.monotonic() - started) * 1000, notes
    done = threading.Event()
    record = {}
    keeper = threading.Thread(target=keep_alive, args=(port, token, lease, done, record), daemon=True)
    keeper.start()
    attempts = 0
    released = False
    try:
        while not released and time.monotonic() < end:
            attempts += 1
            status, body = connection.request("POST", "/api/v1/estop/release", headers={"X-Lease": lease})
            if status != 202:
                notes.append(f"release {status} {error_code(body) or body}")
                time.sleep(0.05)
                continue
            command = body.get("id")
            until = min(end, time.monotonic() + 2.0)
            while time.monotonic() < until:
                status, state = connection.request("GET", "/api/v1/state")
                if status == 200 and not state["safety"]["stopped"]:
                    released = True
                    break
                status, feedback = connection.request("GET", f"/api/v1/commands/{command}")
                if status == 200 and feedback.get("state") in ("blocked", "expired", "failed", "overridden"):
                    notes.append(f"release command {feedback['state']}: {feedback.get('problem')}")
                    break
                time.sleep(0.01)
    finally:
        done.set()
        keeper.join(timeout=5)
        status, body = connection.request("DELETE", "/api/v1/lease", headers={"X-Lease": lease})
        if status != 200:
            notes.append(f"lease return {status} {error_code(body) or body}")
        connection.close()
    if record.get("refusals"):
        notes.append(f"keep-alive refused: {record['refusals'][:3]}")
    if record.get("longest_gap", 0) > 0.5:
        notes.append(f"keep-alive gap {record['longest_gap']:.2f} s")
    return released, attempts, (time.monotonic() - started) * 1000, notes


def press_series(port, viewer, operator, presses, deadline, label):
    """Presses the e-stop `presses` times (releasing between), within `deadline` (monotonic).
    Returns the list of (status, body, round trip) and release figures."""
    answers, releases, release_ms, release_attempts, notes = [], 0, [], 0, []
    for i in range(presses):
        if time.monotonic() > deadline:
            print(f"{label}: time limit reached after {i} presses", flush=True)
            break
        answers.append(press(port, viewer))
        ok, attempts, ms, why = release(port, operator, seconds=max(0.5, min(6.0, deadline - time.monotonic())))
        releases += ok
        release_attempts += attempts
        release_ms.append(ms)
        notes += why
        time.sleep(random.uniform(0, 0.03))
    return answers, dict(released=releases, attempts=release_attempts, ms=release_ms, notes=notes)


def judge_presses(label, answers, presses, round_trip_limit=None):
    waited = [b["waitedMilliseconds"] for s, b, _ in answers if s == 200 and isinstance(b, dict) and "waitedMilliseconds" in b]
    trips = [t for _, _, t in answers]
    latched = sum(1 for s, b, _ in answers if s == 200 and isinstance(b, dict) and b.get("latched") is True)
    statuses = {}
    for s, b, _ in answers:
        key = f"{s} {error_code(b)}" if error_code(b) else str(s)
        statuses[key] = statuses.get(key, 0) + 1
    causes = {}
    for s, b, _ in answers:
        if s == 200 and isinstance(b, dict):
            causes[str(b.get("stopCause"))] = causes.get(str(b.get("stopCause")), 0) + 1
    print(f"{label}: e-stop answers {tally_text(statuses)}; stop causes {tally_text(causes)}")
    print(f"{label}: waitedMilliseconds {spread(waited)}")
    print(f"{label}: HTTP round trip     {spread(trips)}")
    check(latched == presses, f"{label}: {latched} of {presses} presses answered 200 latched")
    # "Latched within 2 ticks" is judged by the loop's own tick count from the request to
    # the latching tick (ticksToLatch); waitedMilliseconds adds the HTTP task's wake-up
    # under load, which is reported, not judged.
    ticks = [b["ticksToLatch"] for s, b, _ in answers if s == 200 and isinstance(b, dict) and "ticksToLatch" in b]
    print(f"{label}: ticksToLatch        {spread(ticks, '', 0)}")
    late = [t for t in ticks if t > 2]
    check(not late and len(ticks) == presses, f"{label}: every press latched within 2 loop ticks "
          f"(max {max(ticks) if ticks else 'n/a'}; {len(late)} over; {len(ticks)} of {presses} reported)")
    slow = [w for w in waited if w > ESTOP_WAIT_LIMIT_MS]
    print(f"{label}: {len(slow)} presses waited over {ESTOP_WAIT_LIMIT_MS:.0f} ms in the HTTP handler "
          f"(max {max(waited) if waited else float('nan'):.1f} ms)")
    if round_trip_limit is not None:
        late = [t for t in trips if t > round_trip_limit]
        check(not late and trips, f"{label}: every press answered within {round_trip_limit:.0f} ms "
              f"(max {max(trips) if trips else float('nan'):.1f} ms; {len(late)} over)")
    return latched, waited, trips


def print_releases(label, figures, presses):
    print(f"{label}: releases between presses: {figures['released']} of {presses} released "
          f"({figures['attempts']} release commands); release cycle {spread(figures['ms'], 'ms', 0)}")
    if figures["notes"]:
        distinct = {}
        for n in figures["notes"]:
            distinct[n[:120]] = distinct.get(n[:120], 0) + 1
        print(f"{label}: release notes: {tally_text(distinct)}")
    if figures["released"] < presses:
        print(f"WARN {label}: {presses - figures['released']} presses found the robot still stopped (release did not take)")


# MARK: 1. E-stop under a command flood

def flood_worker(port, token, depth, done, tally, lock, sampled):
    """Pipelines `depth` measure commands at a time on one keep-alive connection until `done`.
    Every 8th batch, looks up the last accepted command: refused by the mailbox?"""
    connection = Connection(port, token, timeout=10)
    one = connection.encode("POST", "/api/v1/commands", body={"type": "measure", "seconds": 1})
    batch = one * depth
    batches = 0
    while not done.is_set():
        local = {}
        last_id = None
        try:
            connection.send(batch)
            for _ in range(depth):
                status, body = connection.receive()
                key = str(status) if status in (200, 202) else f"{status} {error_code(body)}"
                local[key] = local.get(key, 0) + 1
                if status == 202 and isinstance(body, dict):
                    last_id = body.get("id")
        except (OSError, ValueError, IndexError) as error:
            connection.close()
            local[f"connection error ({type(error).__name__})"] = local.get(f"connection error ({type(error).__name__})", 0) + 1
            time.sleep(0.05)
        with lock:
            for k, v in local.items():
                tally[k] = tally.get(k, 0) + v
        batches += 1
        if last_id is not None and batches % 8 == 0:
            status, feedback = connection.request("GET", f"/api/v1/commands/{last_id}")
            if status == 200:
                key = f"{feedback.get('state')}" + (f" ({feedback.get('problem')})" if feedback.get("problem") else "")
                count(sampled, key, lock)
    connection.close()


def campaign_estop_flood(port, tokens, settings):
    label = "e-stop under flood"
    print(f"\n== 1. {label} ==", flush=True)
    deadline = time.monotonic() + settings["limits"][0]
    overruns_before = metric(port, "robotd_loop_overruns")
    done = threading.Event()
    tally, sampled, lock = {}, {}, threading.Lock()
    workers = []
    for name in ("flood1", "flood2", "flood3", "flood4"):
        for _ in range(settings["flood_threads"]):
            t = threading.Thread(target=flood_worker, args=(port, tokens[name], settings["pipeline"], done, tally, lock, sampled),
                                 daemon=True)
            t.start()
            workers.append(t)
    flood_started = time.monotonic()
    time.sleep(1.0)  # let the flood fill the queue
    presses = settings["presses"]
    answers, figures = press_series(port, tokens["vera"], tokens["otto"], presses, deadline - 2, label)
    done.set()
    for t in workers:
        t.join(timeout=12)
    flood_seconds = time.monotonic() - flood_started
    total = sum(tally.values())
    print(f"{label}: flood of {len(workers)} connections ({settings['flood_threads']} per operator, {settings['pipeline']} pipelined): "
          f"{total} commands in {flood_seconds:.1f} s ({total / flood_seconds:.0f}/s); answers {tally_text(tally)}")
    print(f"{label}: sampled 202 answers, the command's feedback then: {tally_text(sampled)}")
    print(f"{label}: loop overruns {overruns_before} -> {metric(port, 'robotd_loop_overruns')} (reported, not a target here)")
    queue_full = sum(v for k, v in tally.items() if "queue_full" in k)
    mailbox_full = sum(v for k, v in sampled.items() if "mailbox is full" in k)
    if queue_full == 0:
        print(f"note {label}: no 503 queue_full answers" + (f"; {mailbox_full} sampled 202 answers were refused by the full mailbox"
                                                            " (the server said accepted)" if mailbox_full else ""))
    latched, waited, trips = judge_presses(label, answers, presses)
    print_releases(label, figures, presses)
    hidden = sum(1 for n in figures["notes"] if "mailbox is full" in n)
    results[label] = (f"{latched}/{presses} latched, waited max {max(waited) if waited else float('nan'):.1f} ms, round trip max "
                      f"{max(trips) if trips else float('nan'):.0f} ms; flood {total} commands: 202 {tally.get('202', 0)}, "
                      f"503 queue_full {queue_full}; releases {figures['released']}/{presses}"
                      + (f" ({hidden} release commands answered 202 but refused by the full mailbox)" if hidden else ""))


# MARK: 2. Log-in flood

ASCII = bytes(c for c in range(0x20, 0x7F) if c not in b'"\\')
TO_ASCII = bytes(ASCII[i % len(ASCII)] for i in range(256))
ACCENTED = ("a" + "\u0301" * 20_000).encode()
# Under robotd's 4 KiB log-in body cap, so it reaches the name checks: one character of
# 3 KB (a cap in characters would keep it whole).
ACCENTED_SMALL = ("a" + "\u0301" * 1_500).encode()


def hostile_login(i):
    # Two in four oversized (refused by the body cap), one in four a 3 KB one-character
    # name, one in four a well-formed name that is no account.
    kind = i % 4
    if kind == 0:
        name = os.urandom(200 * 1024).translate(TO_ASCII)
    elif kind == 1:
        name = ACCENTED
    elif kind == 2:
        name = ACCENTED_SMALL
    else:
        name = f"nobody{i}".encode()
    password = os.urandom(12).hex().encode()
    return b'{"name":"' + name + b'","password":"' + password + b'"}'


def memory(pid):
    """VmRSS, RssAnon and VmHWM of a process, in bytes."""
    figures = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "VmHWM"):
                figures[key] = int(value.split()[0]) * 1024
    return figures


LOGIN_ACTIONS = ("POST /api/v1/login", "refusals")


def audit_figures(store, after_seq=None, actions=None):
    """(rows, max seq, bytes of actor+action+detail) of the audit table, after `after_seq` and
    with one of `actions` if given. Bytes of UTF-8, not characters."""
    where, args = [], []
    if after_seq is not None:
        where.append("seq > ?")
        args.append(after_seq)
    if actions:
        where.append(f"action IN ({', '.join('?' * len(actions))})")
        args += actions
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as db:
        rows, top, size = db.execute(
            "SELECT count(*), coalesce(max(seq), 0), coalesce(sum(length(CAST(actor AS BLOB)) + length(CAST(action AS BLOB))"
            " + length(CAST(detail AS BLOB))), 0) FROM audit" + (" WHERE " + " AND ".join(where) if where else ""), args).fetchone()
    return rows, top, size


def login_worker(port, indices, tally, lock, progress, deadline):
    connection = Connection(port, timeout=30)
    for i in indices:
        if time.monotonic() > deadline:
            count(tally, "not sent (time limit)", lock, 1)
            continue
        status, body = connection.request("POST", "/api/v1/login", raw=hostile_login(i))
        key = f"{status} {error_code(body)}" if status else "connection error"
        count(tally, key, lock)
        with lock:
            progress[0] += 1
    connection.close()


def officer_login(port, out, key):
    started = time.perf_counter()
    status, body = log_in(port, "ofelia", OFFICER_PASSWORD)
    out[key] = (status, error_code(body), (time.perf_counter() - started) * 1000)


def campaign_login_flood(port, pid, store, settings):
    label = "log-in flood"
    print(f"\n== 2. {label} ==", flush=True)
    n = settings["logins"]
    deadline = time.monotonic() + settings["limits"][1]
    overruns_before = metric(port, "robotd_loop_overruns")
    heap_before = metric(port, "robotd_memory_heap_in_use_bytes")
    memory_before = memory(pid)
    rows_before, seq_before, _ = audit_figures(store)
    tally, lock, progress, officer = {}, threading.Lock(), [0], {}
    threads = [threading.Thread(target=login_worker, args=(port, range(k, n, settings["login_threads"]), tally, lock, progress, deadline),
                                daemon=True) for k in range(settings["login_threads"])]
    started = time.monotonic()
    for t in threads:
        t.start()
    # The real officer, from the same address, half-way through the flood.
    while progress[0] < n // 2 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    officer_login(port, officer, "during")
    for t in threads:
        t.join(timeout=max(1, deadline - time.monotonic() + 35))
    seconds = time.monotonic() - started
    officer_login(port, officer, "after")
    # Let audit writes that were still queued land.
    settled = audit_figures(store, seq_before)
    for _ in range(20):
        time.sleep(0.25)
        now = audit_figures(store, seq_before)
        if now == settled:
            break
        settled = now
    rows, _, audit_bytes = settled
    memory_after = memory(pid)
    overruns_after = metric(port, "robotd_loop_overruns")
    heap_after = metric(port, "robotd_memory_heap_in_use_bytes")
    sent = progress[0]
    print(f"{label}: {sent} log-ins in {seconds:.1f} s ({sent / max(seconds, 1e-9):.0f}/s) from {len(threads)} threads; "
          f"answers {tally_text(tally)}")
    rss_growth = memory_after["VmRSS"] - memory_before["VmRSS"]
    anon_growth = memory_after["RssAnon"] - memory_before["RssAnon"]
    mib = lambda b: f"{b / 2**20:.1f} MiB"
    print(f"{label}: VmRSS {mib(memory_before['VmRSS'])} -> {mib(memory_after['VmRSS'])} ({rss_growth / 2**20:+.1f} MiB); "
          f"RssAnon {mib(memory_before['RssAnon'])} -> {mib(memory_after['RssAnon'])} ({anon_growth / 2**20:+.1f} MiB); "
          f"VmHWM {mib(memory_after['VmHWM'])}")
    print(f"{label}: audit grew {rows} rows (from {rows_before}), {audit_bytes} bytes of actor+action+detail "
          f"({audit_bytes / max(rows, 1):.0f} per row, {audit_bytes / max(sent, 1):.0f} per attempt) by the end of the flood; "
          f"counted again after robotd's shutdown (refusals may be written as per-interval summaries)")
    print(f"{label}: loop overruns {overruns_before} -> {overruns_after}")
    for key in ("during", "after"):
        status, code, ms = officer.get(key, (None, None, 0))
        print(f"{label}: the real officer's log-in {key} the flood: {status}{' ' + code if code else ''} in {ms:.0f} ms")
    scale = n / 10_000
    rss_limit = max(LOGIN_RSS_LIMIT * scale, LOGIN_RSS_FLOOR)
    audit_limit = LOGIN_AUDIT_LIMIT * scale
    check(sent == n, f"{label}: all {n} log-ins sent within the time limit ({sent})")
    # The target is robotd's heap (malloc in use); the resident set also holds memory the
    # allocator keeps for reuse after the flood's large bodies, and is reported.
    heap_growth = (heap_after or 0) - (heap_before or 0)
    print(f"{label}: heap in use {mib(heap_before or 0)} -> {mib(heap_after or 0)} ({heap_growth / 2**20:+.1f} MiB)")
    check(heap_before is not None and heap_growth <= rss_limit, f"{label}: heap in use grew {mib(heap_growth)} (limit {mib(rss_limit)})")
    for key in ("during", "after"):
        check(officer.get(key, (None,))[0] == 200, f"{label}: the real officer logs in {key} the flood ({officer.get(key, (None,))[0]})")
    check(overruns_before is not None and overruns_after == overruns_before,
          f"{label}: loop overruns grew by {None if overruns_before is None or overruns_after is None else overruns_after - overruns_before}")
    line = lambda audit: (f"{sent} attempts, RSS {rss_growth / 2**20:+.1f} MiB, audit {audit}, officer "
                          f"{officer.get('during', (None,))[0]}/{officer.get('after', (None,))[0]}, overruns "
                          f"+{(overruns_after or 0) - (overruns_before or 0):.0f}; answers {tally_text(tally)}")
    results[label] = line(f"+{audit_bytes / 1024:.1f} KiB/+{rows} rows by the flood's end (not counted after shutdown)")

    def finish():
        """After robotd has stopped (and flushed what it counts per interval): the log-in
        entries and refusal summaries written since the flood began."""
        rows, _, final_bytes = audit_figures(store, seq_before, LOGIN_ACTIONS)
        print(f"{label}: audit entries for log-ins and refusals since the flood began, after robotd's shutdown: {rows} rows, "
              f"{final_bytes} bytes of actor+action+detail ({final_bytes / max(sent, 1):.1f} per attempt)")
        # The larger of: every entry written during the flood, and the log-in ones written by the end.
        audit_bytes = max(final_bytes, settled[2])
        rows = max(rows, settled[0])
        check(audit_bytes <= audit_limit, f"{label}: audit grew {audit_bytes / 1024:.1f} KiB (limit {audit_limit / 1024:.0f} KiB)")
        refused = sum(v for k, v in tally.items() if k.startswith(("401", "429")))
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as db:
            traced = db.execute("SELECT count(*) FROM audit WHERE seq > ? AND (action = 'refusals' OR detail LIKE 'refused%')",
                                (seq_before,)).fetchone()[0]
        if refused and not traced:
            print(f"WARN {label}: no audit entry records the flood's {refused} refused log-ins (neither one by one nor as a "
                  f"'refusals' summary; a summary counted per interval may not be written at shutdown)")
        results[label] = line(f"+{audit_bytes / 1024:.1f} KiB/+{rows} rows")
    return finish


# MARK: 3. Slow clients

SLOW_HEAD = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n"
SLOW_TAIL = b"X-Slow: " + b"a" * 4096


class SlowHerd(threading.Thread):
    """Holds the slow connections: each sends the next byte of a header every 2 s. Notes when
    the server closes one (EOF or reset) and what it had answered."""

    def __init__(self, port, n, until):
        super().__init__(daemon=True)
        self.port, self.n, self.until = port, n, until
        self.connect_failures = {}
        self.conns = []          # dicts: sock, opened, sent, next, closed, answer
        self.stop_event = threading.Event()
        self.ready = threading.Event()

    def open_all(self):
        give_up = time.monotonic() + 15
        for _ in range(self.n):
            if time.monotonic() > give_up:
                self.connect_failures["not tried (15 s to open them passed)"] = self.n - len(self.conns) - sum(self.connect_failures.values())
                break
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=3)
                s.sendall(SLOW_HEAD)
                s.setblocking(False)
                now = time.monotonic()
                self.conns.append(dict(sock=s, opened=now, sent=0, next=now + random.uniform(0.5, 2.0), closed=None, answer=b"", how=None))
            except OSError as error:
                key = type(error).__name__
                self.connect_failures[key] = self.connect_failures.get(key, 0) + 1

    def run(self):
        self.open_all()
        self.ready.set()
        selector = selectors.DefaultSelector()
        for c in self.conns:
            selector.register(c["sock"], selectors.EVENT_READ, c)
        while not self.stop_event.is_set() and time.monotonic() < self.until:
            for key, _ in selector.select(timeout=0.1):
                c = key.data
                try:
                    data = c["sock"].recv(4096)
                except BlockingIOError:
                    continue
                except OSError as error:
                    data, c["how"] = b"", type(error).__name__
                if data:
                    c["answer"] += data[:256]
                    continue
                c["closed"] = time.monotonic() - c["opened"]
                c["how"] = c["how"] or "EOF"
                selector.unregister(c["sock"])
            now = time.monotonic()
            for c in self.conns:
                if c["closed"] is None and now >= c["next"]:
                    try:
                        c["sock"].send(SLOW_TAIL[c["sent"] % len(SLOW_TAIL):][:1])
                        c["sent"] += 1
                    except BlockingIOError:
                        pass
                    except OSError as error:
                        c["closed"], c["how"] = now - c["opened"], type(error).__name__
                        try:
                            selector.unregister(c["sock"])
                        except (KeyError, ValueError):
                            pass
                    c["next"] = now + 2.0
        selector.close()

    def close_all(self):
        self.stop_event.set()
        self.join(timeout=5)
        for c in self.conns:
            try:
                c["sock"].close()
            except OSError:
                pass


def ws_connect(port, query, timeout=5):
    """A WebSocket handshake on a new socket: (socket or None, status, leftover bytes, detail)."""
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall((f"GET /api/v1/ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        s.close()
        return None, 0, b"", f"no answer ({lines[0][:60]!r})"
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    if status != 101:
        try:
            wanted = min(int(headers.get("content-length", "0")), 65536)
            while len(rest) < wanted:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except (OSError, ValueError):
            pass
        s.close()
        return None, status, b"", rest.decode(errors="replace")[:200]
    expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != expected:
        s.close()
        return None, status, b"", "bad Sec-WebSocket-Accept"
    return s, status, rest, ""


def ws_frame(opcode, payload=b""):
    """A masked client frame (payload under 126 bytes)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WebSocketHerd(threading.Thread):
    """Reads every accepted WebSocket all the time; answers pings; counts frames and notes closes."""

    def __init__(self):
        super().__init__(daemon=True)
        self.clients = []        # dicts: sock, buffer, frames, opened, closed, how
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()

    def add(self, sock, leftover):
        sock.setblocking(False)
        c = dict(sock=sock, buffer=leftover, frames=0, bytes=0, opened=time.monotonic(), closed=None, how=None, kinds={})
        with self.lock:
            self.clients.append(c)
            self.selector.register(sock, selectors.EVENT_READ, c)

    def frames(self):
        with self.lock:
            return sum(c["frames"] for c in self.clients)

    def parse(self, c):
        b = c["buffer"]
        while len(b) >= 2:
            opcode, length, at = b[0] & 0x0F, b[1] & 0x7F, 2
            if length == 126:
                if len(b) < 4:
                    break
                length, at = int.from_bytes(b[2:4], "big"), 4
            elif length == 127:
                if len(b) < 10:
                    break
                length, at = int.from_bytes(b[2:10], "big"), 10
            if b[1] & 0x80:
                at += 4  # a server must not mask; skip it anyway
            if len(b) < at + length:
                break
            payload, b = b[at:at + length], b[at + length:]
            c["frames"] += 1
            c["bytes"] += length
            kind = {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}.get(opcode, f"op{opcode}")
            if opcode == 1 and payload.startswith(b'{"type":"'):
                kind = payload[9:payload.index(b'"', 9)].decode(errors="replace")
            c["kinds"][kind] = c["kinds"].get(kind, 0) + 1
            if opcode == 9:
                try:
                    c["sock"].send(ws_frame(10, payload[:125]))
                except OSError:
                    pass
            elif opcode == 8:
                c["how"] = "close frame " + (str(int.from_bytes(payload[:2], "big")) if len(payload) >= 2 else "")
        c["buffer"] = b

    def run(self):
        while not self.stop_event.is_set():
            with self.lock:
                empty = not self.clients
            if empty:
                time.sleep(0.05)
                continue
            for key, _ in self.selector.select(timeout=0.1):
                c = key.data
                try:
                    data = c["sock"].recv(65536)
                except BlockingIOError:
                    continue
                except OSError as error:
                    data, c["how"] = b"", c["how"] or type(error).__name__
                with self.lock:
                    if data:
                        c["buffer"] += data
                        self.parse(c)
                    else:
                        c["closed"] = time.monotonic() - c["opened"]
                        c["how"] = c["how"] or "EOF"
                        self.selector.unregister(c["sock"])

    def close_all(self):
        self.stop_event.set()
        self.join(timeout=5)
        for c in self.clients:
            try:
                if c["closed"] is None:
                    c["sock"].setblocking(True)
                    c["sock"].settimeout(0.2)
                    c["sock"].send(ws_frame(8, (1000).to_bytes(2, "big")))
                c["sock"].close()
            except OSError:
                pass
        self.selector.close()


def campaign_slow_clients(port, tokens, ws_accounts, settings):
    label = "slow clients"
    print(f"\n== 3. {label} ==", flush=True)
    start = time.monotonic()
    deadline = start + settings["limits"][2]
    hold_until = min(deadline - 2, start + settings["slow_hold"])
    overruns_before = metric(port, "robotd_loop_overruns")
    herd = SlowHerd(port, settings["slow"], hold_until)
    herd.start()
    herd.ready.wait(timeout=30)
    opened = len(herd.conns)
    print(f"{label}: {opened} slow connections open in {time.monotonic() - start:.1f} s"
          + (f"; connect failures {tally_text(herd.connect_failures)}" if herd.connect_failures else ""), flush=True)

    # WebSockets: a one-time ticket each, or (where there is no ticket route yet) the token in the query.
    sockets = WebSocketHerd()
    sockets.start()
    mode = None
    outcome = {}
    first_refusal = {}
    for i in range(settings["websockets"]):
        if time.monotonic() > deadline - 5:
            outcome["not tried (time limit)"] = outcome.get("not tried (time limit)", 0) + 1
            continue
        account = ws_accounts[i % len(ws_accounts)]
        token = tokens[account]
        if mode != "access_token":
            status, body = call(port, "POST", "/api/v1/tickets", token=token, body={"path": "/api/v1/ws"}, timeout=5)
            if status == 200 and isinstance(body, dict) and body.get("ticket"):
                mode = "ticket"
                query = "ticket=" + body["ticket"]
            elif status == 404 and mode is None:
                mode = "access_token"
                print(f"{label}: POST /api/v1/tickets answered 404 {error_code(body)}: WebSockets use ?access_token= instead", flush=True)
            else:
                key = f"ticket refused {status} {error_code(body)}"
                outcome[key] = outcome.get(key, 0) + 1
                first_refusal.setdefault(key, str(body)[:200])
                continue
        if mode == "access_token":
            query = "access_token=" + token
        try:
            sock, status, leftover, detail = ws_connect(port, query)
        except OSError as error:
            sock, status, detail = None, 0, f"{type(error).__name__}: {error}"
        if sock is not None:
            sockets.add(sock, leftover)
            outcome["accepted (101)"] = outcome.get("accepted (101)", 0) + 1
        else:
            key = f"refused {status}"
            outcome[key] = outcome.get(key, 0) + 1
            first_refusal.setdefault(key, detail)
    accepted = outcome.get("accepted (101)", 0)
    print(f"{label}: {settings['websockets']} WebSockets over {len(ws_accounts)} accounts ({mode}): {tally_text(outcome)}", flush=True)
    for key, detail in first_refusal.items():
        print(f"{label}:   first '{key}': {detail or '(no body)'}")
    time.sleep(1.0)
    frames_before, frames_at = sockets.frames(), time.monotonic()

    presses = settings["slow_presses"]
    answers, figures = press_series(port, tokens["vera"], tokens["otto"], presses, hold_until - 1, label)
    frames_during = (sockets.frames() - frames_before) / max(time.monotonic() - frames_at, 1e-9)

    # Hold on until the end of the window, watching what the server does with the slow ones.
    while time.monotonic() < hold_until and herd.is_alive():
        time.sleep(0.2)
    held = time.monotonic() - start
    status_during, _ = call(port, "GET", "/api/v1/health", timeout=5)
    herd.close_all()
    closed = [c for c in herd.conns if c["closed"] is not None]
    answered = {}
    for c in closed:
        first = c["answer"].split(b"\r\n", 1)[0].decode(errors="replace")[:40] or "(nothing)"
        answered[f"{first} then {c['how']}"] = answered.get(f"{first} then {c['how']}", 0) + 1
    print(f"{label}: slow connections: {len(closed)} of {opened} closed by the server within {held:.0f} s"
          + (f"; after {spread([c['closed'] for c in closed], 's', 1)}" if closed else "")
          + (f"; answers: {tally_text(answered)}" if closed else ""))
    print(f"{label}: slow connections still open at the end: {opened - len(closed)}; bytes each sent {spread([c['sent'] for c in herd.conns], 'bytes', 0)}")
    ws_closed = [c for c in sockets.clients if c["closed"] is not None]
    kinds = {}
    for c in sockets.clients:
        for k, v in c["kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    per_client = [c["frames"] / max(time.monotonic() - c["opened"], 1e-9) for c in sockets.clients]
    print(f"{label}: WebSockets: {accepted} accepted, {len(ws_closed)} closed by the server"
          + (f" (after {spread([c['closed'] for c in ws_closed], 's', 1)}; {tally_text({c['how']: 1 for c in ws_closed})})" if ws_closed else "")
          + f"; frames {tally_text(kinds)}; {frames_during:.0f} frames/s in all during the presses; per client {spread(per_client, '/s', 1)}")
    sockets.close_all()
    print(f"{label}: GET /api/v1/health with everything open: {status_during}; loop overruns {overruns_before} -> "
          f"{metric(port, 'robotd_loop_overruns')} (reported, not a target here)")
    latched, waited, trips = judge_presses(label, answers, presses, ESTOP_ROUND_TRIP_LIMIT_MS)
    print_releases(label, figures, presses)
    results[label] = (f"{latched}/{presses} latched, waited max {max(waited) if waited else float('nan'):.1f} ms, round trip max "
                      f"{max(trips) if trips else float('nan'):.0f} ms; slow {opened} open, {len(closed)} closed by the server"
                      + (f" (median after {sorted(c['closed'] for c in closed)[len(closed) // 2]:.1f} s)" if closed else "")
                      + f"; WebSockets {accepted}/{settings['websockets']} accepted ({mode}), {len(ws_closed)} closed by the server")


# MARK: main

class TimeLimit(Exception):
    pass


def main():
    arguments = [a for a in sys.argv[1:] if a != "--quick"]
    quick = "--quick" in sys.argv[1:]
    settings = QUICK if quick else FULL
    bins = bin_dir(arguments[0] if arguments else None)
    whole = 75 if quick else 250
    work = tempfile.mkdtemp(prefix="hostile-clients-")
    store = os.path.join(work, "scans.sqlite")
    ws_accounts = [f"watch{k}" for k in range(1, math.ceil(settings["websockets"] / WS_PER_ACCOUNT) + 1)]
    accounts = [("flood1", "operator"), ("flood2", "operator"), ("flood3", "operator"), ("flood4", "operator"),
                ("otto", "operator"), ("vera", "viewer")] + [(n, "viewer") for n in ws_accounts]
    began = time.monotonic()
    for attempt in range(2):
        try:
            for name, role in accounts:
                add_user(bins, store, name, role, PASSWORD)
            add_user(bins, store, "ofelia", "operator", OFFICER_PASSWORD)
            break
        except (OSError, Exception) as error:  # robotctl missing or failing while it is rebuilt
            if attempt:
                raise
            print(f"adding users failed ({error}); the binaries may be being rebuilt: retrying in 60 s", flush=True)
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            time.sleep(60)
    port = free_port()
    config = os.path.join(work, "robotd.yaml")
    with open(config, "w") as f:
        f.write(f"store: {store}\nserver:\n  port: {port}\n  profiles: {ROOT}/profiles\n  defaultProfile: demo\n"
                f"  reports: {work}/reports\n"
                # Room for the 100 telemetry clients of campaign 3 (the default caps are 64 in
                # all and 8 per user; their refusals are checked by HostileClientTests).
                f"  maximumWebSockets: 128\n  maximumWebSocketsPerUser: 16\n")
    log_path = os.path.join(work, "robotd.log")
    daemon = start_robotd(bins, ["--config", config, "--sim"], log_path)
    if daemon is None:
        print("robotd did not start; the binaries may be being rebuilt: retrying in 60 s", flush=True)
        time.sleep(60)
        daemon = start_robotd(bins, ["--config", config, "--sim"], log_path)
    if not check(daemon is not None, "robotd started with the command server and the simulator"):
        return 1
    print(f"{'quick' if quick else 'full'} run; robotd pid {daemon.pid} on 127.0.0.1:{port}; set-up {time.monotonic() - began:.1f} s", flush=True)
    # Our own descriptors (robotd keeps the limit it started with).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))

    def expired(*_):
        raise TimeLimit()
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(whole)
    finishers = []
    try:
        tokens = {name: token_of(port, name, PASSWORD) for name, _ in accounts}
        for name, runner in [("e-stop under flood", lambda: campaign_estop_flood(port, tokens, settings)),
                             ("log-in flood", lambda: campaign_login_flood(port, daemon.pid, store, settings)),
                             ("slow clients", lambda: campaign_slow_clients(port, tokens, ws_accounts, settings))]:
            before = len(campaign.failures)
            started = time.monotonic()
            try:
                finish = runner()
                if finish:
                    finishers.append((name, finish))
            except TimeLimit:
                raise
            except Exception as error:  # a campaign that broke is a failure, and the others still run
                check(False, f"{name}: the campaign broke: {type(error).__name__}: {error}")
            campaign_failures[name] = campaign.failures[before:]
            print(f"{name}: {time.monotonic() - started:.1f} s", flush=True)
            check(daemon.poll() is None, f"robotd still running after '{name}'")
            if daemon.poll() is not None:
                break
    except TimeLimit:
        check(False, f"the whole run finished within {whole} s")
    finally:
        signal.alarm(0)
        stop(daemon)
    check(daemon.returncode == 0, f"robotd stopped cleanly on SIGTERM (exit status {daemon.returncode})")
    for name, finish in finishers:
        before = len(campaign.failures)
        try:
            finish()
        except Exception as error:
            check(False, f"{name}: the final figures could not be taken: {type(error).__name__}: {error}")
        campaign_failures[name] = campaign_failures.get(name, []) + campaign.failures[before:]
    print(f"\nrun took {time.monotonic() - began:.0f} s")
    for name in ("e-stop under flood", "log-in flood", "slow clients"):
        failed = campaign_failures.get(name)
        verdict = "not run" if failed is None else ("passed" if not failed else f"FAILED {len(failed)}")
        print(f"{name}: {verdict} — {results.get(name, 'no figures')}")
    if campaign.failures:
        keep = os.path.join(ROOT, "test-output", "hostile")
        os.makedirs(keep, exist_ok=True)
        shutil.copy(log_path, os.path.join(keep, "robotd.log"))
        print(f"robotd's log kept in {keep}/robotd.log")
    shutil.rmtree(work, ignore_errors=True)
    return summary("hostile clients")


if __name__ == "__main__":
    sys.exit(main())
