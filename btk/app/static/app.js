/* btk app: studies, runs and the NiiVue viewer. Every request goes to this server with the token cookie. */
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, root: "0", path: "", input: null, candidates: null, study: null, detail: null,
  nv: null, hidden: new Set(), studies: [] };
window.btkViewer = { overlayShown: null, study: null, segmentation: null };

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...(options || {}) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? body.error + (body.hint ? " — " + body.hint : "") : response.statusText);
  return body;
}

const post = (path, payload) => api(path, { method: "POST", headers: { "Content-Type": "application/json" },
  body: JSON.stringify(payload || {}) });

/* ---- tabs ---- */
function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of document.querySelectorAll(".panel")) panel.classList.toggle("active", panel.id === name);
  if (name === "viewer" && state.nv) state.nv.resizeListener();
}

/* ---- studies ---- */
function stageChips(study) {
  const box = el("span", null, { class: "stages" });
  for (const stage of state.config.stages) {
    const status = study.stages[stage];
    if (!status && !(study.state === "failed" && study.stage === stage)) continue;
    const chip = el("span", stage, { class: "chip " + (study.state === "failed" && study.stage === stage ? "failed" : status) });
    box.append(chip);
  }
  return box;
}

function renderStudies(studies) {
  state.studies = studies;
  const body = $("studies-table").querySelector("tbody");
  body.replaceChildren();
  for (const study of studies) {
    const row = el("tr", null, { "data-study": study.name, class: "state-" + study.state });
    const name = el("td");
    const open = el("button", study.name, { class: "link" });
    open.disabled = !study.report;
    open.addEventListener("click", () => openStudy(study.name));
    name.append(open);
    row.append(name, el("td", study.kind), el("td", study.state + (study.stage && study.state === "running" ? ": " + study.stage : ""),
      { class: "status" }));
    const stages = el("td"); stages.append(stageChips(study)); row.append(stages);
    for (const region of ["WT", "TC", "ET"]) row.append(el("td", study.volumes_ml[region] ?? "", { class: "number" }));
    row.append(el("td", study.alarms), el("td", study.state === "failed" ? study.stage + ": " + study.reason : "", { class: "reason" }));
    body.append(row);
  }
  $("no-studies").hidden = studies.length > 0;
}

function renderRun(run, studies) {
  const badge = $("run-badge");
  badge.hidden = !run;
  if (!run) return;
  badge.textContent = "run " + run.id + ": " + run.state;
  badge.dataset.state = run.state;
  $("run-message").textContent = run.message ? run.state + " — " + run.message : run.state;
  $("run-message").dataset.state = run.state;
  $("start-run").disabled = run.state === "running" || run.state === "cancelling";
  $("cancel-run").disabled = run.state !== "running";
  const body = $("progress-table").querySelector("tbody");
  body.replaceChildren();
  for (const study of studies) {
    const row = el("tr", null, { "data-study": study.name });
    const stages = el("td"); stages.append(stageChips(study));
    row.append(el("td", study.name), el("td", study.state + (study.state === "running" ? ": " + study.stage : ""),
      { class: "status" }), stages);
    body.append(row);
  }
}

function listen() {
  const events = new EventSource("/api/events");
  events.onmessage = (message) => {
    const data = JSON.parse(message.data);
    renderStudies(data.studies);
    renderRun(data.run, data.studies);
  };
}

/* ---- folder browser, uploads, runs ---- */
async function browse(path) {
  const listing = await api("/api/browse?root=" + encodeURIComponent(state.root) + "&path=" + encodeURIComponent(path));
  state.path = listing.path;
  $("browse-path").textContent = "/" + listing.path;
  const list = $("browse-list");
  list.replaceChildren();
  for (const entry of listing.entries) {
    const item = el("li", null, { class: entry.folder ? "folder" : "file" });
    if (entry.folder) {
      const button = el("button", entry.name + "/", { class: "link" });
      button.addEventListener("click", () => browse(join(state.path, entry.name)).catch(say));
      item.append(button);
    } else item.textContent = entry.name;
    list.append(item);
  }
}

const join = (a, b) => (a ? a + "/" + b : b);
const say = (error) => { $("run-message").textContent = error.message; $("run-message").dataset.state = "error"; };

function choose(what) {
  const rootPath = state.root === "uploads" ? "uploads" : state.config.roots[Number(state.root)].path;
  state[what] = { root: state.root, path: state.path };
  $(what + "-chosen").textContent = rootPath + "/" + state.path;
  $(what + "-chosen").classList.remove("muted");
}

async function startRun() {
  if (!state.input) return say(new Error("choose an input folder first"));
  const algorithms = $("algorithms").value.split(",").map((s) => s.trim()).filter(Boolean);
  const settings = { input: state.input, candidates: state.candidates, algorithms,
    track: $("track").value || null, method: $("method").value, labels: $("labels").value,
    fast: document.querySelector("input[name=speed]:checked").value === "fast",
    regions: $("regions").checked, force: $("force").checked };
  $("run-message").textContent = "starting…";
  try { await post("/api/runs", settings); } catch (error) { say(error); }
}

