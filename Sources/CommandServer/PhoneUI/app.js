// The officers' phone UI: plain JavaScript, no build step, no CDN.
"use strict";

const I18N = {
  en: {
    title: "Inspection robot", offline: "offline", online: "live", noControl: "no control", inControl: "IN CONTROL",
    heldBy: "held by", logIn: "Log in", user: "User", password: "Password", position: "Position", lift: "Lift",
    doseRate: "Dose rate", safety: "Safety", battery: "Battery", devices: "Devices", takeControl: "Take control", returnControl: "Return control",
    drive: "Drive", measure: "Measure", scan: "Scan", walk: "Walk", go: "Go", home: "Home", height: "Height (m)", stop: "Stop",
    reset: "Reset fault", releaseEstop: "Release e-stop", seconds: "Seconds", compute: "Compute verdict",
    containerNumber: "Container number", size: "Size", profile: "Profile", plan: "Plan", start: "Start", pause: "Pause",
    resume: "Resume", abort: "Abort", estop: "E-STOP", ok: "OK", stopped: "STOPPED", linkLost: "LINK LOST — robot state unknown; reconnecting…",
    leaseLost: "CONTROL LOST — the lease was lost or taken over; the robot stops without keep-alives.",
    estopPressed: "E-STOP sent — waiting for the robot to confirm…", estopLatched: "E-STOP LATCHED — drive power cut",
    estopFailed: "E-STOP NOT CONFIRMED — press the robot's red button", points: "points", eta: "ETA", verdict: "Verdict", pass: "PASS", anomalous: "ANOMALOUS", inconclusive: "INCONCLUSIVE — measure again",
    registered: "registered", notRegistered: "not registered: type it",
    checkReference: "Check source μSv/h", checkDetector: "Check detector", lastCheck: "Detector check", passed: "passed", failed: "FAILED — no scan until a check passes",
    noCheck: "Detector check: none yet — put the check source on the probe and press Check detector", backgroundTrend: "Station background, recent scans",
    exceeds: "EXCEEDS LIMIT", background: "background", maxNet: "max net", report: "Report", waiting: "waiting for reset",
    needControl: "Take control first", logOut: "Log out",
    diskLow: "DISK NEARLY FULL on the robot — new scans are refused; tell the supervisor.",
    planned: "planned", source: "Source near", done: "done",
    locate: "Locate", locating: "locating the container: the robot walks along its left wall…",
    located: "located", fromTyped: "from the position typed in", notLocated: "NOT LOCATED",
    powerOff: "power off", notHomed: "not homed", yardView: "Yard (top view)", along: "along", up: "up", readings: "readings",
    notMeasured: "not measured yet", tapPoint: "Tap a point for its value",
    people: "People", field_absent: "no scanner — only the bumpers stop the robot; keep the yard clear",
    field_clear: "clear", field_warning: "someone near — slowing down", field_protective: "someone in the robot's path — stopped",
    field_fault: "SCANNER FAULT — the robot will not drive", heldForPeople: "waiting for the path to clear",
    stopsSoFar: "stops", slowdownsSoFar: "slow-downs",
    dev_safety: "safety", dev_chassis: "chassis", dev_lift: "lift", dev_detector: "detector",
    life_unconfigured: "unconfigured", life_inactive: "inactive", life_active: "active", life_error: "error",
    phase_starting: "starting", phase_background: "background", phase_survey: "survey", phase_computing: "computing",
    phase_done: "done", phase_aborted: "aborted", phase_failed: "stopped",
    state_planned: "planned", state_running: "running", state_paused: "paused", state_interrupted: "interrupted",
    state_done: "done", state_aborted: "aborted", state_refused: "refused",
    face_left: "left side", face_right: "right side", face_front: "front end", face_door: "door end",
    cause_hardwareEstop: "hardware e-stop", cause_softwareEstop: "software e-stop", cause_lostLink: "link to a unit lost",
    cause_watchdogExpired: "firmware watchdog expired", cause_watchdogWritesFailing: "watchdog writes failing", cause_bumper: "bumper",
    cause_liftLimitSwitch: "lift limit switch", cause_liftOutOfRange: "lift out of range", cause_detectorOverload: "detector overload",
    cause_deadman: "deadman (no keep-alive)", cause_driveFault: "drive fault", cause_firmwareRestarted: "a unit restarted",
  },
  zh: {
    title: "查验机器人", offline: "离线", online: "在线", noControl: "未控制", inControl: "控制中", heldBy: "控制者",
    logIn: "登录", user: "用户", password: "密码", position: "位置", lift: "升降", doseRate: "剂量率", safety: "安全", battery: "电池",
    devices: "设备", takeControl: "获取控制", returnControl: "交还控制", drive: "行走", measure: "测量", scan: "扫描",
    walk: "行走", go: "执行", home: "回零", height: "高度 (m)", stop: "停止", reset: "复位故障", releaseEstop: "解除急停",
    seconds: "秒", compute: "计算判定", containerNumber: "集装箱号", size: "箱型", profile: "规程", plan: "规划",
    start: "开始", pause: "暂停", resume: "继续", abort: "中止", estop: "急停", ok: "正常", stopped: "已停止",
    linkLost: "连接中断 — 机器人状态未知，正在重连…", leaseLost: "控制已丢失 — 租约失效或被接管；无心跳时机器人会停止。",
    estopPressed: "已发送急停 — 等待机器人确认…", estopLatched: "急停已锁定 — 驱动已断电",
    estopFailed: "急停未确认 — 请按机器人上的红色急停按钮", points: "点", eta: "剩余", verdict: "判定", pass: "合格", anomalous: "异常", inconclusive: "无法判定 — 需复测",
    registered: "已登记", notRegistered: "未登记：请输入",
    checkReference: "检查源 μSv/h", checkDetector: "检查探测器", lastCheck: "探测器检查", passed: "合格", failed: "不合格 — 通过检查前不能扫描",
    noCheck: "探测器检查：尚无 — 请将检查源放在探头上并按“检查探测器”", backgroundTrend: "近期扫描的本底",
    exceeds: "超标", background: "本底", maxNet: "最大净值", report: "报告", waiting: "等待复位", locate: "定位", locating: "正在定位集装箱：机器人沿左侧壁行走…", located: "已定位", fromTyped: "与输入位置相差", notLocated: "未能定位", needControl: "请先获取控制", logOut: "退出",
    diskLow: "机器人磁盘将满 — 无法开始新扫描；请通知主管。",
    planned: "已规划", source: "源位置", done: "完成",
    powerOff: "驱动断电", notHomed: "未回零", yardView: "场地俯视图", along: "沿箱", up: "高", readings: "次读数",
    notMeasured: "尚未测量", tapPoint: "点击测点查看数值",
    people: "人员", field_absent: "无安全扫描仪 — 仅靠防撞触边停车；请保持场地无人",
    field_clear: "无人", field_warning: "附近有人 — 减速", field_protective: "机器人路径上有人 — 已停车",
    field_fault: "扫描仪故障 — 机器人不会行走", heldForPeople: "等待路径清空",
    stopsSoFar: "次停车", slowdownsSoFar: "次减速",
    dev_safety: "安全单元", dev_chassis: "底盘", dev_lift: "升降", dev_detector: "探测器",
    life_unconfigured: "未配置", life_inactive: "未激活", life_active: "运行", life_error: "故障",
    phase_starting: "准备", phase_background: "测本底", phase_survey: "逐点测量", phase_computing: "计算判定",
    phase_done: "完成", phase_aborted: "已中止", phase_failed: "已停止",
    state_planned: "已规划", state_running: "进行中", state_paused: "已暂停", state_interrupted: "已中断",
    state_done: "完成", state_aborted: "已中止", state_refused: "无法判定",
    face_left: "左侧面", face_right: "右侧面", face_front: "前端面", face_door: "箱门端",
    cause_hardwareEstop: "硬件急停", cause_softwareEstop: "软件急停", cause_lostLink: "与单元的通信中断",
    cause_watchdogExpired: "固件看门狗超时", cause_watchdogWritesFailing: "看门狗写入失败", cause_bumper: "防撞触边",
    cause_liftLimitSwitch: "升降限位开关", cause_liftOutOfRange: "升降超出范围", cause_detectorOverload: "探测器过载",
    cause_deadman: "心跳超时（失去控制端）", cause_driveFault: "驱动器故障", cause_firmwareRestarted: "控制单元重新启动",
  },
};
let lang = localStorage.getItem("lang") || ((navigator.language || "en").startsWith("zh") ? "zh" : "en");
const t = (key) => (I18N[lang] && I18N[lang][key]) || I18N.en[key] || key;
const $ = (id) => document.getElementById(id);

