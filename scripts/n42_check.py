"""The N42.42 export read by an independent reader: SpecUtils (Sandia's library behind
InterSpec and Cambio, through its Python bindings `sandiaspecutils`).

Runs real scans (robotd driving the simulator over a pty): a clean 20 ft container, a
40 ft container with a Cs-137 source (exceeds, so an alarm), and a scan stopped by
SIGTERM mid-way (unfinished). Exports each with `robotctl report` and, for every scan,
the same file from robotd's API. Then, for every file:
- SpecUtils loads it with no parse warnings and finds every reading of the JSON report
  (or of the store, for the unfinished scan) with its start time, real time, counts and
  class (background or foreground);
- the XML, read back by XPath, carries every reading's dose rate and position (converted
  back from N42's polar RelativeLocation to the container's frame) as the JSON has them;
- the verdict, alarm, background and seal are those of the JSON report; the unfinished
  scan is marked INCOMPLETE, has no analysis, and `robotctl report` exits 4 saying so.

Usage: python3 scripts/n42_check.py [BIN_DIR]
"""
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import campaign
from campaign import check

import SpecUtils

NS = {"n": "http://physics.nist.gov/N42/2011/N42"}
ROOT = campaign.ROOT


def parse_time(text):
    """ISO 8601 (the JSON's and the XML's) to seconds since the epoch."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def container_frame(container, x, y):
    """Yard (x, y) to (along, across) in the container's frame: the JSON report's
    placement (door-end left corner, heading of the long axis), computed here anew."""
    h = math.radians(container["headingDegrees"])
    dx, dy = x - container["xMetres"], y - container["yMetres"]
    return dx * math.cos(h) + dy * math.sin(h), dx * math.sin(h) - dy * math.cos(h)


def from_polar(azimuth, inclination, distance):
    """N42 RelativeLocation (azimuth from the long axis, positive right; inclination up)."""
    a, i = math.radians(azimuth), math.radians(inclination)
    return distance * math.cos(i) * math.cos(a), distance * math.cos(i) * math.sin(a), distance * math.sin(i)


def expected_readings(report):
    """Every reading the JSON report counts: (class, start, real time, counts, dose, position)."""
    plan = report["plan"]
    container = plan["container"]
    out = []
    # Where each face's points must be, from the container's size and the stand-off alone
    # (independent of the yard-to-container conversion): (axis, value) in the container frame.
    s = plan["profile"]["standOffMetres"]
    length, width = {"22G1": (6.058, 2.438), "42G1": (12.192, 2.438), "45G1": (12.192, 2.438), "L5G1": (13.716, 2.438)}[container["size"]]
    walls = {"left": (1, -s), "right": (1, width + s), "door": (0, -s), "front": (0, length + s)}
    faces = []
    bx, by = container_frame(container, plan["backgroundX"], plan["backgroundY"])
    for r in report["background"]:
        out.append(("Background", r, (bx, by, plan["profile"]["backgroundHeightMetres"])))
        faces.append(None)
    for group in ("points", "remeasures"):
        for index, readings in report[group].items():
            p = plan["points"][int(index)]
            along, across = container_frame(container, p["xMetres"], p["yMetres"])
            for r in readings:
                out.append(("Foreground", r, (along, across, p["heightMetres"])))
                faces.append(p["face"])
    return [{"class": c, "start": parse_time(r["takenAt"]) - r["seconds"], "real": r["seconds"], "counts": r["counts"],
             "dose": r["grossDoseRate"], "position": pos, "face": face, "wall": walls.get(face)} for (c, r, pos), face in zip(out, faces)]


def store_readings(store, scan_id):
    """Every reading the store holds for the scan (the unfinished scan has no JSON report)."""
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT kind, counts, seconds, grossDose, takenAt FROM readings WHERE scanId = ?", (scan_id,)).fetchall()
    return [{"class": "Background" if kind == "background" else "Foreground", "start": parse_time(taken) - seconds, "real": seconds,
             "counts": counts, "dose": dose} for kind, counts, seconds, dose, taken in rows]


def counted_store_readings(store, scan_id, n42, name):
    """The store's readings of an unfinished scan that the file exports: every reading the
    store holds is either in the file or counted in its remark as not counting (a set cut
    short by the stop)."""
    held = store_readings(store, scan_id)
    tree = ET.parse(n42)
    used = set()
    for m in tree.findall("n:RadMeasurement", NS):
        find(held, m.findtext("n:MeasurementClassCode", namespaces=NS), parse_time(m.findtext("n:StartDateTime", namespaces=NS)),
             int(m.findtext("n:GrossCounts/n:CountData", namespaces=NS)), used)
    in_file = len(tree.findall("n:RadMeasurement", NS))
    remarks = " ".join(r.text or "" for r in tree.findall("n:Remark", NS))
    words = remarks.split(" further readings are kept")[0].split()
    superseded = int(words[-1]) if " further readings are kept" in remarks else 0
    exported = [r for i, r in enumerate(held) if i in used]
    check(len(held) > 0 and len(exported) == in_file and len(exported) + superseded == len(held),
          f"{name}: the store holds {len(held)} readings: {len(exported)} in the file, {superseded} named as not counting")
    return exported


def find(expected, cls, start, counts, used):
    """The record's reading with this class and counts that started within 3 ms of
    `start` (both sides write milliseconds; a start is the end minus the real time), not
    already matched; None if there is none."""
    for i, e in enumerate(expected):
        if i not in used and e["class"] == cls and e["counts"] == counts and abs(e["start"] - start) <= 0.003:
            used.add(i)
            return e
    return None


def check_with_specutils(path, expected, name):
    """SpecUtils loads the file without warnings and finds each expected reading."""
    spec = SpecUtils.SpecFile()
    try:
        spec.loadFile(path, SpecUtils.ParserType.N42_2012)
    except Exception as error:  # SpecUtils raises when it cannot read the file at all
        check(False, f"{name}: SpecUtils cannot read {os.path.basename(path)}: {error}")
        return
    warnings = list(spec.parseWarnings())
    check(not warnings, f"{name}: SpecUtils reads it with no parse warnings {warnings if warnings else ''}")
    classes = {SpecUtils.SourceType.Background: "Background", SpecUtils.SourceType.Foreground: "Foreground"}
    found = []
    for m in spec.measurements():
        start = m.startTime().replace(tzinfo=timezone.utc).timestamp()
        found.append({"class": classes.get(m.sourceType(), str(m.sourceType())), "start": start, "real": m.realTime(),
                      "counts": int(round(m.gammaCountSum()))})
    check(len(found) == len(expected), f"{name}: SpecUtils finds {len(found)} measurements, the record has {len(expected)}")
    used = set()
    mismatches = []
    for g in found:
        w = find(expected, g["class"], g["start"], g["counts"], used)
        if w is None or abs(w["real"] - g["real"]) > 0.0015:
            mismatches.append((g, w))
    check(not mismatches and len(found) == len(expected),
          f"{name}: every measurement's class, start time (3 ms), real time (1.5 ms) and counts match the record"
          + (f"; {len(mismatches)} do not, first {mismatches[0]}" if mismatches else ""))


def check_xml(path, expected, name, with_positions):
    """XPath: every RadMeasurement's dose rate and position against the record."""
    tree = ET.parse(path)
    measurements = tree.findall("n:RadMeasurement", NS)
    used = set()
    problems = []
    for m in measurements:
        start = parse_time(m.findtext("n:StartDateTime", namespaces=NS))
        counts = int(m.findtext("n:GrossCounts/n:CountData", namespaces=NS))
        cls = m.findtext("n:MeasurementClassCode", namespaces=NS)
        wanted = find(expected, cls, start, counts, used)
        if wanted is None:
            problems.append(f"{m.get('id')}: no reading of the record at {start} with {counts} counts")
            continue
        dose = float(m.findtext("n:DoseRate/n:DoseRateValue", namespaces=NS))
        if abs(dose - wanted["dose"]) > 6e-7:
            problems.append(f"{m.get('id')}: dose rate {dose}, the record has {wanted['dose']}")
        location = m.find("n:RadInstrumentState/n:StateVector/n:RelativeLocation", NS)
        if location is None or location.find("n:Origin", NS).get("originReference") != "RadItemInformation-Container":
            problems.append(f"{m.get('id')}: no RelativeLocation to the container")
            continue
        if with_positions:
            xyz = from_polar(*(float(location.findtext(f"n:{t}", namespaces=NS))
                               for t in ("RelativeLocationAzimuthValue", "RelativeLocationInclinationValue", "DistanceValue")))
            if wanted.get("wall") and abs(xyz[wanted["wall"][0]] - wanted["wall"][1]) > 0.002:
                problems.append(f"{m.get('id')}: a point on the {wanted['face']} face is at {tuple(round(v, 3) for v in xyz)}, "
                                f"not at the stand-off from that wall")
            if max(abs(a - b) for a, b in zip(xyz, wanted["position"])) > 0.002:
                problems.append(f"{m.get('id')}: position {tuple(round(v, 3) for v in xyz)}, the record's point is "
                                f"{tuple(round(v, 3) for v in wanted['position'])}")
    check(len(measurements) == len(expected) and not problems,
          f"{name}: XPath finds {len(measurements)} RadMeasurements; every dose rate (to 1e-6 uSv/h)"
          + (" and position (to 2 mm)" if with_positions else "") + " matches the record"
          + (f"; {len(problems)} problems, first: {problems[0]}" if problems else ""))
    return tree


