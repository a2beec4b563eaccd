// The officer's view of the yard (a live top view: the container, the planned and measured
// points, the background station, the robot with its probe and its protective and warning
// fields) and the heat maps' colour scale and point details. Plain JavaScript, loaded
// before app.js, which calls loadYardPlan, yardPose, yardFields, yardPoints, heatColour
// and heatLegend.
"use strict";

// Outside dimensions (length, width) by ISO 6346 size code, metres.
const CONTAINER_SIZES = { "22G1": [6.058, 2.438], "42G1": [12.192, 2.438], "45G1": [12.192, 2.438], "L5G1": [13.716, 2.438] };
const yard = { plan: null, scanId: null, measured: new Map(), pose: null, people: null, low: 0, high: 1 };

// A point of the container's frame (along its axis from the door end, across from its
// left wall) in the yard, as the controller computes it (ContainerPlacement.yard).
function containerToYard(c, along, across) {
  const h = c.headingDegrees * Math.PI / 180;
  return [c.xMetres + along * Math.cos(h) + across * Math.sin(h), c.yMetres + along * Math.sin(h) - across * Math.cos(h)];
}

async function loadYardPlan(scanId) {
  if (!scanId || yard.scanId === scanId) return;
  const r = await api("GET", `/api/v1/scans/${scanId}/plan`);
  if (r.status !== 200) return;
  yard.plan = r.data; yard.scanId = scanId; yard.measured = new Map();
  drawYard();
}

// The green-to-red scale of the heat maps and the top view: low to high gross dose rate.
function heatColour(value) {
  const f = yard.high > yard.low ? Math.min(1, Math.max(0, (value - yard.low) / (yard.high - yard.low))) : 0;
  return `hsl(${Math.round(120 - 120 * f)}, 100%, ${35 + 15 * f}%)`;
}

// The scale as a bar with its ends and middle in μSv/h.
function heatLegend() {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => `<stop offset="${f}" stop-color="hsl(${Math.round(120 - 120 * f)}, 100%, ${35 + 15 * f}%)"/>`).join("");
  const mid = (yard.low + yard.high) / 2;
  return `<svg id="heatmap-legend" viewBox="0 0 300 44" xmlns="http://www.w3.org/2000/svg">`
    + `<defs><linearGradient id="heat-scale">${stops}</linearGradient></defs>`
    + `<rect x="10" y="4" width="280" height="16" fill="url(#heat-scale)" stroke="#888"/>`
    + `<text x="10" y="38" fill="#fff" font-size="13">${yard.low.toFixed(3)}</text>`
    + `<text x="150" y="38" fill="#fff" font-size="13" text-anchor="middle">${mid.toFixed(3)} μSv/h</text>`
    + `<text x="290" y="38" fill="#fff" font-size="13" text-anchor="end">${yard.high.toFixed(3)}</text></svg>`;
}

// Points measured so far (the /points answer): their mean gross dose rates.
function yardPoints(points) {
  for (const p of points) if (p.grossMicrosievertsPerHour != null) yard.measured.set(p.index, p.grossMicrosievertsPerHour);
  drawYard();
}

function yardPose(pose) {
  yard.pose = pose;
  const robot = document.getElementById("yard-robot");
  if (!robot || !yard.view) { drawYard(); return; }
  robot.setAttribute("transform", robotTransform());
}

// The fields round the robot (telemetry's people block: the sizes protocol H9.1 asks for at
// the robot's speed), drawn in its own frame; filled red while something is in the
// protective field or the scanner is faulted, amber while something is in the warning field.
function yardFields(people) {
  yard.people = people;
  const scale = yard.view ? yard.view.scale : 0;
  for (const [id, field] of [["yard-protective", people && people.protectiveField], ["yard-warning", people && people.warningField]]) {
    const rect = document.getElementById(id);
    if (!rect) continue;
    if (!field || !scale) { rect.setAttribute("visibility", "hidden"); continue; }
    rect.setAttribute("visibility", "visible");
    rect.setAttribute("x", (-field.rearMetres * scale).toFixed(1));
    rect.setAttribute("y", (-field.sideMetres * scale).toFixed(1));
    rect.setAttribute("width", ((field.frontMetres + field.rearMetres) * scale).toFixed(1));
    rect.setAttribute("height", (2 * field.sideMetres * scale).toFixed(1));
  }
  const protective = document.getElementById("yard-protective"), warning = document.getElementById("yard-warning");
  if (protective) protective.setAttribute("fill", people && (people.scanner === "protective" || people.scanner === "fault") ? "rgba(255,59,48,0.45)" : "none");
  if (warning) warning.setAttribute("fill", people && people.scanner === "warning" ? "rgba(255,212,0,0.25)" : "none");
}