const state = { token: sessionStorage.getItem("token"), user: sessionStorage.getItem("user"), lease: null, keepAlive: null,
  ws: null, lastFrame: 0, scanId: null, scanState: null, verdict: null, clientName: "phone-" + Math.random().toString(36).slice(2, 7),
  leaseLost: false, linkLost: false, estopNote: false };

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
  $("lang").textContent = lang === "zh" ? "EN" : "中文";
  renderBanner();
  // Faces and states drawn in the old language are drawn again.
  if (state.token && state.scanId) drawHeatmaps();
}

async function api(method, path, body) {
  const headers = {};
  const token = state.token || (path === "/api/v1/estop" ? state.stopToken : null);
  if (token) headers["Authorization"] = "Bearer " + token;
  if (state.lease) headers["X-Lease"] = state.lease;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { status: 0, data: { error: { code: "offline", message: String(e) } } };
  }
  let data = null;
  const text = await response.text();
  try { data = JSON.parse(text); } catch (e) { data = text; }
  // A refused e-stop must not log the officer out: they press it again, or the robot's button.
  if (response.status === 401 && path !== "/api/v1/login" && path !== "/api/v1/estop") { logOut(); }
  return { status: response.status, data };
}
const errorText = (r) => (r.data && r.data.error) ? r.data.error.message : ("HTTP " + r.status);