def check_verdict(tree, report, name):
    analysis = tree.find("n:AnalysisResults", NS)
    if not check(analysis is not None, f"{name}: the verdict is an AnalysisResults"):
        return
    outcome = report["verdict"]["outcome"]
    description = analysis.findtext("n:AnalysisResultDescription", namespaces=NS) or ""
    check(description.lower().startswith(outcome if outcome != "exceeds" else "exceeds"),
          f"{name}: the analysis says '{description[:40]}…' for the verdict '{outcome}'")
    alarmed = analysis.find("n:RadAlarm", NS) is not None
    check(alarmed == (outcome in ("anomalous", "exceeds")), f"{name}: a RadAlarm {'is' if alarmed else 'is not'} raised for '{outcome}'")
    background = float(analysis.findtext("n:DoseAnalysisResults/n:BackgroundDoseRateValue", namespaces=NS))
    check(abs(background - report["verdict"]["backgroundMean"]) < 6e-7, f"{name}: the background dose rate is the verdict's")
    remarks = " ".join(r.text or "" for r in tree.findall("n:Remark", NS))
    seal = report.get("seal") or {}
    check(report["chainHash"] in remarks and seal.get("hash", "missing") in remarks and seal.get("signature", "missing") in remarks,
          f"{name}: the reading chain head and the signed seal are in the document")


