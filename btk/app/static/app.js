/* btk app: studies, runs and the NiiVue viewer. Every request goes to this server with the token cookie. */
"use strict";

const $ = (id) => document.getElementById(id);
const state = { config: null, root: "0", path: "", input: null, candidates: null, study: null, detail: null,
  hidden: new Set(), studies: [], crosshair: null };
/* What the viewer shows, for scripts and tests: when the overlay was first drawn, and where each view's crosshair is. */
window.btkViewer = { overlayShown: null, study: null, segmentation: null, images: null,
  crosshairs: () => activeViews().filter((v) => v.nv).map((v) => Array.from(v.nv.frac2mm(v.nv.scene.crosshairPos)).slice(0, 3)) };

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
  if (name === "viewer") resizeViews();
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

/* ---- viewer ----
 * A view is one NiiVue canvas and what it shows: an image, and over it the segmentation as NiiVue's drawing
 * layer (a texture of label values that the shaders colour as they draw). Only a new image costs a pass of the
 * (software, without a GPU) WebGL over its voxels; a new segmentation is one upload of its labels, and showing
 * or hiding a label or changing the opacity only redraws. "One image" is one view of the chosen modality;
 * "the four images" is four views (a 2x2 grid, one modality each) whose crosshairs, zoom and 3-D angle follow
 * each other (NiiVue's broadcastTo). Each view keeps what it has loaded, so switching between the two reloads
 * nothing, and every volume is fetched once per study (state.bytes), as soon as the study is opened. */
const QUAD = [["t1c", "T1c"], ["t1n", "T1"], ["t2w", "T2"], ["t2f", "FLAIR"]];
const newView = (canvas, modality) => ({ canvas, modality, nv: null, started: null, image: null,
  segmentation: null, labels: null, style: -1 });
state.single = newView("gl", null);
state.quad = QUAD.map(([modality]) => newView("gl-" + modality, modality));
state.bytes = new Map();
state.style = 0;       // bumped by every change of the label toggles or the opacity
state.generation = 0;  // bumped by every showVolumes(); an older one still loading stops

const fourImages = () => $("images").value === "four";
const activeViews = () => (fourImages() ? state.quad : [state.single]);
const imageKeyOf = (view) => $("space").value + "/" + (view.modality || $("modality").value);

/* A view's NiiVue, started once (its WebGL context and shaders). */
function attach(view) {
  if (!view.started) view.started = (async () => {
    const nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false,
      multiplanarShowRender: niivue.SHOW_RENDER.NEVER, dragAndDropEnabled: false, trustCalMinMax: false });
    await nv.attachTo(view.canvas);
    nv.onLocationChange = showLocation;
    view.nv = nv;
  })();
  return view.started;
}

async function viewers(views) {
  const fresh = views.some((view) => !view.started);
  await Promise.all(views.map(attach));
  if (fresh && views === state.quad)
    for (const view of views) view.nv.broadcastTo(views.filter((other) => other !== view).map((other) => other.nv),
      { "2d": true, "3d": true });
}

/* An image's URL (the server cuts it to the box around the brain); with ``grid`` (an image's key), that of the
 * segmentation ``key`` on that image's grid. */
function volumeUrl(key, grid) {
  return "/api/studies/" + encodeURIComponent(state.study) + "/volumes/" + key + ".nii" +
    (grid ? "?grid=" + encodeURIComponent(grid) : "");
}

/* A volume's file (NIfTI bytes), fetched once per study. */
function bytesOf(key, grid) {
  const url = volumeUrl(key, grid);
  if (!state.bytes.has(url)) {
    const loading = fetch(url, { credentials: "same-origin" }).then(async (response) => {
      if (!response.ok) throw new Error("cannot load " + key + ": " + response.status);
      return new Uint8Array(await response.arrayBuffer());
    });
    loading.catch(() => state.bytes.delete(url));
    state.bytes.set(url, loading);
  }
  return state.bytes.get(url);
}

/* NiiVue reads from a copy of the bytes; the name only tells it the format. */
const volumeOf = async (key, grid, options) => niivue.NVImage.loadFromUrl({ url: await bytesOf(key, grid),
  name: key.replace(/\W/g, "_") + ".nii", ...options });