// ---- log-in

async function logIn() {
  const r = await api("POST", "/api/v1/login", { name: $("login-name").value.trim(), password: $("login-password").value });
  if (r.status !== 200) { $("login-error").textContent = errorText(r); return; }
  state.token = r.data.token; state.user = r.data.user;
  sessionStorage.setItem("token", state.token); sessionStorage.setItem("user", state.user);
  $("login-password").value = "";
  start();
}

function logOut() {
  // The e-stop still takes a token this robotd issued (even expired): keep it for that.
  if (state.token) state.stopToken = state.token;
  state.token = null; sessionStorage.removeItem("token");
  stopKeepAlive();
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  $("app").classList.add("hidden"); $("login").classList.remove("hidden");
}

function start() {
  $("login").classList.add("hidden"); $("app").classList.remove("hidden");
  connect();
  loadProfiles();
  loadInstrument();
}

// ---- telemetry

// The WebSocket cannot carry the Authorization header: it takes a one-time ticket, so
// the long-lived token never goes into a URL.
async function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const r = await api("POST", "/api/v1/tickets", { path: "/api/v1/ws" });
  if (r.status !== 200) { setTimeout(() => { if (state.token) connect(); }, 1000); return; }
  const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws?ticket=${encodeURIComponent(r.data.ticket)}`);
  state.ws = ws;
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "telemetry") { state.lastFrame = Date.now(); render(message.data); }
    if (message.type === "command") { showCommand(message.data); }
  };
  ws.onclose = () => { state.ws = null; setTimeout(() => { if (state.token) connect(); }, 1000); };
}

setInterval(() => {
  const lost = state.token && Date.now() - state.lastFrame > 1500;
  if (lost !== state.linkLost) { state.linkLost = lost; renderBanner(); }
  $("link-status").textContent = lost ? t("offline") : t("online");
  $("link-status").className = "pill " + (lost ? "bad" : "ok");
}, 250);

function fmt(x, digits) { return (typeof x === "number" && isFinite(x)) ? x.toFixed(digits) : "–"; }

// The protective-field scanner: its state, a held move, and the stops and slow-downs so far.
function renderPeople(p) {
  if (!p) return;
  let text = t("field_" + p.scanner);
  if (p.held) text += ` — ${t("heldForPeople")}`;
  if (p.scanner !== "absent") text += `  (${p.protectiveStops} ${t("stopsSoFar")}, ${p.slowdowns} ${t("slowdownsSoFar")})`;
  $("people").textContent = text;
  $("people").className = "value " + (p.scanner === "fault" || p.scanner === "protective" || p.held ? "error" : p.scanner === "clear" ? "" : "warn");
}

function render(f) {
  $("pose").textContent = `${fmt(f.pose.xMetres, 2)}, ${fmt(f.pose.yMetres, 2)} m  ${fmt(f.pose.headingDegrees, 0)}°`;
  $("lift-height").textContent = `${fmt(f.lift.heightMetres, 3)} m${f.lift.homed ? "" : ` (${t("notHomed")})`}`;
  yardPose(f.pose);
  yardFields(f.people);
  $("dose").textContent = `${fmt(f.dose.microsievertsPerHour, 3)} ± ${fmt(f.dose.uncertaintyMicrosievertsPerHour, 3)} μSv/h`;
  const s = f.safety;
  state.lastCause = s.stopped ? s.cause : null;
  const diskLow = !!(f.store && f.store.diskLow);
  if (diskLow !== state.diskLow) { state.diskLow = diskLow; renderBanner(); }
  // The cause by its code in the page's language, then the robot's words (what to do).
  const cause = s.cause ? (lang === "zh" ? `${t("cause_" + s.cause)}（${s.message}）` : s.message) : s.message;
  $("safety").textContent = s.stopped ? `${t("stopped")}: ${cause}` : `${t("ok")}${s.motionPowerOn ? "" : ` (${t("powerOff")})`}`;
  if (s.batteryChargePercent !== undefined && s.batteryChargePercent !== null) {
    $("battery").textContent = `${fmt(s.batteryChargePercent, 0)} %${s.batteryVolts ? `  ${fmt(s.batteryVolts, 1)} V` : ""}`
      + (s.batteryWatts != null ? `  ${fmt(s.batteryWatts, 0)} W` : "");
  }
  $("safety").className = "value " + (s.stopped ? "error" : "");
  renderPeople(f.people);
  $("devices").textContent = Object.entries(f.devices).map(([name, d]) => `${t("dev_" + name)}: ${t("life_" + d.lifecycle)}`).join(" · ");
  const lease = f.lease;
  const mine = state.lease && lease.held && lease.user === state.user && !lease.stale;
  if (state.lease && !mine && !state.leaseLost) { leaseLost(); }
  $("lease-status").textContent = mine ? t("inControl") : (lease.held && !lease.stale ? `${t("heldBy")} ${lease.user}` : t("noControl"));
  $("lease-status").className = "pill " + (mine ? "mine" : "");
  $("take-control").classList.toggle("hidden", !!mine);
  $("return-control").classList.toggle("hidden", !mine);
  if (f.scan) {
    state.scanId = f.scan.id;
    loadYardPlan(f.scan.id);
    const p = f.scan.progress;
    const done = p.completedPoints, total = p.totalPoints;
    $("scan-progress-fill").style.width = total ? `${(100 * done / total).toFixed(1)}%` : "0";
    let text = `${f.scan.containerNumber}: ${t("phase_" + p.phase)} ${done}/${total} ${t("points")}, ${t("eta")} ${Math.round(p.etaSeconds)} s`;
    if (p.paused) text += " — " + (p.pausedReason || t("pause"));
    if (p.note) text += ` (${p.note})`;
    if (p.waitingForReset) text += ` — ${t("waiting")}: ${p.waitingForReset}`;
    $("scan-progress").textContent = text;
    state.scanState = "running";
  } else if (state.scanState === "running") {
    state.scanState = "ended";
    finishScan();
  }
}

function showCommand(c) {
  let text = `#${c.id} ${c.command}: ${c.state}`;
  if (c.problem) text += ` — ${c.problem}`;
  $("command-result").textContent = text;
}

