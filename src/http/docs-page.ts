/**
 * The /docs page: a lean, dependency-free OpenAPI reader with "try it".
 * Served by the worker itself, so it works offline and on air-gapped dev
 * boxes (no Swagger UI or Scalar from a CDN). The script avoids backticks and
 * "${" so it can live in these template literals unescaped.
 */

export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgetag API reference</title>
<link rel="stylesheet" href="/docs/docs.css">
</head>
<body>
<header><h1>edgetag API</h1><span id="version"></span><a href="/openapi.json">openapi.json</a></header>
<div id="layout">
  <nav id="nav" aria-label="Operations"></nav>
  <main id="main"><p id="loading">Loading /openapi.json ...</p></main>
</div>
<script src="/docs/docs.js" defer></script>
</body>
</html>
`;

export const DOCS_CSS = `
:root { --fg:#1d232a; --muted:#5b6670; --line:#dde3e8; --bg:#f7f9fa; --accent:#0b6bcb; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); }
* { box-sizing: border-box; }
body { margin:0; background:#fff; }
header { display:flex; gap:1rem; align-items:baseline; padding:.8rem 1.2rem; border-bottom:1px solid var(--line); position:sticky; top:0; background:#fff; z-index:1; }
header h1 { font-size:1.2rem; margin:0; }
header a { margin-left:auto; color:var(--accent); }
#version { color:var(--muted); font-size:.9rem; }
#layout { display:grid; grid-template-columns: 16rem 1fr; }
nav { border-right:1px solid var(--line); padding:.8rem; position:sticky; top:3rem; height:calc(100vh - 3rem); overflow:auto; font-size:.88rem; }
nav h3 { font-size:.75rem; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:1rem 0 .3rem; }
nav a { display:block; padding:.2rem 0; color:var(--fg); text-decoration:none; }
nav a:hover { color:var(--accent); }
main { padding:1rem 1.5rem 4rem; max-width:70rem; }
.intro { white-space:pre-wrap; color:var(--muted); }
.op { border:1px solid var(--line); border-radius:6px; margin:1.2rem 0; }
.op > summary { cursor:pointer; padding:.6rem .8rem; display:flex; gap:.7rem; align-items:center; list-style:none; }
.op[open] > summary { border-bottom:1px solid var(--line); background:var(--bg); }
.method { font:600 .75rem ui-monospace, monospace; padding:.15rem .45rem; border-radius:4px; color:#fff; min-width:3.6rem; text-align:center; }
.get { background:#2f855a; } .post { background:#0b6bcb; } .put { background:#b7791f; } .delete { background:#c53030; }
.path { font-family: ui-monospace, monospace; font-weight:600; }
.summary { color:var(--muted); }
.body { padding:.8rem 1rem; }
.desc { white-space:pre-wrap; }
h4 { margin:1rem 0 .4rem; font-size:.9rem; }
table { border-collapse:collapse; width:100%; font-size:.85rem; }
td, th { text-align:left; border-bottom:1px solid var(--line); padding:.3rem .4rem; vertical-align:top; }
code, pre, .schema { font-family: ui-monospace, monospace; font-size:.8rem; }
pre, .schema { background:var(--bg); border:1px solid var(--line); border-radius:4px; padding:.6rem; overflow:auto; max-height:28rem; white-space:pre; margin:.3rem 0; }
.resp summary { cursor:pointer; }
.try { border-top:1px dashed var(--line); margin-top:1rem; padding-top:.6rem; }
.try label { display:block; margin:.4rem 0 .15rem; font-size:.82rem; color:var(--muted); }
.try input[type=text], .try textarea, .try select { width:100%; font: .85rem ui-monospace, monospace; padding:.35rem; border:1px solid var(--line); border-radius:4px; }
.try textarea { min-height:7rem; }
button { background:var(--accent); color:#fff; border:0; border-radius:4px; padding:.45rem 1rem; font-weight:600; cursor:pointer; margin-top:.6rem; }
button.secondary { background:#fff; color:var(--accent); border:1px solid var(--accent); }
.status { font-weight:600; }
.ok { color:#2f855a; } .err { color:#c53030; }
@media (max-width: 50rem) { #layout { grid-template-columns: 1fr; } nav { position:static; height:auto; border-right:0; } }
`;

export const DOCS_JS = String.raw`
"use strict";
(function () {
  var METHODS = ["get", "post", "put", "delete", "patch"];
  var spec = null;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function resolve(schema) {
    var seen = 0;
    while (schema && schema.$ref && seen++ < 20) {
      var name = schema.$ref.split("/").pop();
      schema = Object.assign({ "x-name": name }, spec.components.schemas[name]);
    }
    return schema || {};
  }

  function typeName(s) {
    s = resolve(s);
    if (s.enum) return s.enum.map(function (v) { return JSON.stringify(v); }).join(" | ");
    if (s.const !== undefined) return JSON.stringify(s.const);
    if (s.anyOf || s.oneOf) return (s.anyOf || s.oneOf).map(typeName).join(" | ");
    var t = Array.isArray(s.type) ? s.type.join(" | ") : (s.type || "any");
    if (t === "array") return typeName(s.items || {}) + "[]";
    if (s.format) t += " (" + s.format + ")";
    return t;
  }

  /** A TypeScript-like rendering of a schema, with descriptions as comments. */
  function render(schema, indent, depth) {
    var s = resolve(schema);
    var pad = new Array(indent + 1).join("  ");
    if (depth > 6) return (s["x-name"] || "...") ;
    var variants = s.anyOf || s.oneOf;
    if (variants) {
      return variants.map(function (v) { return render(v, indent, depth + 1); }).join("\n" + pad + "| ");
    }
    if (s.type === "array") return render(s.items || {}, indent, depth + 1) + "[]";
    if (s.type === "object" || s.properties) {
      var props = s.properties || {};
      var req = s.required || [];
      var lines = Object.keys(props).map(function (name) {
        var p = props[name];
        var rp = resolve(p);
        var note = [];
        if (rp.description || p.description) note.push(p.description || rp.description);
        if (rp.default !== undefined) note.push("default " + JSON.stringify(rp.default));
        if (rp.minimum !== undefined || rp.maximum !== undefined) note.push("range " + (rp.minimum !== undefined ? rp.minimum : "") + ".." + (rp.maximum !== undefined ? rp.maximum : ""));
        if (rp.maxItems !== undefined) note.push("at most " + rp.maxItems + " items");
        return pad + "  " + name + (req.indexOf(name) >= 0 ? "" : "?") + ": " + render(p, indent + 1, depth + 1) + (note.length ? "  // " + note.join("; ") : "");
      });
      if (s.additionalProperties && typeof s.additionalProperties === "object") {
        lines.push(pad + "  [key: string]: " + render(s.additionalProperties, indent + 1, depth + 1));
      }
      return (s["x-name"] ? s["x-name"] + " " : "") + "{\n" + lines.join("\n") + "\n" + pad + "}";
    }
    return typeName(s);
  }

  /** A plausible JSON example for a request body schema. */
  function example(schema, depth) {
    var s = resolve(schema);
    if (s.example !== undefined) return s.example;
    if (s.default !== undefined) return s.default;
    if (depth > 5) return null;
    if (s.anyOf || s.oneOf) return example((s.anyOf || s.oneOf)[0], depth + 1);
    if (s.enum) return s.enum[0];
    var t = Array.isArray(s.type) ? s.type[0] : s.type;
    if (t === "object" || s.properties) {
      var out = {};
      var req = s.required || Object.keys(s.properties || {});
      Object.keys(s.properties || {}).forEach(function (k) { if (req.indexOf(k) >= 0) out[k] = example(s.properties[k], depth + 1); });
      return out;
    }
    if (t === "array") return [example(s.items || {}, depth + 1)];
    if (t === "integer" || t === "number") return s.minimum || 0;
    if (t === "boolean") return false;
    return "";
  }

  function fileToBase64(file) {
    return new Promise(function (ok, fail) {
      var r = new FileReader();
      r.onload = function () { ok(String(r.result).split(",")[1] || ""); };
      r.onerror = function () { fail(r.error); };
      r.readAsDataURL(file);
    });
  }

  function paramsTable(params) {
    if (!params.length) return null;
    var rows = params.map(function (p) {
      var s = resolve(p.schema || {});
      var bits = [p.description || s.description || ""];
      if (s.default !== undefined) bits.push("default " + JSON.stringify(s.default));
      return el("tr", null, [
        el("td", null, [el("code", { text: p.name })]),
        el("td", { text: p.in + (p.required ? ", required" : "") }),
        el("td", null, [el("code", { text: typeName(s) })]),
        el("td", { text: bits.filter(Boolean).join("; ") }),
      ]);
    });
    return el("table", null, [el("tr", null, [el("th", { text: "name" }), el("th", { text: "in" }), el("th", { text: "type" }), el("th", { text: "" })])].concat(rows));
  }

  function tryPanel(method, path, op) {
    var params = op.parameters || [];
    var inputs = {};
    var panel = el("div", { class: "try" }, [el("h4", { text: "Try it" })]);
    params.forEach(function (p) {
      var s = resolve(p.schema || {});
      var input = el("input", { type: "text", placeholder: s.default !== undefined ? String(s.default) : (s.example !== undefined ? String(s.example) : "") });
      inputs[p.in + ":" + p.name] = { param: p, input: input };
      panel.appendChild(el("label", { text: p.name + " (" + p.in + (p.required ? ", required" : "") + ")" }));
      panel.appendChild(input);
    });

    var content = (op.requestBody && op.requestBody.content) || {};
    var types = Object.keys(content);
    var typeSelect = null, fileInput = null, urlInput = null, jsonArea = null;
    if (types.length) {
      typeSelect = el("select", null, types.map(function (t) { return el("option", { value: t, text: t }); }));
      var jsonType = types.filter(function (t) { return /json/.test(t); })[0];
      fileInput = el("input", { type: "file", multiple: "" });
      urlInput = el("input", { type: "text", placeholder: "image URL (multipart url field)" });
      jsonArea = el("textarea", { spellcheck: "false" });
      if (jsonType) jsonArea.value = JSON.stringify(example(content[jsonType].schema, 0), null, 2);
      var b64 = el("button", { type: "button", class: "secondary", text: "Put the chosen file(s) into the JSON as base64" });
      b64.addEventListener("click", function () {
        var files = Array.prototype.slice.call(fileInput.files || []);
        if (!files.length) { alert("Choose a file first"); return; }
        Promise.all(files.map(fileToBase64)).then(function (list) {
          var body = /\/batch$/.test(path) ? { images: list.map(function (x) { return { image: x }; }) } : { image: list[0] };
          jsonArea.value = JSON.stringify(body, null, 2);
          typeSelect.value = jsonType;
          sync();
        });
      });
      var fileWrap = el("div", null, [el("label", { text: "file(s)" }), fileInput, jsonType ? b64 : null]);
      var urlWrap = el("div", null, [el("label", { text: "url" }), urlInput]);
      var jsonWrap = el("div", null, [el("label", { text: "JSON body" }), jsonArea]);
      var sync = function () {
        var t = typeSelect.value;
        fileWrap.style.display = /json/.test(t) && !/\/(classify|embed)/.test(path) ? "none" : "";
        urlWrap.style.display = t === "multipart/form-data" ? "" : "none";
        jsonWrap.style.display = /json/.test(t) ? "" : "none";
      };
      typeSelect.addEventListener("change", sync);
      panel.appendChild(el("label", { text: "body content-type" }));
      panel.appendChild(typeSelect);
      panel.appendChild(fileWrap);
      panel.appendChild(urlWrap);
      panel.appendChild(jsonWrap);
      sync();
    }

    var send = el("button", { type: "button", text: "Send " + method.toUpperCase() });
    var out = el("div");
    panel.appendChild(send);
    panel.appendChild(out);

    send.addEventListener("click", function () {
      var url = path;
      var query = new URLSearchParams();
      var headers = {};
      var missing = [];
      Object.keys(inputs).forEach(function (k) {
        var entry = inputs[k], v = entry.input.value.trim(), p = entry.param;
        if (!v) { if (p.required) missing.push(p.name); return; }
        if (p.in === "path") url = url.replace("{" + p.name + "}", p.name === "key" ? v.split("/").map(encodeURIComponent).join("/") : encodeURIComponent(v));
        else if (p.in === "query") query.append(p.name, v);
        else if (p.in === "header") headers[p.name] = v;
      });
      if (missing.length) { out.replaceChildren(el("p", { class: "err", text: "Fill in: " + missing.join(", ") })); return; }
      if (String(query)) url += "?" + query;
      var body;
      var curl = ["curl -sS -X " + method.toUpperCase()];
      Object.keys(headers).forEach(function (h) { curl.push("-H '" + h + ": " + headers[h] + "'"); });
      if (typeSelect) {
        var t = typeSelect.value;
        var files = Array.prototype.slice.call(fileInput.files || []);
        if (/json/.test(t)) {
          body = jsonArea.value;
          headers["content-type"] = t;
          curl.push("-H 'content-type: " + t + "'", "--data @body.json");
        } else if (t === "multipart/form-data") {
          body = new FormData();
          files.forEach(function (f) { body.append("image", f, f.name); curl.push("-F image=@" + f.name); });
          if (urlInput.value.trim()) { body.append("url", urlInput.value.trim()); curl.push("-F url=" + urlInput.value.trim()); }
        } else {
          if (!files.length) { out.replaceChildren(el("p", { class: "err", text: "Choose a file" })); return; }
          body = files[0];
          headers["content-type"] = files[0].type || (t.indexOf("*") >= 0 ? "application/octet-stream" : t);
          curl.push("-H 'content-type: " + headers["content-type"] + "'", "--data-binary @" + files[0].name);
        }
      }
      curl.push("'" + location.origin + url + "'");
      out.replaceChildren(el("p", { text: "Sending ..." }));
      var t0 = performance.now();
      fetch(url, { method: method.toUpperCase(), headers: headers, body: body }).then(function (res) {
        return res.text().then(function (text) {
          var ms = Math.round(performance.now() - t0);
          var pretty = text;
          try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON (e.g. NDJSON) */ }
          var hdrs = [];
          res.headers.forEach(function (v, k) { hdrs.push(k + ": " + v); });
          out.replaceChildren(
            el("p", null, [el("span", { class: "status " + (res.ok ? "ok" : "err"), text: res.status + " " + res.statusText }), " in " + ms + " ms"]),
            el("pre", { text: hdrs.join("\n") }),
            el("pre", { text: pretty || "(empty body)" }),
            el("details", null, [el("summary", { text: "as curl" }), el("pre", { text: curl.join(" \\\n  ") })])
          );
        });
      }).catch(function (e) { out.replaceChildren(el("p", { class: "err", text: String(e) })); });
    });
    return panel;
  }

  function operation(method, path, op, pathParams) {
    var id = (method + path).replace(/[^a-z0-9]+/gi, "-");
    var params = (pathParams || []).concat(op.parameters || []);
    op = Object.assign({}, op, { parameters: params });
    var body = el("div", { class: "body" });
    if (op.description) body.appendChild(el("p", { class: "desc", text: op.description }));
    var table = paramsTable(params);
    if (table) { body.appendChild(el("h4", { text: "Parameters" })); body.appendChild(table); }
    if (op.requestBody) {
      body.appendChild(el("h4", { text: "Request body" + (op.requestBody.required ? " (required)" : "") }));
      if (op.requestBody.description) body.appendChild(el("p", { class: "desc", text: op.requestBody.description }));
      Object.keys(op.requestBody.content || {}).forEach(function (t) {
        body.appendChild(el("div", null, [el("code", { text: t })]));
        body.appendChild(el("div", { class: "schema", text: render(op.requestBody.content[t].schema || {}, 0, 0) }));
      });
    }
    body.appendChild(el("h4", { text: "Responses" }));
    Object.keys(op.responses || {}).forEach(function (status) {
      var r = op.responses[status];
      var d = el("details", { class: "resp" }, [el("summary", null, [el("b", { text: status }), " " + (r.description || "")])]);
      Object.keys(r.headers || {}).forEach(function (h) { d.appendChild(el("div", null, [el("code", { text: h }), " " + (r.headers[h].description || "")])); });
      Object.keys(r.content || {}).forEach(function (t) {
        d.appendChild(el("div", null, [el("code", { text: t })]));
        d.appendChild(el("div", { class: "schema", text: render(r.content[t].schema || {}, 0, 0) }));
      });
      body.appendChild(d);
    });
    body.appendChild(tryPanel(method, path, op));
    return el("details", { class: "op", id: id }, [
      el("summary", null, [el("span", { class: "method " + method, text: method.toUpperCase() }), el("span", { class: "path", text: path }), el("span", { class: "summary", text: op.summary || "" })]),
      body,
    ]);
  }

  function show(doc) {
    spec = doc;
    document.getElementById("version").textContent = "OpenAPI " + doc.openapi + ", API version " + doc.info.version;
    var main = document.getElementById("main");
    var nav = document.getElementById("nav");
    main.replaceChildren(el("p", { class: "intro", text: doc.info.description || "" }));
    var byTag = {};
    var order = (doc.tags || []).map(function (t) { return t.name; });
    Object.keys(doc.paths).forEach(function (path) {
      var item = doc.paths[path];
      METHODS.forEach(function (m) {
        if (!item[m]) return;
        var tag = (item[m].tags || ["other"])[0];
        if (order.indexOf(tag) < 0) order.push(tag);
        (byTag[tag] = byTag[tag] || []).push([m, path, item[m], item.parameters]);
      });
    });
    order.forEach(function (tag) {
      if (!byTag[tag]) return;
      var info = (doc.tags || []).filter(function (t) { return t.name === tag; })[0];
      nav.appendChild(el("h3", { text: tag }));
      main.appendChild(el("h2", { text: tag }));
      if (info && info.description) main.appendChild(el("p", { class: "summary", text: info.description }));
      byTag[tag].forEach(function (x) {
        var node = operation(x[0], x[1], x[2], x[3]);
        main.appendChild(node);
        var link = el("a", { href: "#" + node.id, text: x[0].toUpperCase() + " " + x[1] });
        link.addEventListener("click", function () { node.open = true; });
        nav.appendChild(link);
      });
    });
    if (location.hash) { var target = document.getElementById(location.hash.slice(1)); if (target) { target.open = true; target.scrollIntoView(); } }
  }

  fetch("/openapi.json").then(function (r) {
    if (!r.ok) throw new Error("GET /openapi.json: HTTP " + r.status);
    return r.json();
  }).then(show).catch(function (e) {
    document.getElementById("main").replaceChildren(el("p", { class: "err", text: String(e) }));
  });
})();
`;