def fetch_from_api(bins, store, scan_ids, directory):
    """The same exports through robotd's API (GET /api/v1/scans/ID/report.n42)."""
    campaign.add_user(bins, store, "reviewer", "viewer", "n42-check-password")
    port = campaign.free_port()
    daemon = campaign.start_robotd(bins, ["--sim", "--store", store, "--port", str(port)], os.path.join(directory, "api.log"))
    if not check(daemon is not None, "robotd with its command server starts on the scans' store"):
        return {}
    fetched = {}
    try:
        status, body = campaign.log_in(port, "reviewer", "n42-check-password")
        token = body.get("token") if isinstance(body, dict) else None
        for scan_id in scan_ids:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/scans/{scan_id}/report.n42",
                                             headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                path = os.path.join(directory, f"api-{scan_id}.n42")
                with open(path, "wb") as f:
                    f.write(response.read())
                fetched[scan_id] = (path, response.headers.get("Scan-Completeness"), response.headers.get("Content-Type"))
    finally:
        campaign.stop(daemon)
    return fetched


def run_scan(bins, store, reports, scenario, number, size, extra=(), stop_after=None):
    """One `robotd --scan` on the simulator (demo profile, 20× simulated time); with
    `stop_after`, SIGTERM after that many seconds (the scan stays unfinished)."""
    arguments = [os.path.join(bins, "robotd"), "--sim", "--scenario", os.path.join(ROOT, "hil/scenarios", scenario), "--scan", number,
                 "--size", size, "--at", "0,0,0", "--profile", os.path.join(ROOT, "profiles/demo.yaml"), "--store", store,
                 "--reports", reports, "--no-server", "--exit-when-done", "--sim-time-scale", "20", *extra]
    log_path = os.path.join(os.path.dirname(store), f"{number}.log")
    with open(log_path, "w") as log:
        daemon = subprocess.Popen(arguments, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        if stop_after is not None:
            time.sleep(stop_after)
            daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=300)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    with sqlite3.connect(store) as db:
        row = db.execute("SELECT id, status FROM scans WHERE containerNumber = ? ORDER BY createdAt DESC LIMIT 1", (number,)).fetchone()
    if row is None:
        print(open(log_path).read()[-3000:])
    return row