function renderBanner() {
  const parts = [];
  if (state.linkLost) parts.push(t("linkLost"));
  if (state.leaseLost) parts.push(t("leaseLost"));
  if (state.diskLow) parts.push(t("diskLow"));
  if (state.estopNote) parts.push(t(state.estopNote));
  $("banner").textContent = parts.join(" ");
  $("banner").classList.toggle("hidden", parts.length === 0);
}

// ---- lease

async function takeControl() {
  const r = await api("POST", "/api/v1/lease", { client: state.clientName });
  if (r.status !== 200) { $("command-result").textContent = errorText(r); return; }
  state.lease = r.data.lease; state.leaseLost = false; renderBanner();
  stopKeepAlive();
  state.keepAlive = setInterval(async () => {
    const k = await api("POST", "/api/v1/lease/keepalive");
    if (k.status === 409) leaseLost(errorText(k));
  }, 250);
}

function leaseLost(message) {
  stopKeepAlive(); state.lease = null; state.leaseLost = true; renderBanner();
  if (message) $("command-result").textContent = message;
}

function stopKeepAlive() { if (state.keepAlive) { clearInterval(state.keepAlive); state.keepAlive = null; } }

async function returnControl() {
  await api("DELETE", "/api/v1/lease");
  stopKeepAlive(); state.lease = null; state.leaseLost = false; renderBanner();
}