async function filesOf(entry, prefix) {
  if (entry.isFile) return [await new Promise((ok, fail) => entry.file((f) => ok([prefix + entry.name, f]), fail))];
  const reader = entry.createReader(); const found = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) break;
    for (const child of batch) found.push(...(await filesOf(child, prefix + entry.name + "/")));
  }
  return found;
}

async function upload(event) {
  event.preventDefault();
  const entries = Array.from(event.dataTransfer.items).map((item) => item.webkitGetAsEntry()).filter(Boolean);
  const files = [];
  for (const entry of entries) files.push(...(await filesOf(entry, "")));
  const total = files.reduce((sum, [, file]) => sum + file.size, 0);
  if (total > state.config.upload_limit) return say(new Error("the folder is larger than the upload limit"));
  const { upload } = await post("/api/uploads");
  let sent = 0;
  for (const [path, file] of files) {
    const url = "/api/uploads/" + upload + "/" + path.split("/").map(encodeURIComponent).join("/");
    await api(url, { method: "PUT", body: file });
    sent += file.size;
    $("upload-status").textContent = "uploaded " + (sent / 1048576).toFixed(1) + " of " + (total / 1048576).toFixed(1) + " MiB";
  }
  state.root = "uploads"; state.path = entries.length === 1 && entries[0].isDirectory ? join(upload, entries[0].name) : upload;
  choose("input");
  $("upload-status").textContent += " — ready as the input";
}

/* ---- viewer ---- */
async function viewer() {
  if (state.nv) return state.nv;
  const nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false,
    multiplanarShowRender: niivue.SHOW_RENDER.NEVER, dragAndDropEnabled: false });
  await nv.attachTo("gl");
  nv.onLocationChange = showLocation;
  state.nv = nv;
  return nv;
}

function volumeUrl(key) {
  return "/api/studies/" + encodeURIComponent(state.study) + "/volumes/" + key + ".nii.gz";
}

async function openStudy(name) {
  state.study = name;
  window.btkViewer = { overlayShown: null, study: name, segmentation: null };
  showTab("viewer");
  showStage("images");
  const detail = await api("/api/studies/" + encodeURIComponent(name));
  state.detail = detail;
  $("viewer-study").textContent = detail.name;
  const select = $("segmentation");
  select.replaceChildren(el("option", "consensus", { value: "consensus" }));
  for (const candidate of detail.candidates) {
    select.append(el("option", "candidate: " + candidate, { value: "candidate/" + candidate }));
    select.append(el("option", "disagreement: " + candidate + " vs consensus", { value: "disagreement/" + candidate }));
  }
  $("space").querySelector("option[value=native]").disabled = !detail.volumes.includes("native/consensus");
  state.hidden.clear();
  await showVolumes();
}

function segmentationKey() {
  const choice = $("segmentation").value;
  if ($("space").value === "native") return "native/consensus";
  return choice;
}

function currentLabels() {
  if (segmentationKey().startsWith("disagreement/")) {
    const colours = { 1: [255, 0, 255], 2: [0, 200, 255], 3: [255, 255, 255] };
    return state.detail.disagreement_labels.map((l) => ({ ...l, colour: colours[l.value] }));
  }
  return state.detail.labels;
}

function labelColormap() {
  const labels = currentLabels();
  const top = Math.max(0, ...labels.map((l) => l.value));
  const cmap = { R: [], G: [], B: [], A: [], I: [], labels: [] };
  for (let value = 0; value <= top; value++) {
    const label = labels.find((l) => l.value === value);
    const colour = label ? label.colour : [0, 0, 0];
    cmap.I.push(value); cmap.R.push(colour[0]); cmap.G.push(colour[1]); cmap.B.push(colour[2]);
    cmap.A.push(label && !state.hidden.has(value) ? 255 : 0);
    cmap.labels.push(label ? label.name : "");
  }
  return cmap;
}

function renderToggles() {
  const box = $("label-toggles");
  box.replaceChildren(el("legend", "Labels"));
  for (const label of currentLabels()) {
    const line = el("label", null, { class: "toggle" });
    const box1 = el("input", null, { type: "checkbox", "data-label": String(label.value) });
    box1.checked = !state.hidden.has(label.value);
    box1.addEventListener("change", () => {
      if (box1.checked) state.hidden.delete(label.value); else state.hidden.add(label.value);
      applyOverlayStyle();
    });
    const swatch = el("span", null, { class: "swatch", style: "background: rgb(" + label.colour.join(",") + ")" });
    line.append(box1, swatch, document.createTextNode(" " + label.value + " " + label.name));
    box.append(line);
  }
}

function applyOverlayStyle() {
  const nv = state.nv;
  if (!nv || nv.volumes.length < 2) return;
  const overlay = nv.volumes[1];
  overlay.setColormapLabel(labelColormap());
  overlay.opacity = Number($("opacity").value);
  nv.updateGLVolume();
}

