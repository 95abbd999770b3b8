/**
 * The demo page's script: plain ES2020 for the browser, inlined into the page
 * as text. It is a string rather than compiled TypeScript because the worker
 * bundler would rewrite a function's source (e.g. keep-names helpers) and the
 * page must not depend on a build step. It uses only the public API, so it is
 * also a worked example of it. Everything the server says is put into the page
 * with textContent, never as HTML.
 *
 * No backticks or dollar-brace sequences in here: this is a template literal.
 */
export const CLIENT_JS = `
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var IMAGE_TYPE = /^image\\/(jpeg|png|webp)$/;
  var IMAGE_EXT = /\\.(jpe?g|png|webp)$/i;
  var TERMINAL = { done: 1, failed: 1, cancelled: 1 };
  var models = [];
  var current = null; // { kind: "file", file, name } | { kind: "url", url }
  var seq = 0;
  var previewUrl = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtBytes(n) {
    return n >= 1e6 ? (n / 1e6).toFixed(1) + " MB" : n >= 1e3 ? (n / 1e3).toFixed(1) + " kB" : n + " B";
  }
  function fmtCount(n) {
    return n >= 1e9 ? (n / 1e9).toFixed(2) + " G" : n >= 1e6 ? (n / 1e6).toFixed(2) + " M" : n >= 1e3 ? (n / 1e3).toFixed(1) + " k" : String(n);
  }
  function pct(score) { return (score * 100).toFixed(2) + "%"; }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function modelById(id) { return models.find(function (m) { return m.id === id; }); }
  function untrainedBadge() { return el("span", "badge untrained", "untrained \\u2014 labels not meaningful"); }

  /** A non-2xx answer. code and message are the server's {"error":{code,message}} when it sent one. */
  function ApiFailure(status, code, message) {
    this.status = status; this.code = code; this.message = message;
  }
  // The API key lives in this tab's sessionStorage only; the CSP lets no other script read it.
  var keyInput = $("api-key");
  try { keyInput.value = sessionStorage.getItem("edgetag-api-key") || ""; } catch (e) { /* storage disabled */ }
  keyInput.addEventListener("change", function () {
    try { sessionStorage.setItem("edgetag-api-key", keyInput.value.trim()); } catch (e) { /* storage disabled */ }
  });
  async function api(method, path, body, type) {
    var res;
    var headers = type ? { "content-type": type } : {};
    var key = keyInput.value.trim();
    if (key) headers.authorization = "Bearer " + key;
    try {
      res = await fetch(path, { method: method, body: body, headers: headers });
    } catch (e) {
      throw new ApiFailure(0, "network_error", "could not reach the server: " + (e && e.message ? e.message : e));
    }
    if (res.ok) return res;
    var text = await res.text();
    var code = "http_" + res.status, message = text.slice(0, 2000) || res.statusText;
    try {
      var j = JSON.parse(text);
      if (j && j.error && typeof j.error.code === "string") { code = j.error.code; message = String(j.error.message); }
    } catch (e) { /* not the JSON envelope: show the raw text */ }
    // Only the key errors: a 403 for a refused image URL is about the URL, not the key.
    if (code === "unauthorized" || code === "forbidden") message += " \u2014 enter a valid API key at the top of the page.";
    throw new ApiFailure(res.status, code, message);
  }
  function json(body) { return JSON.stringify(body); }

  function showError(box, err) {
    box.textContent = "";
    box.hidden = false;
    if (err instanceof ApiFailure) {
      var head = el("strong", "code", (err.status ? "HTTP " + err.status + " \\u00b7 " : "") + err.code);
      box.append(head, el("span", "msg", err.message));
    } else {
      box.append(el("span", "msg", err && err.message ? err.message : String(err)));
    }
  }
  function hide(box) { box.hidden = true; box.textContent = ""; }

  // ---- models ----
  var modelSel = $("model"), topk = $("topk");
  function renderModelCard() {
    var card = $("model-card");
    card.textContent = "";
    var m = modelById(modelSel.value);
    if (!m) return;
    var badge = m.trained ? el("span", "badge trained", "trained") : untrainedBadge();
    badge.id = "model-trained";
    card.append(badge);
    var dl = el("dl");
    function row(k, v) { dl.append(el("dt", null, k), el("dd", null, v)); }
    row("name", m.name);
    row("size", fmtBytes(m.file.bytes));
    row("parameters", fmtCount(m.stats.parameters) + " (" + m.stats.parameters.toLocaleString("en-US") + ")");
    row("MACs", fmtCount(m.stats.macs));
    row("classes", m.labels.count + " (" + m.labels.set + ")");
    row("input", m.input.width + "\\u00d7" + m.input.height + " " + m.input.layout);
    row("quantization", m.quantization.scheme);
    row("version", m.version);
    var about = el("details");
    about.append(el("summary", null, "about this model"), el("p", null, m.description));
    card.append(dl, about);
  }
  async function loadModels() {
    try {
      var res = await api("GET", "/v1/models");
      models = (await res.json()).models;
    } catch (e) {
      showError($("model-error"), e);
      return;
    }
    modelSel.textContent = "";
    models.forEach(function (m) {
      var o = el("option", null, m.id + (m.trained ? " (trained)" : " (untrained \\u2014 labels not meaningful)"));
      o.value = m.id;
      modelSel.append(o);
    });
    // Default to a trained model, so a first try gives labels that mean something.
    var pick = models.find(function (m) { return m.trained; }) || models[0];
    if (pick) modelSel.value = pick.id;
    modelSel.disabled = false;
    renderModelCard();
    $("bulk-model").textContent = modelSel.value;
  }
  modelSel.addEventListener("change", function () {
    renderModelCard();
    $("bulk-model").textContent = modelSel.value;
    if (current) classify();
  });
  topk.addEventListener("change", function () { if (current && topk.checkValidity()) classify(); });

  // ---- one image ----
  var status = $("status"), errBox = $("error"), notice = $("notice"), result = $("result");
  function setInput(input) {
    current = input;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = input.kind === "file" ? URL.createObjectURL(input.file) : null;
    classify();
  }
  function fromFiles(files) {
    if (files && files.length) setInput({ kind: "file", file: files[0], name: files[0].name || "pasted image" });
  }
  function fromUrl(url) {
    url = url.trim();
    if (url) { $("url").value = url; setInput({ kind: "url", url: url }); }
  }

  async function classify() {
    var id = ++seq;
    var model = modelSel.value, k = topk.value;
    var what = current.kind === "file" ? current.name : current.url;
    hide(errBox); hide(notice);
    result.setAttribute("aria-busy", "true");
    status.textContent = "Classifying " + what + " with " + model + "\\u2026";
    var qs = "?model=" + encodeURIComponent(model) + "&top_k=" + encodeURIComponent(k);
    try {
      var data;
      if (current.kind === "file") {
        var f = current.file;
        // Anything not declared as an image goes as octet-stream: the server then judges it by its bytes.
        var type = /^image\\//.test(f.type) ? f.type : "application/octet-stream";
        data = await (await api("POST", "/v1/classify" + qs, f, type)).json();
      } else {
        data = await classifyUrl(current.url, model, Number(k), qs, id);
      }
      if (id !== seq) return;
      render(data, what);
      status.textContent = "Classified " + what + " with " + data.model.id + ".";
    } catch (e) {
      if (id !== seq) return;
      $("result-body").hidden = true;
      status.textContent = "Classification failed.";
      showError(errBox, e);
    } finally {
      if (id === seq) result.removeAttribute("aria-busy");
    }
  }

  // The worker fetches the URL itself (through its SSRF-safe fetch: private and
  // loopback hosts are refused with a 403 that this page shows verbatim).
  async function classifyUrl(url, model, k, qs, id) {
    return await (await api("POST", "/v1/classify" + qs, json({ url: url }), "application/json")).json();
  }

  function render(data, what) {
    $("result-body").hidden = false;
    result.dataset.model = data.model.id;
    var img = $("preview");
    img.src = previewUrl || current.url;
    img.alt = "The classified image: " + what;
    var meta = [];
    if (data.image && data.image.width) meta.push(data.image.width + "\\u00d7" + data.image.height + " " + String(data.image.format).toUpperCase());
    if (data.image && data.image.sha256) meta.push("sha256 " + data.image.sha256.slice(0, 12) + "\\u2026");
    $("image-meta").textContent = meta.join(" \\u00b7 ");
    $("image-meta").title = data.image && data.image.sha256 ? data.image.sha256 : "";

    $("result-title").textContent = "Top " + data.predictions.length + " \\u2014 " + data.model.id;
    var badges = $("result-badges");
    badges.textContent = "";
    if (!data.model.trained) badges.append(untrainedBadge());
    var cache = el("span", "badge " + (data.cached ? "hit" : "miss"), data.cached ? "cache hit \\u2014 no inference ran" : "cache miss \\u2014 computed now");
    cache.id = "cache";
    cache.dataset.cached = String(data.cached);
    badges.append(cache);

    var chart = $("chart");
    chart.textContent = "";
    data.predictions.forEach(function (p) {
      var li = el("li");
      li.dataset.score = String(p.score);
      li.dataset.index = String(p.index);
      var label = el("span", "label", p.label);
      label.title = p.label + " (class " + p.index + ")";
      var track = el("span", "track");
      track.setAttribute("aria-hidden", "true");
      var fill = el("span", "fill");
      fill.style.display = "block";
      fill.style.width = Math.max(0, Math.min(1, p.score)) * 100 + "%";
      track.append(fill);
      var score = el("span", "score", pct(p.score));
      score.title = String(p.score);
      li.append(label, track, score);
      chart.append(li);
    });

    var tbody = $("timings").tBodies[0];
    tbody.textContent = "";
    var t = data.timings_ms;
    $("timings-box").hidden = !t;
    if (t) {
      var total = t.total || 1;
      Object.keys(t).forEach(function (stage) {
        var tr = el("tr");
        tr.dataset.stage = stage;
        var bar = el("span", "tbar");
        bar.style.display = "block";
        bar.setAttribute("aria-hidden", "true");
        var fill = el("span", "fill");
        fill.style.display = "block";
        fill.style.width = Math.min(100, (t[stage] / total) * 100) + "%";
        bar.append(fill);
        var barCell = el("td");
        barCell.append(bar);
        tr.append(stage === "total" ? el("th", null, stage) : el("td", null, stage), el("td", "num", t[stage] + " ms"), barCell);
        tbody.append(tr);
      });
    }
  }

  var drop = $("drop"), fileInput = $("file");
  fileInput.addEventListener("change", function () { fromFiles(fileInput.files); fileInput.value = ""; });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    drop.addEventListener(t, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    var dt = e.dataTransfer;
    if (dt.files && dt.files.length) return fromFiles(dt.files);
    // An image dragged from another page arrives as a link.
    var link = (dt.getData("text/uri-list") || dt.getData("text/plain") || "").split("\\n")[0];
    if (/^https?:\\/\\//i.test(link.trim())) fromUrl(link);
  });
  // A file dropped beside the target must not navigate away from the page.
  window.addEventListener("dragover", function (e) { e.preventDefault(); });
  window.addEventListener("drop", function (e) { e.preventDefault(); });
  $("url-form").addEventListener("submit", function (e) { e.preventDefault(); fromUrl($("url").value); });
  document.addEventListener("paste", function (e) {
    var cd = e.clipboardData;
    if (!cd) return;
    var files = Array.from(cd.files || []).filter(function (f) { return /^image\\//.test(f.type); });
    if (files.length) { e.preventDefault(); return fromFiles(files); }
    var target = e.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    var text = cd.getData("text/plain").trim();
    if (/^https?:\\/\\/\\S+$/i.test(text)) { e.preventDefault(); fromUrl(text); }
  });

  // ---- a folder as a bulk job ----
  var bulkFiles = [], bulkJob = null;
  var bulkStart = $("bulk-start"), bulkCancel = $("bulk-cancel"), bulkErr = $("bulk-error");
  var bar = $("bulk-progress"), barFill = bar.firstElementChild, bulkStatus = $("bulk-status");
  var maxListed = Number(bulkStart.dataset.maxListed);
  function isImage(f) { return IMAGE_TYPE.test(f.type) || IMAGE_EXT.test(f.name); }
  function relName(f) { return f.webkitRelativePath || f.name; }
  function pickBulk(list) {
    var all = Array.from(list || []);
    bulkFiles = all.filter(isImage).sort(function (a, b) { return relName(a) < relName(b) ? -1 : relName(a) > relName(b) ? 1 : 0; });
    var skipped = all.length - bulkFiles.length;
    var bytes = bulkFiles.reduce(function (s, f) { return s + f.size; }, 0);
    $("bulk-summary").textContent = bulkFiles.length + " image" + (bulkFiles.length === 1 ? "" : "s") + " (" + fmtBytes(bytes) + ") selected" +
      (skipped ? "; " + skipped + " other file" + (skipped === 1 ? "" : "s") + " skipped (not JPEG, PNG or WebP)" : "") + ".";
    updateStart();
  }
  function updateStart() { bulkStart.disabled = bulkFiles.length === 0 || bulkJob !== null; }
  $("folder").addEventListener("change", function (e) { pickBulk(e.target.files); });
  $("files").addEventListener("change", function (e) { pickBulk(e.target.files); });

  function progress(done, total, text) {
    var p = total > 0 ? Math.floor((done / total) * 100) : 0;
    barFill.style.width = p + "%";
    bar.setAttribute("aria-valuenow", String(p));
    bar.setAttribute("aria-valuetext", text);
    bulkStatus.textContent = text;
  }
  function safeName(name) { return name.replace(/[^A-Za-z0-9._-]/g, "_").slice(-100); }
  function runId() {
    var stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\\.\\d+Z$/, "Z");
    return "web-" + stamp + "-" + Math.random().toString(16).slice(2, 10);
  }

  async function startBulk() {
    bulkStart.disabled = true;
    hide(bulkErr);
    $("bulk-results").hidden = true;
    $("bulk-counts").textContent = "";
    var model = modelSel.value, k = Number(topk.value);
    var prefix = "uploads/" + runId() + "/";
    var items = bulkFiles.map(function (f, i) {
      return { file: f, name: relName(f), key: prefix + String(i).padStart(5, "0") + "-" + safeName(f.name), ok: false };
    });
    bulkJob = "uploading";
    // Uploads: a few at a time, like the CLI; each PUT is checked by the server (magic bytes) before it is stored.
    var next = 0, finished = 0, failures = [];
    progress(0, items.length, "Uploading 0 / " + items.length + "\\u2026");
    async function worker() {
      while (next < items.length) {
        var it = items[next++];
        var type = IMAGE_TYPE.test(it.file.type) ? it.file.type : "application/octet-stream";
        try {
          await api("PUT", "/v1/images/" + it.key, it.file, type);
          it.ok = true;
        } catch (e) {
          failures.push({ it: it, err: e });
        }
        finished++;
        progress(finished, items.length, "Uploading " + finished + " / " + items.length + "\\u2026");
      }
    }
    await Promise.all([worker(), worker(), worker(), worker()]);
    var uploaded = items.filter(function (it) { return it.ok; });
    if (failures.length) {
      showError(bulkErr, failures[0].err);
      bulkErr.prepend(el("p", null, failures.length + " of " + items.length + " upload(s) failed; first: " + failures[0].it.name));
    }
    if (!uploaded.length) { bulkJob = null; updateStart(); return; }
    // Listed keys make the job's total known at once; a huge folder goes as its prefix instead.
    var source = uploaded.length <= maxListed ? { keys: uploaded.map(function (it) { return it.key; }) } : { prefix: prefix };
    var job;
    try {
      job = await (await api("POST", "/v1/jobs", json({ model: model, top_k: k, source: source }), "application/json")).json();
    } catch (e) {
      showError(bulkErr, e);
      bulkJob = null; updateStart();
      return;
    }
    bulkJob = job.id;
    bar.dataset.job = job.id;
    bulkCancel.hidden = false;
    var st = null, misses = 0;
    for (;;) {
      try {
        st = await (await api("GET", job.status_url)).json();
        misses = 0;
      } catch (e) {
        // A poll can hit a restarting dev server; give up only when it keeps failing.
        if (++misses >= 5) { showError(bulkErr, e); break; }
        await sleep(1000);
        continue;
      }
      var c = st.counts, settled = c.done + c.failed + c.skipped;
      var p = c.total ? Math.floor((settled / c.total) * 100) : 0;
      progress(settled, c.total, "Job " + st.state + ": " + settled + " / " + c.total + (st.total_final ? "" : "+") + " images (" + p + "%)");
      bar.dataset.state = st.state;
      $("bulk-counts").textContent = "done " + c.done + " \\u00b7 failed " + c.failed + " \\u00b7 skipped " + c.skipped + " \\u00b7 cached " + c.cached +
        (typeof st.images_per_s === "number" ? " \\u00b7 " + st.images_per_s.toFixed(1) + " images/s" : "");
      if (TERMINAL[st.state]) break;
      await sleep(1000);
    }
    bulkCancel.hidden = true;
    if (st && TERMINAL[st.state]) await showBulkResults(job, items, st);
    bulkJob = null;
    updateStart();
  }

  async function showBulkResults(job, items, st) {
    var names = {}, order = {};
    items.forEach(function (it, i) { names[it.key] = it.name; order[it.key] = i; });
    var rows = [], after = 0;
    try {
      for (;;) {
        var res = await api("GET", job.results_url + "?after=" + after);
        var lines = (await res.text()).split("\\n").filter(Boolean);
        lines.forEach(function (l) { rows.push(JSON.parse(l)); });
        var nextAfter = Number(res.headers.get("x-next-after"));
        if (!lines.length || !(nextAfter > after)) break;
        after = nextAfter;
      }
    } catch (e) {
      showError(bulkErr, e);
      return;
    }
    // In the order of the files (the job numbers items in its own order).
    var rank = function (r) { return r.source.key in order ? order[r.source.key] : items.length + r.item; };
    rows.sort(function (a, b) { return rank(a) - rank(b); });
    var table = $("bulk-results"), tbody = table.tBodies[0];
    tbody.textContent = "";
    var m = modelById(st.model);
    $("bulk-caption").textContent = "";
    $("bulk-caption").append("Results of job " + st.id + " (" + st.model + ") ");
    if (m && !m.trained) $("bulk-caption").append(untrainedBadge());
    rows.slice(0, 500).forEach(function (r) {
      var top = r.predictions && r.predictions[0];
      var tr = el("tr");
      var src = r.source.key ? names[r.source.key] || r.source.key : r.source.url;
      tr.append(el("td", null, src), el("td", null, r.status),
        el("td", null, top ? top.label : r.error ? r.error.code + ": " + r.error.message : ""),
        el("td", "num", top ? pct(top.score) : ""), el("td", null, r.cached ? "yes" : "no"));
      tbody.append(tr);
    });
    table.hidden = false;
  }

  bulkStart.addEventListener("click", function () {
    startBulk().catch(function (e) { showError(bulkErr, e); bulkJob = null; updateStart(); });
  });
  bulkCancel.addEventListener("click", async function () {
    if (!bulkJob) return;
    try { await api("DELETE", "/v1/jobs/" + bulkJob); } catch (e) { showError(bulkErr, e); }
  });

  loadModels();
})();
`;