async function openStudy(name) {
  state.study = name;
  state.bytes = new Map();
  for (const view of [state.single, ...state.quad]) Object.assign(view, { image: null, segmentation: null, labels: null });
  window.btkViewer.study = name;
  showTab("viewer");
  showStage("images");
  const select = $("segmentation");
  select.replaceChildren(el("option", "consensus", { value: "consensus" }));
  // What the views will show is fetched, and their NiiVue started, while the study's details come.
  for (const view of activeViews()) {
    bytesOf(imageKeyOf(view)).catch(() => {});
    bytesOf(segmentationKey(), imageKeyOf(view)).catch(() => {});
  }
  viewers(activeViews()).catch(say);
  const detail = await api("/api/studies/" + encodeURIComponent(name));
  state.detail = detail;
  $("viewer-study").textContent = detail.name;
  for (const candidate of detail.candidates) {
    select.append(el("option", "candidate: " + candidate, { value: "candidate/" + candidate }));
    select.append(el("option", "disagreement: " + candidate + " vs consensus", { value: "disagreement/" + candidate }));
  }
  $("space").querySelector("option[value=native]").disabled = !detail.volumes.includes("native/consensus");
  state.hidden.clear();
  state.style++;
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

/* The drawing layer's colours: each label's, none for a hidden label or a value that is no label. */
function labelColours() {
  const labels = new Map(currentLabels().map((label) => [label.value, label]));
  const cmap = { R: [], G: [], B: [], A: [], I: [], labels: [] };
  for (let value = 0; value < 256; value++) {
    const label = labels.get(value);
    const colour = label ? label.colour : [0, 0, 0];
    cmap.I.push(value); cmap.R.push(colour[0]); cmap.G.push(colour[1]); cmap.B.push(colour[2]);
    cmap.A.push(label && value > 0 && !state.hidden.has(value) ? 255 : 0);
    cmap.labels.push(label ? label.name : "");
  }
  return niivue.cmapper.makeDrawLut(cmap);
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
      restyle();
    });
    const swatch = el("span", null, { class: "swatch", style: "background: rgb(" + label.colour.join(",") + ")" });
    line.append(box1, swatch, document.createTextNode(" " + label.value + " " + label.name));
    box.append(line);
  }
}

/* The label toggles and the opacity go to the views on screen now, to the others when they are shown. */
function restyle() {
  state.style++;
  for (const view of activeViews()) applyOverlayStyle(view);
}

/* The segmentation's colours and opacity, set on a view's NiiVue for its next colour-map texture. */
function styleLabels(nv) {
  nv.drawLut = labelColours();
  nv.drawOpacity = Number($("opacity").value);
}

function applyOverlayStyle(view) {
  const nv = view.nv;
  if (!nv || !view.labels || view.style === state.style) return;
  styleLabels(nv);
  nv.refreshColormaps();  // the label colours are the colour-map texture's last row: nothing else is redone
  nv.drawScene();
  view.style = state.style;
}

/* Bring one view to the image and segmentation asked for, loading only what it does not show yet. */
async function loadView(view, imageKey, segmentationKey, generation) {
  const nv = view.nv;
  if (view.image === imageKey && view.segmentation === segmentationKey) return applyOverlayStyle(view);
  const [image, labels] = await Promise.all([
    view.image === imageKey ? nv.volumes[0] : volumeOf(imageKey, null, { colormap: "gray", trustCalMinMax: false }),
    volumeOf(segmentationKey, imageKey),  // the drawing layer lies on the image's grid
  ]);
  if (generation !== state.generation) return;
  styleLabels(nv);
  if (image !== nv.volumes[0]) {
    nv.volumes = [];
    nv.addVolume(image);  // the image's one pass, which also makes the colour-map texture
  } else nv.refreshColormaps();
  if (!nv.loadDrawing(labels)) throw new Error("the segmentation " + segmentationKey + " is not on the image's grid");
  Object.assign(view, { image: imageKey, segmentation: segmentationKey, labels, style: state.style });
}

async function showVolumes() {
  const generation = ++state.generation;
  const four = fourImages();
  const key = segmentationKey();
  renderToggles();
  window.btkViewer.overlayShown = null;
  $("modality").disabled = four;
  showStage("images");
  const views = activeViews();
  await viewers(views);
  applyLayout();
  await Promise.all(views.map((view) => loadView(view, imageKeyOf(view), key, generation)));
  if (generation !== state.generation) return;
  placeCrosshairs(views, $("space").value);
  views[0].nv.createOnLocationChange();  // the line under the controls, for the crosshair where it is
  for (const view of views) finishDrawing(view.nv);
  requestAnimationFrame(() => Object.assign(window.btkViewer,
    { overlayShown: performance.now(), segmentation: key, images: four ? "four" : "one" }));
}