def main():
    bins = campaign.bin_dir(sys.argv[1] if len(sys.argv) > 1 else None)
    robotctl = os.path.join(bins, "robotctl")
    directory = tempfile.mkdtemp(prefix="n42-check-")
    store = os.path.join(directory, "scans.sqlite")
    reports = os.path.join(directory, "reports")
    scans = [("clean 20 ft", run_scan(bins, store, reports, "clean-20ft.yaml", "CSQU3054383", "22G1"), "done"),
             ("Cs-137 40 ft", run_scan(bins, store, reports, "cs137-40ft.yaml", "MSKU9070323", "42G1"), "done"),
             ("stopped mid-scan", run_scan(bins, store, reports, "cs137-40ft.yaml", "TGHU1234567", "42G1",
                                           stop_after=8), "running")]
    for name, row, status in scans:
        check(row is not None and row[1] == status, f"{name}: the scan is in the store as '{status}' (found {row[1] if row else 'none'})")
    if campaign.failures:
        return campaign.summary("N42.42 export")
    exported = os.path.join(directory, "exported")
    for name, (scan_id, status), _ in scans:
        result = subprocess.run([robotctl, "report", scan_id, "--store", store, "--out", exported], cwd=ROOT, capture_output=True, text=True)
        n42 = os.path.join(exported, f"{scan_id}.n42")
        if status == "done":
            check(result.returncode == 0 and os.path.exists(n42), f"{name}: robotctl report writes {scan_id}.n42 beside the JSON")
            report = json.load(open(os.path.join(exported, f"{scan_id}.json")))
            expected = expected_readings(report)
            check_with_specutils(n42, expected, name)
            tree = check_xml(n42, expected, name, with_positions=True)
            check_verdict(tree, report, name)
        else:
            check(result.returncode == 4 and "has no verdict" in result.stderr and os.path.exists(n42)
                  and not os.path.exists(os.path.join(exported, f"{scan_id}.json")),
                  f"{name}: robotctl report exits 4 ({result.returncode}), says the scan has no verdict, and writes only the N42 file")
            expected = counted_store_readings(store, scan_id, n42, name)
            check_with_specutils(n42, expected, name)
            tree = check_xml(n42, expected, name, with_positions=False)
            remarks = " ".join(r.text or "" for r in tree.findall("n:Remark", NS))
            check("INCOMPLETE" in remarks and tree.find("n:AnalysisResults", NS) is None,
                  f"{name}: the document is marked INCOMPLETE and carries no verdict")
    fetched = fetch_from_api(bins, store, [row[0] for _, row, _ in scans], directory)
    for name, (scan_id, status), _ in scans:
        if scan_id not in fetched:
            check(False, f"{name}: GET /api/v1/scans/{scan_id}/report.n42 answered")
            continue
        path, completeness, content_type = fetched[scan_id]
        with open(path) as a, open(os.path.join(exported, f"{scan_id}.n42")) as b:
            api_text, cli_text = a.read(), b.read()
        if status != "done":  # n42DocDateTime is the export time for an unfinished scan
            api_text, cli_text = (re.sub(r' n42DocDateTime="[^"]*"', "", t, count=1) for t in (api_text, cli_text))
        check(api_text == cli_text and completeness == ("complete" if status == "done" else "incomplete")
              and (content_type or "").startswith("application/xml"),
              f"{name}: the API serves the same document ({content_type}, Scan-Completeness: {completeness})")
        check_with_specutils(path, expected_readings(json.load(open(os.path.join(exported, f"{scan_id}.json"))))
                             if status == "done" else counted_store_readings(store, scan_id, path, name), name + " (from the API)")
    print(f"files in {exported}")
    return campaign.summary("N42.42 export")


if __name__ == "__main__":
    sys.exit(main())