async function showVolumes() {
  const nv = await viewer();
  const space = $("space").value;
  const key = segmentationKey();
  renderToggles();
  window.btkViewer.overlayShown = null;
  applyLayout();
  // The label colours go in with the segmentation, so that its layer reaches the GPU once, already coloured.
  const [segmentation] = await Promise.all([fetchBase64(volumeUrl(key)),
    // trustCalMinMax false: the display range from the intensities (preprocessed headers keep the raw range).
    nv.loadVolumes([{ url: volumeUrl(space + "/" + $("modality").value), colormap: "gray", trustCalMinMax: false }])]);
  const overlay = await niivue.NVImage.loadFromBase64({ base64: segmentation, name: key.replace(/\W/g, "_") + ".nii.gz",
    opacity: Number($("opacity").value), colormapLabel: niivue.cmapper.makeLabelLut(labelColormap()) });
  nv.addVolume(overlay);
  requestAnimationFrame(() => { window.btkViewer.overlayShown = performance.now(); window.btkViewer.segmentation = key; });
}

async function fetchBase64(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error("cannot load " + url + ": " + response.status);
  const bytes = new Uint8Array(await response.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 32768) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
  return btoa(text);
}

function applyLayout() {
  const nv = state.nv; const value = $("layout").value;
  const types = { axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal,
    render: nv.sliceTypeRender, multi: nv.sliceTypeMultiplanar, multi3d: nv.sliceTypeMultiplanar };
  nv.opts.multiplanarShowRender = value === "multi3d" ? niivue.SHOW_RENDER.ALWAYS : niivue.SHOW_RENDER.NEVER;
  nv.setSliceType(types[value]);
}

function showLocation(location) {
  if (!location || !location.values || !state.detail) return;
  const [image, overlay] = location.values;
  const value = overlay ? Math.round(overlay.value) : 0;
  const label = currentLabels().find((l) => l.value === value);
  const mm = location.mm ? Array.from(location.mm).slice(0, 3).map((v) => v.toFixed(1)).join(", ") : "";
  $("location").textContent = "at " + mm + " mm — " + $("modality").selectedOptions[0].textContent + " " +
    (image ? Number(image.value).toFixed(1) : "") + " — label " + value + (label ? " " + label.name : " (none)");
}

/* The viewer's stage shows one of: the images (canvas), the report, the downloads. */
function showStage(which) {
  $("canvas-box").hidden = which !== "images";
  $("report-box").hidden = which !== "report";
  $("files-box").hidden = which !== "files";
  if (which === "images" && state.nv) state.nv.resizeListener();
}

function showReport() {
  if (!state.detail || !state.detail.report) return;
  showStage("report");
  $("report-frame").src = "/files/" + encodeURIComponent(state.study) + "/" + state.detail.report;
}

function showFiles() {
  if (!state.detail) return;
  const list = $("files-list");
  list.replaceChildren();
  for (const file of state.detail.files) {
    const item = el("li");
    const href = "/files/" + encodeURIComponent(state.study) + "/" + file.path.split("/").map(encodeURIComponent).join("/") + "?download=1";
    item.append(el("a", file.path, { href }), document.createTextNode(" (" + (file.bytes / 1024).toFixed(0) + " KiB)"));
    list.append(item);
  }
  showStage("files");
}

/* ---- start ---- */
async function main() {
  state.config = await api("/api/config");
  $("output-folder").textContent = state.config.output;
  const roots = $("root-select");
  for (const root of state.config.roots) roots.append(el("option", root.path, { value: root.id }));
  roots.append(el("option", "uploads (this session)", { value: "uploads" }));
  roots.addEventListener("change", () => { state.root = roots.value; browse("").catch(say); });
  for (const method of state.config.methods) $("method").append(el("option", method, { value: method }));
  $("method").value = "simple";
  for (const labels of state.config.labels) $("labels").append(el("option", labels, { value: labels }));
  for (const track of state.config.tracks) $("track").append(el("option", track, { value: track }));
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("browse-up").addEventListener("click", () => browse(state.path.split("/").slice(0, -1).join("/")).catch(say));
  $("choose-input").addEventListener("click", () => choose("input"));
  $("choose-candidates").addEventListener("click", () => choose("candidates"));
  $("start-run").addEventListener("click", startRun);
  $("cancel-run").addEventListener("click", () => post("/api/runs/cancel").catch(say));
  const drop = $("drop-zone");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { drop.classList.remove("over"); upload(event).catch(say); });
  for (const id of ["space", "modality", "segmentation"]) $(id).addEventListener("change", () => showVolumes().catch(say));
  $("opacity").addEventListener("input", applyOverlayStyle);
  $("layout").addEventListener("change", applyLayout);
  $("show-images").addEventListener("click", () => showStage("images"));
  $("show-report").addEventListener("click", showReport);
  $("show-files").addEventListener("click", showFiles);
  await browse("");
  listen();
  window.addEventListener("hashchange", () => openFromHash().catch(say));
  await openFromHash();
}

/* ``#study=NAME`` opens a study in the viewer (a link to share with a colleague on the same machine). */
async function openFromHash() {
  const wanted = new URLSearchParams(location.hash.slice(1)).get("study");
  if (wanted && wanted !== state.study) await openStudy(wanted);
}

main().catch((error) => { document.body.prepend(el("p", "btk app: " + error.message, { class: "fatal" })); });
