/**
 * The demo page at `/` in a real browser: Debian's chromium driven by
 * playwright-core, against the real worker under `wrangler dev` (global-setup.ts).
 * Everything the page shows is checked against the API's own answer for the
 * same bytes, fetched directly from this test.
 */

import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "fast-png";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_KEY } from "../../scripts/keys/dev-key";
import { BASE, RESULTS_DIR } from "./server";

const AUTH = { authorization: `Bearer ${DEV_API_KEY}` };

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

interface Prediction {
  label: string;
  index: number;
  score: number;
}
interface ClassifyBody {
  model: { id: string; trained: boolean };
  predictions: Prediction[];
  image: { sha256: string; width: number; height: number; format: string };
  cached: boolean;
  timings_ms: Record<string, number>;
}
interface ModelInfo {
  id: string;
  name: string;
  trained: boolean;
  file: { bytes: number };
  stats: { parameters: number };
}
interface JobStatus {
  id: string;
  state: string;
  model: string;
  top_k: number;
  counts: { total: number; done: number; failed: number };
}

/** A small, distinct RGB PNG per seed: smooth diagonal colour gradients. */
function makePng(seed: number, width = 120, height = 90): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((x / width) * 200 + ((seed * 23) % 55));
      data[i + 1] = Math.round((y / height) * 180 + ((seed * 41) % 75));
      data[i + 2] = Math.round(((x + y) / (width + height)) * 120 + ((seed * 67) % 135));
    }
  }
  return encode({ width, height, data, channels: 3, depth: 8 });
}