function robotTransform() {
  const [sx, sy] = yard.view.toScreen(yard.pose.xMetres, yard.pose.yMetres);
  return `translate(${sx.toFixed(1)} ${sy.toFixed(1)}) rotate(${(-yard.pose.headingDegrees).toFixed(1)})`;
}

function drawYard() {
  const host = document.getElementById("yard");
  if (!host) return;
  const plan = yard.plan;
  if (!plan) { host.innerHTML = ""; yard.view = null; return; }
  const c = plan.container;
  const [length, width] = CONTAINER_SIZES[c.size] || [12.192, 2.438];
  const corners = [[0, 0], [length, 0], [length, width], [0, width]].map(([a, b]) => containerToYard(c, a, b));
  const xs = corners.map((p) => p[0]).concat(plan.points.map((p) => p.xMetres), [plan.backgroundX]);
  const ys = corners.map((p) => p[1]).concat(plan.points.map((p) => p.yMetres), [plan.backgroundY]);
  if (yard.pose) { xs.push(yard.pose.xMetres); ys.push(yard.pose.yMetres); }
  const margin = 1.5;
  const minX = Math.min(...xs) - margin, maxX = Math.max(...xs) + margin, minY = Math.min(...ys) - margin, maxY = Math.max(...ys) + margin;
  const scale = 360 / Math.max(maxX - minX, maxY - minY, 1);
  const w = (maxX - minX) * scale, h = (maxY - minY) * scale;
  // Yard y points up (north), screen y down.
  const toScreen = (x, y) => [(x - minX) * scale, (maxY - y) * scale];
  yard.view = { toScreen, scale };
  const pt = (p) => toScreen(p[0], p[1]).map((v) => v.toFixed(1)).join(",");
  let svg = `<svg viewBox="0 0 ${w.toFixed(0)} ${h.toFixed(0)}" xmlns="http://www.w3.org/2000/svg" data-scale="${scale.toFixed(4)}">`;
  svg += `<polygon id="yard-container" points="${corners.map(pt).join(" ")}" fill="#3a3a3a" stroke="#ccc" stroke-width="2"/>`;
  // The door end, thicker.
  svg += `<polyline points="${pt(corners[3])} ${pt(corners[0])}" stroke="${"#ffd400"}" stroke-width="4" fill="none"/>`;
  const [bx, by] = toScreen(plan.backgroundX, plan.backgroundY);
  svg += `<rect id="yard-station" x="${(bx - 6).toFixed(1)}" y="${(by - 6).toFixed(1)}" width="12" height="12" fill="none" stroke="#5ac8fa" stroke-width="2"><title>${t("background")}</title></rect>`;
  const seen = new Set();
  for (const p of plan.points) {
    const key = `${p.xMetres.toFixed(2)},${p.yMetres.toFixed(2)}`;
    const rows = plan.points.filter((q) => `${q.xMetres.toFixed(2)},${q.yMetres.toFixed(2)}` === key);
    if (seen.has(key)) continue;
    seen.add(key);
    // A column of points (one per height) is one dot: measured once every height is.
    const values = rows.map((q) => yard.measured.get(q.index)).filter((v) => v !== undefined);
    const done = values.length === rows.length;
    const [sx, sy] = toScreen(p.xMetres, p.yMetres);
    const fill = done ? heatColour(Math.max(...values)) : (values.length ? "#777" : "none");
    svg += `<circle class="yard-point${done ? " done" : ""}" cx="${sx.toFixed(1)}" cy="${sy.toFixed(1)}" r="4" fill="${fill}" stroke="#aaa" stroke-width="1"/>`;
  }
  // The robot: a triangle pointing along its heading, and its probe where the mount puts it.
  const mount = plan.probeMount || { forwardMetres: 0, rightMetres: 0 };
  const probe = [mount.forwardMetres * scale, mount.rightMetres * scale];
  svg += `<g id="yard-robot" transform="${yard.pose ? "" : "translate(-100 -100)"}">`
    + `<rect id="yard-warning" visibility="hidden" fill="none" stroke="#ffd400" stroke-width="1" stroke-dasharray="4 3"/>`
    + `<rect id="yard-protective" visibility="hidden" fill="none" stroke="#ff3b30" stroke-width="1.5"/>`
    + `<polygon points="12,0 -8,-8 -8,8" fill="#ffd400" stroke="#000" stroke-width="1.5"/>`
    + `<circle cx="${probe[0].toFixed(1)}" cy="${probe[1].toFixed(1)}" r="3" fill="#fff"/></g>`;
  svg += `</svg>`;
  host.innerHTML = svg;
  if (yard.pose) document.getElementById("yard-robot").setAttribute("transform", robotTransform());
  yardFields(yard.people);
}