// ---- commands

async function command(body, target) {
  if (!state.lease && !["stop", "measure"].includes(body.type)) { $("command-result").textContent = t("needControl"); return null; }
  const r = await api("POST", "/api/v1/commands", body);
  (target || $("command-result")).textContent = r.status < 300 ? `#${r.data.id} ${r.data.command}: ${r.data.state}${r.data.problem ? " — " + r.data.problem : ""}` : errorText(r);
  return r;
}
const num = (id) => parseFloat($(id).value);

async function measure() {
  $("measure-result").textContent = "…";
  const r = await command({ type: "measure", seconds: num("measure-seconds"), wait: true }, $("measure-result"));
  if (r && r.status === 200 && r.data.reading) {
    const m = r.data.reading;
    $("measure-result").textContent = `${m.doseRateMicrosievertsPerHour.toFixed(3)} ± ${m.doseRateUncertaintyMicrosievertsPerHour.toFixed(3)} μSv/h (${m.counts} counts, ${m.seconds.toFixed(1)} s)`;
  }
}

// The daily check-source test and the station background of recent scans.
async function loadInstrument() {
  const r = await api("GET", "/api/v1/instrument/checks");
  if (r.status !== 200) return;
  const source = await api("GET", "/api/v1/instrument/check-source");
  $("check-reference").placeholder = source.status === 200
    ? `${t("registered")} ${source.data.reference.sourceId}: ${source.data.todayMicrosievertsPerHour.toFixed(3)}`
    : t("notRegistered");
  const last = r.data.checks[0];
  $("check-last").textContent = last
    ? `${t("lastCheck")}: ${last.passed ? t("passed") : t("failed")} — ${last.response.toFixed(3)} ± ${last.responseUncertainty.toFixed(3)} (${last.takenAt.slice(0, 16)})`
    : t("noCheck");
  const trend = r.data.backgroundTrend.slice(-10).map((p) => p.backgroundMicrosievertsPerHour.toFixed(3)).join(" ");
  $("background-trend").textContent = trend ? `${t("backgroundTrend")}: ${trend} μSv/h` : "";
}

async function checkDetector() {
  $("check-last").textContent = "…";
  // The registered check source gives the reference; a typed one is sent only if filled in.
  const body = { seconds: 30 };
  if ($("check-reference").value !== "") body.referenceMicrosievertsPerHour = num("check-reference");
  const r = await api("POST", "/api/v1/instrument/checks", body);
  if (r.status !== 201) { $("check-last").textContent = errorText(r); return; }
  await loadInstrument();
}

async function compute() {
  const r = await api("POST", "/api/v1/compute", state.scanId ? { scanId: state.scanId } : {});
  $("compute-result").textContent = r.status === 200
    ? `${t(r.data.outcome)} — ${t("background")} ${r.data.backgroundMean.toFixed(3)}, ${t("maxNet")} ${r.data.maxNet.toFixed(3)} μSv/h (${r.data.points.length} ${t("points")})`
    : errorText(r);
}

// ---- scans

async function loadProfiles() {
  const r = await api("GET", "/api/v1/profiles");
  if (r.status !== 200) return;
  const select = $("scan-profile");
  select.innerHTML = "";
  for (const p of r.data) {
    const option = document.createElement("option");
    option.value = p.name; option.textContent = `${p.name} (v${p.version})`;
    if (p.name === "demo") option.selected = true;
    select.appendChild(option);
  }
}