async function classifyDirect(bytes: Uint8Array, model: string, topK: number): Promise<ClassifyBody> {
  const res = await fetch(`${BASE}/v1/classify?model=${model}&top_k=${topK}`, {
    method: "POST",
    body: bytes,
    headers: { "content-type": "image/png", ...AUTH },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as ClassifyBody;
}

/** What the chart shows, row by row, and the drawn length of each bar relative to its track. */
async function renderedChart(page: Page) {
  const rows = page.locator("#chart li");
  const out: Array<{ label: string; index: string; score: string; shown: string; fillPx: number; trackPx: number }> =
    [];
  for (let i = 0; i < (await rows.count()); i++) {
    const row = rows.nth(i);
    const track = await row.locator(".track").boundingBox();
    const fill = await row.locator(".fill").boundingBox();
    if (!track || !fill) throw new Error(`chart row ${i} has no visible bar`);
    out.push({
      label: (await row.locator(".label").textContent()) ?? "",
      index: (await row.getAttribute("data-index")) ?? "",
      score: (await row.getAttribute("data-score")) ?? "",
      shown: (await row.locator(".score").textContent()) ?? "",
      fillPx: fill.width,
      trackPx: track.width,
    });
  }
  return out;
}

/** The chart must be exactly the API's predictions for the same bytes, drawn to scale. */
async function expectChartIs(page: Page, expected: Prediction[]): Promise<void> {
  const chart = await renderedChart(page);
  expect(chart.map((r) => r.label)).toEqual(expected.map((p) => p.label));
  expect(chart.map((r) => r.index)).toEqual(expected.map((p) => String(p.index)));
  expect(chart.map((r) => r.score)).toEqual(expected.map((p) => String(p.score)));
  expect(chart.map((r) => r.shown)).toEqual(expected.map((p) => `${(p.score * 100).toFixed(2)}%`));
  chart.forEach((r, i) => {
    const score = expected[i]?.score ?? Number.NaN;
    // Drawn to scale; tiny scores still get a 2 px sliver so the row is visibly a bar.
    expect(Math.abs(r.fillPx - Math.max(2, score * r.trackPx))).toBeLessThanOrEqual(1);
  });
}

async function waitForResult(page: Page, what: string, model: string): Promise<void> {
  await page.locator("#status", { hasText: `Classified ${what} with ${model}.` }).waitFor({ timeout: 90_000 });
}

describe("demo page (chromium)", () => {
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let workDir: string;
  let models: ModelInfo[] = [];
  /** Console errors nobody expected; `allow` lists the ones the current step provokes on purpose. */
  const consoleErrors: string[] = [];
  let allow: RegExp | null = null;
  const allowed: string[] = [];

  beforeAll(async () => {
    userDataDir = await mkdtemp(join(tmpdir(), "edgetag-chromium-"));
    workDir = await mkdtemp(join(tmpdir(), "edgetag-demo-"));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (msg) => {
      if (msg.type() !== "error") return;
      if (allow?.test(msg.text())) allowed.push(msg.text());
      else consoleErrors.push(msg.text());
    });
    page.on("pageerror", (err) => consoleErrors.push(`uncaught: ${err.message}`));
    // Playwright turns on file-chooser interception only when a listener exists, asynchronously; a
    // listener from the start means a chooser opened by a key press is never missed.
    page.on("filechooser", () => undefined);
    models = ((await (await fetch(`${BASE}/v1/models`)).json()) as { models: ModelInfo[] }).models;
  });

  afterAll(async () => {
    await context?.close();
    await rm(userDataDir, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
  });

  it("serves the page with a strict CSP and lists every model with trained, size and parameters", async () => {
    const res = await page.goto(`${BASE}/`);
    expect(res?.status()).toBe(200);
    const csp = res?.headers()["content-security-policy"] ?? "";
    expect(csp).toContain("script-src 'sha256-");
    expect(csp).not.toContain("unsafe-inline");
    await page.locator("#model:not([disabled])").waitFor();

    const options = page.locator("#model option");
    expect(await options.count()).toBe(models.length);
    for (const [i, m] of models.entries()) {
      expect(await options.nth(i).getAttribute("value")).toBe(m.id);
      const text = (await options.nth(i).textContent()) ?? "";
      expect(text).toContain(m.trained ? "(trained)" : "untrained — labels not meaningful");
    }
    expect(models.some((m) => !m.trained)).toBe(true);

    for (const m of models) {
      await page.selectOption("#model", m.id);
      const card = page.locator("#model-card");
      expect(await card.locator("#model-trained").textContent()).toBe(
        m.trained ? "trained" : "untrained — labels not meaningful",
      );
      expect(await card.textContent()).toContain(`(${m.stats.parameters.toLocaleString("en-US")})`);
      expect(await card.textContent()).toContain(`${(m.file.bytes / 1e6).toFixed(1)} MB`);
    }
  });

  it("without an API key the API refuses with 401 and the page says where the key goes; the dev key works", async () => {
    expect(await page.inputValue("#api-key")).toBe("");
    const before = allowed.length;
    allow = /status of 401/;
    const png = makePng(9);
    await page.setInputFiles("#file", { name: "nokey.png", mimeType: "image/png", buffer: Buffer.from(png) });
    await page.locator("#status", { hasText: "Classification failed." }).waitFor();
    allow = null;
    expect(await page.locator("#error .code").textContent()).toBe("HTTP 401 · unauthorized");
    expect(await page.locator("#error .msg").textContent()).toMatch(/API key.*enter a valid API key at the top/);
    await expect.poll(() => allowed.length).toBe(before + 1);

    // The dev key that `npm run dev` (here: the global setup) seeds into local KV.
    await page.fill("#api-key", DEV_API_KEY);
    await page.dispatchEvent("#api-key", "change");
    await page.setInputFiles("#file", { name: "withkey.png", mimeType: "image/png", buffer: Buffer.from(png) });
    await waitForResult(page, "withkey.png", await page.inputValue("#model"));
    expect(await page.evaluate("sessionStorage.getItem('edgetag-api-key')")).toBe(DEV_API_KEY);
    // Kept for the tab across a reload; the reload also leaves no current image behind for the next test.
    await page.reload();
    await page.locator("#model:not([disabled])").waitFor();
    expect(await page.inputValue("#api-key")).toBe(DEV_API_KEY);
  });

  it("classifies a dropped image: the chart is the API's prediction for the same bytes", async () => {
    await page.selectOption("#model", "mobilenet-v2-nsfw");
    const png = makePng(1);
    const answer = page.waitForResponse((r) => r.url().includes("/v1/classify") && r.request().method() === "POST");
    const dataTransfer = await page.evaluateHandle(
      ({ b64, name }) => {
        const g = globalThis as unknown as { DataTransfer: new () => { items: { add(f: File): unknown } } };
        const dt = new g.DataTransfer();
        dt.items.add(new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type: "image/png" }));
        return dt;
      },
      { b64: Buffer.from(png).toString("base64"), name: "dropped.png" },
    );
    await page.dispatchEvent("#drop", "dragenter", { dataTransfer });
    await page.dispatchEvent("#drop", "dragover", { dataTransfer });
    await page.dispatchEvent("#drop", "drop", { dataTransfer });
    await waitForResult(page, "dropped.png", "mobilenet-v2-nsfw");

    const pageGot = (await (await answer).json()) as ClassifyBody;
    const direct = await classifyDirect(png, "mobilenet-v2-nsfw", 5);
    expect(direct.predictions.length).toBe(5);
    expect(pageGot.predictions).toEqual(direct.predictions);
    await expectChartIs(page, direct.predictions);

    expect(await page.locator("#result-title").textContent()).toBe("Top 5 — mobilenet-v2-nsfw");
    expect(await page.locator("#result-badges .untrained").count()).toBe(0);
    expect(await page.locator("#cache").getAttribute("data-cached")).toBe(String(pageGot.cached));
    expect(await page.locator("#image-meta").textContent()).toContain("120×90 PNG");
    // Every stage the API timed, with its value, in the API's order.
    const stages = page.locator("#timings tbody tr");
    const timings = Object.entries(pageGot.timings_ms);
    expect(await stages.count()).toBe(timings.length);
    for (const [i, [stage, ms]] of timings.entries()) {
      expect(await stages.nth(i).getAttribute("data-stage")).toBe(stage);
      expect(await stages.nth(i).locator("td.num").textContent()).toBe(`${ms} ms`);
    }
    // The preview is the dropped file itself, decoded by the browser.
    await page.waitForFunction("document.getElementById('preview').complete");
    expect(await page.evaluate("[preview.naturalWidth, preview.naturalHeight]")).toEqual([120, 90]);
  });

  it("switching to an untrained model re-classifies and says the labels are not meaningful", async () => {
    await page.selectOption("#model", "mobilenet-v2");
    await waitForResult(page, "dropped.png", "mobilenet-v2");
    const direct = await classifyDirect(makePng(1), "mobilenet-v2", 5);
    await expectChartIs(page, direct.predictions);
    expect(await page.locator("#result-badges .untrained").textContent()).toBe("untrained — labels not meaningful");
    expect(await page.locator("#model-trained").textContent()).toBe("untrained — labels not meaningful");
  });

  it("classifies a pasted URL through the worker's safe fetch: a loopback host is refused, and the page says why", async () => {
    // Success through a real origin is covered in test/workerd/surface.test.ts (an outbound stand-in
    // for the internet); here the only origin is this machine, which the worker must refuse (SSRF).
    const png = makePng(3);
    const server: Server = createServer((req, res) => {
      if (req.url !== "/photo.png") return res.writeHead(404).end();
      res.writeHead(200, { "content-type": "image/png" }).end(png);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/photo.png`;
      const res = await fetch(`${BASE}/v1/classify?model=mobilenet-v2-nsfw&top_k=3`, {
        method: "POST",
        body: JSON.stringify({ url }),
        headers: { "content-type": "application/json", ...AUTH },
      });
      const envelope = (await res.json()) as { error: { code: string; message: string } };
      expect(res.status).toBe(403);
      expect(envelope.error.code).toBe("url_host_not_allowed");

      await page.selectOption("#model", "mobilenet-v2-nsfw");
      await page.fill("#topk", "3");
      await page.locator("#topk").blur(); // commits the change (which re-runs the current image) now
      allow = /status of 403/;
      // Pasted anywhere outside a text field, a URL is classified at once.
      await page.evaluate((text) => {
        const g = globalThis as unknown as {
          DataTransfer: new () => { setData(type: string, value: string): void };
          ClipboardEvent: new (type: string, init: object) => Event;
          document: { body: { dispatchEvent(e: Event): boolean } };
        };
        const clipboardData = new g.DataTransfer();
        clipboardData.setData("text/plain", text);
        g.document.body.dispatchEvent(new g.ClipboardEvent("paste", { clipboardData, bubbles: true }));
      }, url);
      await page.locator("#status", { hasText: "Classification failed." }).waitFor();
      allow = null;
      expect(await page.locator("#error .code").textContent()).toBe(`HTTP 403 · ${envelope.error.code}`);
      expect(await page.locator("#error .msg").textContent()).toBe(envelope.error.message);
      expect(await page.inputValue("#url")).toBe(url);
    } finally {
      allow = null;
      await new Promise((r) => server.close(r));
    }
  });

  it("shows an API error envelope verbatim", async () => {
    const notAnImage = new TextEncoder().encode("GIF89a this is not really an image");
    const res = await fetch(`${BASE}/v1/classify?model=mobilenet-v2-nsfw&top_k=3`, {
      method: "POST",
      body: notAnImage,
      headers: { "content-type": "image/png", ...AUTH },
    });
    const envelope = (await res.json()) as { error: { code: string; message: string } };
    expect(res.status).toBe(415);

    const before = allowed.length;
    allow = /status of 415/;
    await page.setInputFiles("#file", { name: "fake.png", mimeType: "image/png", buffer: Buffer.from(notAnImage) });
    await page.locator("#status", { hasText: "Classification failed." }).waitFor();
    allow = null;
    expect(await page.locator("#error .code").textContent()).toBe(`HTTP 415 · ${envelope.error.code}`);
    expect(await page.locator("#error .msg").textContent()).toBe(envelope.error.message);
    expect(await page.locator("#error").getAttribute("role")).toBe("alert");
    expect(await page.locator("#result-body").isHidden()).toBe(true);
    await expect.poll(() => allowed.length).toBe(before + 1);
  });

  it("is keyboard-usable: Tab reaches the picker, shows focus, Enter opens it", async () => {
    await page.locator("#topk").focus();
    await page.keyboard.press("Tab");
    expect(await page.evaluate("document.activeElement && document.activeElement.id")).toBe("file");
    // The visually hidden input's focus ring is drawn on its drop-zone label.
    expect(await page.evaluate("getComputedStyle(document.getElementById('drop')).outlineStyle")).toBe("solid");
    const chooser = page.waitForEvent("filechooser");
    await page.keyboard.press("Enter");
    const png = makePng(2, 200, 150);
    await (await chooser).setFiles({ name: "picked.png", mimeType: "image/png", buffer: Buffer.from(png) });
    await waitForResult(page, "picked.png", "mobilenet-v2-nsfw");
    const direct = await classifyDirect(png, "mobilenet-v2-nsfw", 3);
    await expectChartIs(page, direct.predictions);
    expect(await page.locator("#image-meta").textContent()).toContain("200×150 PNG");
  });

  it("tags a folder as a bulk job, shows progress to 100% and each image's result", async () => {
    const folder = join(workDir, "photos");
    await mkdir(join(folder, "sub dir"), { recursive: true });
    const files = new Map<string, Uint8Array>();
    for (let i = 0; i < 6; i++) {
      files.set(i < 4 ? `img-${i}.png` : `sub dir/pic ${i}.png`, makePng(10 + i, 64 + i * 8, 48));
    }
    for (const [rel, bytes] of files) await writeFile(join(folder, rel), bytes);
    await writeFile(join(folder, "notes.txt"), "not an image");

    await page.setInputFiles("#folder", folder);
    expect(await page.locator("#bulk-summary").textContent()).toMatch(
      /^6 images \(.+\) selected; 1 other file skipped \(not JPEG, PNG or WebP\)\.$/,
    );
    await page.click("#bulk-start");
    const bar = page.locator('#bulk-progress[data-state="done"]');
    await bar.waitFor({ timeout: 150_000 });
    expect(await bar.getAttribute("aria-valuenow")).toBe("100");
    // The drawn bar follows (after its short CSS transition).
    await expect
      .poll(async () => {
        const fill = await bar.locator(".fill").boundingBox();
        const track = await bar.boundingBox();
        return fill && track ? Math.round((fill.width / track.width) * 1000) / 1000 : 0;
      })
      .toBe(1);
    expect(await page.locator("#bulk-status").textContent()).toBe("Job done: 6 / 6 images (100%)");
    expect(await page.locator("#bulk-counts").textContent()).toMatch(/^done 6 · failed 0 · skipped 0 · cached \d+/);

    // The job the page created, as the API reports it.
    const jobId = (await bar.getAttribute("data-job")) ?? "";
    const job = (await (await fetch(`${BASE}/v1/jobs/${jobId}`, { headers: AUTH })).json()) as JobStatus;
    expect(job.state).toBe("done");
    expect(job.model).toBe("mobilenet-v2-nsfw");
    expect(job.counts).toMatchObject({ total: 6, done: 6, failed: 0 });

    // One row per image, each with the top label and score the API gives for that file.
    const rows = page.locator("#bulk-results tbody tr");
    expect(await rows.count()).toBe(6);
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const cells = await rows.nth(i).locator("td").allTextContents();
      const rel = (cells[0] ?? "").replace(/^photos\//, "");
      const bytes = files.get(rel);
      expect(bytes, `row ${i} names ${cells[0]}`).toBeDefined();
      seen.add(rel);
      const top = (await classifyDirect(bytes as Uint8Array, job.model, job.top_k)).predictions[0] as Prediction;
      expect(cells.slice(1, 4)).toEqual(["done", top.label, `${(top.score * 100).toFixed(2)}%`]);
    }
    expect(seen.size).toBe(6);
    // Rows follow the files' order, whatever order the job finished them in.
    const names = (await rows.locator("td:first-child").allTextContents()).map((n) => n.replace(/^photos\//, ""));
    expect(names).toEqual([...files.keys()].sort());

    await page.evaluate("window.scrollTo(0, 0)");
    await page.screenshot({ path: join(RESULTS_DIR, "demo.png"), fullPage: true });
  });

  it("logged no console errors beyond the 401, 403 and 415s it provoked on purpose", () => {
    expect(consoleErrors).toEqual([]);
    for (const text of allowed) expect(text).toMatch(/status of (401|403|415)/);
  });
});