/* Wait until a canvas's WebGL has done all it was given (reading a pixel waits for it): NiiVue's calls only queue
 * the work, and the overlay counts as shown once it is drawn. */
function finishDrawing(nv) {
  const gl = nv.gl;
  gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
}

function applyLayout() {
  const value = $("layout").value;
  for (const { nv } of activeViews()) {
    if (!nv) continue;
    const types = { axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal, sagittal: nv.sliceTypeSagittal,
      render: nv.sliceTypeRender, multi: nv.sliceTypeMultiplanar, multi3d: nv.sliceTypeMultiplanar };
    nv.opts.multiplanarShowRender = value === "multi3d" ? niivue.SHOW_RENDER.ALWAYS : niivue.SHOW_RENDER.NEVER;
    nv.setSliceType(types[value]);
  }
}

/* The views just shown take over the crosshair of those shown before (same study, same space). */
function placeCrosshairs(views, space) {
  const last = state.crosshair;
  if (!last || last.study !== state.study || last.space !== space) return;
  for (const { nv } of views) {
    nv.scene.crosshairPos = nv.mm2frac(last.mm);
    nv.drawScene();
  }
}

/* A volume's value at a point (mm), or null outside it. */
function valueAt(volume, mm) {
  if (!volume) return null;
  const [x, y, z] = volume.mm2vox(mm);
  const [, nx, ny, nz] = volume.hdr.dims;
  if (x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz) return null;
  return volume.getValue(x, y, z, volume.frame4D);
}

/* The line under the controls: the crosshair's position, the label there and each image's intensity. */
function showLocation(location) {
  if (!location || !location.mm || !state.detail) return;
  const mm = Array.from(location.mm).slice(0, 3);
  state.crosshair = { study: state.study, space: $("space").value, mm };
  const views = activeViews().filter((view) => view.labels);
  if (!views.length) return;
  const value = Math.round(valueAt(views[0].labels, mm) || 0);
  const label = currentLabels().find((l) => l.value === value);
  const names = Object.fromEntries(QUAD);
  const intensities = views.map((view) => {
    const intensity = valueAt(view.nv.volumes[0], mm);
    return names[view.modality || $("modality").value] + " " + (intensity === null ? "–" : Number(intensity).toFixed(1));
  });
  $("location").textContent = "at " + mm.map((v) => v.toFixed(1)).join(", ") + " mm — label " + value +
    (label ? " " + label.name : " (none)") + " — " + intensities.join(", ");
}

/* The viewer's stage shows one of: the images (one canvas or four), the report, the downloads. */
function showStage(which) {
  $("canvas-box").hidden = which !== "images" || fourImages();
  $("quad-box").hidden = which !== "images" || !fourImages();
  $("report-box").hidden = which !== "report";
  $("files-box").hidden = which !== "files";
  if (which === "images") resizeViews();
}

function resizeViews() {
  for (const { nv } of activeViews()) if (nv) nv.resizeListener();
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
  for (const id of ["space", "modality", "segmentation", "images"]) $(id).addEventListener("change", () => showVolumes().catch(say));
  $("opacity").addEventListener("input", restyle);
  $("layout").addEventListener("change", applyLayout);
  $("show-images").addEventListener("click", () => showStage("images"));
  $("show-report").addEventListener("click", showReport);
  $("show-files").addEventListener("click", showFiles);
  listen();
  window.addEventListener("hashchange", () => openFromHash().catch(say));
  await Promise.all([browse(""), openFromHash()]);
}

/* ``#study=NAME`` opens a study in the viewer (a link to share with a colleague on the same machine);
 * ``&images=four`` with the four images. */
async function openFromHash() {
  const wanted = new URLSearchParams(location.hash.slice(1));
  if (wanted.get("images") === "four" || wanted.get("images") === "one") $("images").value = wanted.get("images");
  if (wanted.get("study") && wanted.get("study") !== state.study) await openStudy(wanted.get("study"));
}

main().catch((error) => { document.body.prepend(el("p", "btk app: " + error.message, { class: "fatal" })); });