async function planScan() {
  const r = await api("POST", "/api/v1/scans", { containerNumber: $("scan-number").value.trim().toUpperCase(), size: $("scan-size").value,
    xMetres: num("scan-x"), yMetres: num("scan-y"), headingDegrees: num("scan-heading"), profile: $("scan-profile").value });
  if (r.status !== 201) { $("scan-info").textContent = errorText(r); $("scan-start").disabled = true; return; }
  state.scanId = r.data.id; state.verdict = null;
  $("scan-info").innerHTML = "";
  $("scan-info").append(`${r.data.containerNumber}: ${r.data.points} ${t("points")} (${t("planned")}) `);
  const link = document.createElement("a");
  link.target = "_blank"; link.textContent = "plan.svg";
  $("scan-info").append(link);
  await attachDocument(link, `/api/v1/scans/${r.data.id}/plan.svg`, "plan.svg");
  await loadYardPlan(r.data.id);
  $("scan-start").disabled = false; $("scan-locate").disabled = false;
  $("verdict").textContent = ""; $("report-links").innerHTML = "";
  drawHeatmaps();
}

// Measures where the container really is (the range pair, a pass along its left wall);
// the plan is then made again on it, so the top view shows the container as measured.
async function locateScan() {
  if (!state.lease) { $("scan-info").textContent = t("needControl"); return; }
  const id = state.scanId;
  const r = await api("POST", `/api/v1/scans/${id}/register`);
  if (r.status !== 202) { $("scan-info").textContent = errorText(r); return; }
  $("scan-start").disabled = true; $("scan-locate").disabled = true;
  $("scan-info").textContent = t("locating");
  let registration = { state: "running" };
  while (registration.state === "running" && state.scanId === id) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const s = await api("GET", `/api/v1/scans/${id}`);
    if (s.status !== 200) break;
    registration = s.data.registration || { state: "failed", problem: "no answer" };
  }
  $("scan-locate").disabled = false; $("scan-start").disabled = false;
  if (registration.state === "done") {
    const m = registration.measured;
    $("scan-info").textContent = `${t("located")}: ${m.xMetres.toFixed(2)}, ${m.yMetres.toFixed(2)} m, ${m.headingDegrees.toFixed(1)}° `
      + `(${registration.offsetMetres.toFixed(2)} m, ${registration.headingOffsetDegrees.toFixed(1)}° ${t("fromTyped")})`;
    await loadYardPlan(id);
  } else {
    $("scan-info").textContent = `${t("notLocated")}: ${registration.problem || ""}`;
  }
}

async function startScan() {
  if (!state.lease) { $("scan-info").textContent = t("needControl"); return; }
  const r = await api("POST", `/api/v1/scans/${state.scanId}/start`);
  $("scan-info").textContent = r.status === 202 ? `${t("start")}: ${r.data.id}` : errorText(r);
  if (r.status === 202) { $("scan-start").disabled = true; $("scan-locate").disabled = true; state.scanState = "running"; }
}

async function scanAction(action) {
  if (!state.scanId) return;
  // Resuming after the phone lost its link (or a takeover) needs the lease again: one
  // press takes it and resumes.
  if (action === "resume" && (!state.lease || state.leaseLost)) await takeControl();
  const r = await api("POST", `/api/v1/scans/${state.scanId}/${action}`);
  $("scan-info").textContent = r.status < 300 ? `${action}: ${r.data.state}` : errorText(r);
}

setInterval(() => { if (state.token && state.scanState === "running") drawHeatmaps(); }, 2000);

