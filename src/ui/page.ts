import { LIMITS } from "../limits";
import { CLIENT_JS } from "./client";
import { STYLES } from "./styles";

/**
 * The demo page at `/`: one self-contained HTML document (styles and script
 * inline, no framework, no CDN) so it works offline under `npm run dev` and
 * costs one request. The script and stylesheet are exported separately so the
 * route can pin them with CSP hashes.
 */
export const PAGE_SCRIPT = CLIENT_JS;
export const PAGE_STYLE = STYLES;

const ICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%231f5fd1'/%3E%3Crect x='3' y='9' width='2' height='4' fill='white'/%3E%3Crect x='7' y='5' width='2' height='8' fill='white'/%3E%3Crect x='11' y='3' width='2' height='10' fill='white'/%3E%3C/svg%3E";

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgetag \u2014 image classification at the edge</title>
<link rel="icon" href="${ICON}">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
<h1>edgetag</h1>
<p>Image classification on Cloudflare Workers: int8 ONNX models running in WebAssembly. This page only uses the public API.</p>
<nav aria-label="API"><a href="/v1/models">GET /v1/models</a><a href="/docs">API reference</a></nav>
<div class="apikey"><label for="api-key">API key</label>
<input id="api-key" type="password" autocomplete="off" spellcheck="false" aria-describedby="api-key-help">
<span id="api-key-help" class="muted">Sent as <code>Authorization: Bearer</code> and kept in this tab only. Under <code>npm run dev</code>, use the dev key from the README.</span></div>
</header>
<main>
<section class="card" aria-labelledby="classify-h">
<h2 id="classify-h">Classify an image</h2>
<div class="grid">
<div>
<label for="model">Model</label>
<select id="model" disabled><option>loading\u2026</option></select>
<div id="model-card" class="model-card" aria-live="polite"></div>
<div id="model-error" class="err" role="alert" hidden></div>
<label for="topk">Top-k (${LIMITS.topK.min}\u2013${LIMITS.topK.max})</label>
<input id="topk" type="number" min="${LIMITS.topK.min}" max="${LIMITS.topK.max}" value="${LIMITS.topK.default}" required>
<input id="file" class="sr-only" type="file" accept="image/jpeg,image/png,image/webp">
<label id="drop" class="drop" for="file"><strong>Drop an image here</strong>
<span>or click / press Enter to choose one \u00b7 JPEG, PNG or WebP \u00b7 or paste an image or its URL</span></label>
<form id="url-form">
<label for="url">Image URL</label>
<div class="row"><input id="url" type="url" placeholder="https://example.com/photo.jpg" required><button type="submit">Classify URL</button></div>
</form>
</div>
<div id="result" aria-live="polite">
<p id="status" role="status" class="muted">No image yet. Results appear here.</p>
<div id="error" class="err" role="alert" hidden></div>
<div id="notice" class="notice" hidden></div>
<div id="result-body" class="result" hidden>
<figure><img id="preview" alt=""><figcaption id="image-meta"></figcaption></figure>
<div>
<h3 id="result-title">Top predictions</h3>
<div id="result-badges" class="meta"></div>
<ol id="chart" class="chart" aria-labelledby="result-title"></ol>
<p class="scale">Bars are probabilities on a 0\u2013100% scale.</p>
<div id="timings-box">
<h3 id="timings-h">Timings (wall-clock ms per stage)</h3>
<table id="timings" aria-labelledby="timings-h"><thead><tr><th scope="col">stage</th><th scope="col" class="num">time</th><th scope="col"><span class="sr-only">share of total</span></th></tr></thead><tbody></tbody></table>
</div>
</div>
</div>
</div>
</div>
</section>
<section class="card" aria-labelledby="bulk-h">
<h2 id="bulk-h">Tag a folder (bulk job)</h2>
<p class="muted">Each image is uploaded to the images bucket (<code>PUT /v1/images/\u2026</code>), then one job (<code>POST /v1/jobs</code>) tags them all with <strong id="bulk-model">the model above</strong> on the queue, and this page polls <code>GET /v1/jobs/:id</code>.</p>
<div class="row">
<input id="folder" class="sr-only" type="file" webkitdirectory multiple><label class="btn" for="folder">Choose folder\u2026</label>
<input id="files" class="sr-only" type="file" multiple accept="image/jpeg,image/png,image/webp"><label class="btn" for="files">Choose files\u2026</label>
<button id="bulk-start" type="button" data-max-listed="${LIMITS.maxJobListItems}" disabled>Upload and tag</button>
<button id="bulk-cancel" class="secondary" type="button" hidden>Cancel job</button>
</div>
<p id="bulk-summary" role="status">No folder chosen.</p>
<div id="bulk-progress" class="progress" role="progressbar" aria-labelledby="bulk-h" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="fill"></div></div>
<p id="bulk-status" class="muted"></p>
<p id="bulk-counts"></p>
<div id="bulk-error" class="err" role="alert" hidden></div>
<table id="bulk-results" hidden><caption id="bulk-caption"></caption>
<thead><tr><th scope="col">file</th><th scope="col">status</th><th scope="col">top label</th><th scope="col" class="num">score</th><th scope="col">cached</th></tr></thead><tbody></tbody></table>
</section>
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