async function finishScan() {
  $("scan-progress").textContent = t("done");
  await drawHeatmaps();
  const r = await api("GET", `/api/v1/scans/${state.scanId}/result`);
  if (r.status !== 200) {
    const s = await api("GET", `/api/v1/scans/${state.scanId}`);
    $("verdict").textContent = s.status === 200 ? `${t("state_" + s.data.state)}${s.data.ending ? ": " + s.data.ending : ""}` : errorText(r);
    return;
  }
  state.verdict = r.data;
  const v = r.data;
  $("verdict").className = "verdict " + v.outcome;
  $("verdict").textContent = `${t("verdict")}: ${t(v.outcome)} — ${t("background")} ${v.backgroundMean.toFixed(3)}, ${t("maxNet")} ${v.maxNet.toFixed(3)} μSv/h`;
  // What the officer must know or do (points to measure again, a uniform excess), as the verdict states it.
  const flags = $("verdict-flags");
  flags.textContent = "";
  for (const text of v.flags || []) {
    const item = document.createElement("li");
    item.textContent = text;
    flags.appendChild(item);
  }
  const links = $("report-links");
  links.innerHTML = `${t("report")}: `;
  for (const kind of ["html", "json", "csv", "n42"]) {
    const a = document.createElement("a");
    a.target = "_blank"; a.textContent = kind.toUpperCase(); a.id = `report-${kind}`;
    a.dataset.path = `/api/v1/scans/${state.scanId}/report.${kind}`;
    links.appendChild(a);
    await attachDocument(a, a.dataset.path, `${state.scanId}.${kind}`);
  }
  await drawHeatmaps();
}

// Reports and pictures are fetched with the Authorization header and opened from a
// local object URL: no token in a link, history or a proxy's log.
async function attachDocument(anchor, path, filename) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  try {
    const response = await fetch(path, { headers });
    if (!response.ok) { anchor.title = "HTTP " + response.status; return; }
    const blob = await response.blob();
    anchor.href = URL.createObjectURL(blob);
    if (!filename.endsWith(".html") && !filename.endsWith(".svg")) anchor.download = filename;
  } catch (e) {
    anchor.title = String(e);
  }
}

async function drawHeatmaps() {
  if (!state.scanId) return;
  const r = await api("GET", `/api/v1/scans/${state.scanId}/points`);
  if (r.status !== 200) return;
  state.points = r.data;
  const exceeding = new Set(((state.verdict && state.verdict.points) || []).filter((p) => p.outcome === "exceeds").map((p) => p.pointIndex));
  const values = r.data.filter((p) => p.grossMicrosievertsPerHour != null).map((p) => p.grossMicrosievertsPerHour);
  yard.low = values.length ? Math.min(...values) : 0;
  yard.high = values.length ? Math.max(...values) : 1;
  yardPoints(r.data);
  const container = $("heatmaps");
  container.innerHTML = "";
  const faces = [...new Set(r.data.map((p) => p.face))];
  for (const face of faces) {
    const points = r.data.filter((p) => p.face === face);
    const columns = Math.max(...points.map((p) => p.column)) + 1, rows = Math.max(...points.map((p) => p.row)) + 1;
    const cell = 24;
    let svg = `<svg viewBox="0 0 ${columns * cell + 2} ${rows * cell + 2}" xmlns="http://www.w3.org/2000/svg" data-face="${face}">`;
    for (const p of points) {
      const x = p.column * cell + 1, y = (rows - 1 - p.row) * cell + 1;
      const fill = p.grossMicrosievertsPerHour == null ? "#333" : heatColour(p.grossMicrosievertsPerHour);
      const stroke = exceeding.has(p.index) ? ' stroke="#fff" stroke-width="3"' : ' stroke="#000"';
      svg += `<rect x="${x}" y="${y}" width="${cell - 2}" height="${cell - 2}" fill="${fill}"${stroke} data-index="${p.index}"></rect>`;
    }
    svg += "</svg>";
    const div = document.createElement("div");
    div.className = "heatmap";
    div.innerHTML = `<span class="label">${t("face_" + face)}</span>${svg}`;
    container.appendChild(div);
  }
  if (faces.length) {
    const legend = document.createElement("div");
    legend.className = "heatmap";
    legend.innerHTML = heatLegend();
    container.appendChild(legend);
  }
  if (state.pointShown !== undefined) showPoint(state.pointShown);
}

// A tapped cell: where it is and what it read.
function showPoint(index) {
  const p = (state.points || []).find((q) => q.index === index);
  if (!p) return;
  state.pointShown = index;
  const value = p.grossMicrosievertsPerHour == null ? t("notMeasured")
    : `${p.grossMicrosievertsPerHour.toFixed(3)} μSv/h (${p.readings} ${t("readings")})`;
  $("point-detail").textContent = `#${p.index} ${t("face_" + p.face)}, ${t("along")} ${p.alongMetres.toFixed(1)} m, ${t("up")} ${p.heightMetres.toFixed(1)} m: ${value}`;
  document.querySelectorAll("#heatmaps rect.selected").forEach((r) => r.classList.remove("selected"));
  const rect = document.querySelector(`#heatmaps rect[data-index="${index}"]`);
  if (rect) rect.classList.add("selected");
}

// ---- e-stop: always visible, needs no lease

// The server answers 200 only once the control loop has latched the stop; telemetry
// confirms it too. Until one of them does, press again every 250 ms (for 5 s).
async function estop() {
  if (state.estopPressing) return;
  state.estopPressing = true;
  state.estopNote = "estopPressed"; renderBanner();
  let confirmed = false;
  for (let attempt = 0; attempt < 20 && !confirmed; attempt++) {
    const r = await api("POST", "/api/v1/estop");
    confirmed = (r.status === 200 && r.data && r.data.latched === true) || state.lastCause === "softwareEstop";
    if (!confirmed) {
      $("command-result").textContent = errorText(r);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  state.estopPressing = false;
  state.estopNote = confirmed ? "estopLatched" : "estopFailed"; renderBanner();
  setTimeout(() => { state.estopNote = false; renderBanner(); }, confirmed ? 4000 : 15000);
}

// ---- wiring

function bind(id, handler) { $(id).addEventListener("click", handler); }
bind("login-button", logIn);
$("login-password").addEventListener("keydown", (e) => { if (e.key === "Enter") logIn(); });
bind("lang", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("lang", lang); applyLanguage(); });
bind("estop", estop);
// Ends the session on the server too (a shared phone must not keep a live token).
bind("logout", async () => { await api("POST", "/api/v1/logout"); logOut(); });
bind("take-control", takeControl);
bind("return-control", returnControl);
bind("walk-back", () => command({ type: "walk", metres: -0.5 }));
bind("walk-plus", () => command({ type: "walk", metres: 0.5 }));
bind("walk-plus-2", () => command({ type: "walk", metres: 2 }));
bind("turn-left", () => command({ type: "turn", degrees: 15 }));
bind("turn-right", () => command({ type: "turn", degrees: -15 }));
bind("walk-to", () => command({ type: "walkTo", xMetres: num("target-x"), yMetres: num("target-y") }));
bind("lift-up", () => command({ type: "lift", heightMetres: Math.round((lastLift() + 0.25) * 100) / 100 }));
bind("lift-down", () => command({ type: "lift", heightMetres: Math.round((lastLift() - 0.25) * 100) / 100 }));
bind("lift-go", () => command({ type: "lift", heightMetres: num("lift-target") }));
bind("home-lift", () => command({ type: "home" }));
bind("stop", () => command({ type: "stop" }));
bind("reset", () => command({ type: "resetFault" }));
bind("release-estop", async () => {
  const r = await api("POST", "/api/v1/estop/release");
  $("command-result").textContent = r.status === 202 ? `#${r.data.id} ${r.data.command}` : errorText(r);
});
bind("measure-button", measure);
bind("check-button", checkDetector);
bind("compute-button", compute);
bind("scan-plan", planScan);
bind("scan-start", startScan);
bind("scan-locate", locateScan);
bind("scan-pause", () => scanAction("pause"));
bind("scan-resume", () => scanAction("resume"));
bind("scan-abort", () => scanAction("abort"));
$("heatmaps").addEventListener("click", (event) => {
  const index = event.target && event.target.dataset ? event.target.dataset.index : undefined;
  if (index !== undefined) showPoint(Number(index));
});
document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
  document.querySelectorAll(".tab").forEach((x) => x.classList.toggle("active", x === tab));
  document.querySelectorAll(".tabpanel").forEach((p) => p.classList.toggle("hidden", p.id !== "tab-" + tab.dataset.tab));
}));
function lastLift() { return parseFloat($("lift-height").textContent) || 0.5; }

applyLanguage();
if (state.token) start();
