/**
 * Load test (issue 6, item 7): a bounded burst of mixed traffic against the
 * real worker under `wrangler dev`, on 127.0.0.1 only, with autocannon.
 *
 *   npm run loadtest                                  # own server on port 8810 (inspector 8811), 400 requests
 *   npm run loadtest -- --requests 1000 --connections 8
 *   npm run loadtest -- --url http://127.0.0.1:8787   # an already running `npm run dev` (no memory check)
 *
 * Traffic (shuffled with a fixed seed): cache hits on known photos, misses
 * (the same JPEGs with a unique COM segment: new bytes, same pixels), all
 * three models, every file of the bad-input corpus plus bad parameters, a
 * missing API key and public GETs. Every response is checked against what it
 * must be: bad inputs their documented 4xx code, every 200 its image's
 * top-1 (learned by one request per image and model before the load), hits
 * cached and misses not. It runs in two equal rounds, reading the workerd
 * RSS during each and after a pause, so "memory settles" is a measured claim:
 * the second round must not leave the process bigger than the first did.
 *
 * Exit code 0 only if there was no 5xx, no wrong answer and memory settled.
 * Results: stdout (markdown) and bench-results/loadtest-latest.json.
 */

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { withNonce } from "./bench/jpeg";
import { AUTH_HEADERS, type DevServer, procMemory, REPO, RESULTS_DIR, seedModels, startServer } from "./bench/server";
import { percentile } from "./bench/stats";
import { rng } from "./gen-images";
import { localApiKey } from "./keys/dev-key";

const MODELS = ["mobilenet-v2", "densenet-121", "mobilenet-v2-nsfw"] as const;
type ModelId = (typeof MODELS)[number];

/** Share of each traffic class in the plan (the rest are public GETs). */
const MIX = { hit: 0.45, miss: 0.25, bad: 0.25 };
const LIMITS = { maxRequests: 5000, maxConnections: 64, wallClockMs: 20 * 60_000 };
const SETTLE_PAUSE_MS = 5_000;
/** Round 2 may end at most this much above round 1 (MB, or 10 % if larger) for memory to count as settled. */
const SETTLE_TOLERANCE_MB = 16;
/** RSS is sampled every 250 ms under load, so the true peak can sit slightly above the sampled one. */
const PEAK_SLACK_MB = 4;
const log = (s: string) => process.stderr.write(`[loadtest ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// --- autocannon (CommonJS, no bundled types: the part used here) --------------
interface AcRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  setupRequest?: (req: AcRequest, context: Record<string, unknown>) => AcRequest;
  onResponse?: (
    status: number,
    body: string,
    context: Record<string, unknown>,
    headers: Record<string, string>,
  ) => void;
}
interface AcHistogram {
  average: number;
  p50: number;
  p97_5: number;
  p99: number;
  max: number;
}
interface AcResult {
  duration: number;
  requests: AcHistogram & { total: number };
  latency: AcHistogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AcInstance {
  stop(): void;
}
type Autocannon = (
  opts: {
    url: string;
    connections: number;
    pipelining: number;
    amount: number;
    timeout: number;
    requests: AcRequest[];
  },
  done: (err: Error | null, result: AcResult) => void,
) => AcInstance;
const autocannon = createRequire(import.meta.url)("autocannon") as Autocannon;

// --- the plan -----------------------------------------------------------------
type Kind = "hit" | "miss" | "bad" | "public";
interface Planned {
  kind: Kind;
  /** Reporting bucket, e.g. "miss densenet-121" or "bad invalid_image". */
  label: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  expect: { status: number; code?: string; image?: string; model?: ModelId; cached?: boolean };
}

interface Image {
  name: string;
  type: string;
  bytes: Uint8Array;
  /** JPEGs also serve misses (a COM segment changes the bytes, not the pixels). */
  jpeg: boolean;
}

interface Top1 {
  index: number;
  label: string;
  score: number;
}

function loadImages(): Image[] {
  const dir = join(REPO, "test/fixtures/photos");
  const files = ["astronaut.jpg", "coffee.jpg", "hubble.jpg", "chelsea.png", "horse.png"];
  return files.map((f) => ({
    name: f,
    type: f.endsWith(".png") ? "image/png" : "image/jpeg",
    bytes: new Uint8Array(readFileSync(join(dir, f))),
    jpeg: f.endsWith(".jpg"),
  }));
}

/** The committed bad-input corpus with its documented answers, plus request-level mistakes. */
function badRequests(auth: Record<string, string>, jpeg: Uint8Array): Omit<Planned, "kind">[] {
  const index = JSON.parse(readFileSync(join(REPO, "test/fixtures/bad/index.json"), "utf8")) as {
    files: Array<{ file: string; status: number; code: string }>;
  };
  const out: Omit<Planned, "kind">[] = index.files.map((f) => {
    const body = readFileSync(join(REPO, "test/fixtures/bad", f.file));
    // Over HTTP an empty body is refused before any decoding (400 empty_body).
    const exp = body.length === 0 ? { status: 400, code: "empty_body" } : { status: f.status, code: f.code };
    return {
      label: `bad: ${exp.code}`,
      method: "POST",
      path: "/v1/classify",
      headers: { ...auth, "content-type": "application/octet-stream" },
      body,
      expect: exp,
    };
  });
  const img = Buffer.from(jpeg);
  const jpegHeaders = { ...auth, "content-type": "image/jpeg" };
  out.push(
    {
      label: "bad: top_k=0",
      method: "POST",
      path: "/v1/classify?top_k=0",
      headers: jpegHeaders,
      body: img,
      expect: { status: 400, code: "invalid_parameter" },
    },
    {
      label: "bad: unknown model",
      method: "POST",
      path: "/v1/classify?model=resnet-9000",
      headers: jpegHeaders,
      body: img,
      expect: { status: 404, code: "unknown_model" },
    },
    {
      label: "bad: text/plain",
      method: "POST",
      path: "/v1/classify",
      headers: { ...auth, "content-type": "text/plain" },
      body: Buffer.from("hello"),
      expect: { status: 415, code: "unsupported_media_type" },
    },
    {
      label: "bad: no key",
      method: "POST",
      path: "/v1/classify",
      headers: { "content-type": "image/jpeg" },
      body: img,
      expect: { status: 401, code: "unauthorized" },
    },
    {
      label: "bad: wrong key",
      method: "POST",
      path: "/v1/classify",
      headers: { "content-type": "image/jpeg", authorization: "Bearer et_loadtest_key_nobody_issued" },
      body: img,
      expect: { status: 401, code: "unauthorized" },
    },
  );
  return out;
}

function buildPlan(n: number, images: Image[], auth: Record<string, string>, runId: string, seed: number): Planned[] {
  const r = rng(seed);
  const jpegs = images.filter((i) => i.jpeg);
  // Shuffled first so that even a short run sends many kinds (the corpus index is grouped by kind).
  const bad = shuffle(badRequests(auth, (jpegs[0] as Image).bytes), r);
  const counts = { hit: Math.round(n * MIX.hit), miss: Math.round(n * MIX.miss), bad: Math.round(n * MIX.bad) };
  const plan: Planned[] = [];
  for (let i = 0; i < counts.hit; i++) {
    const img = images[i % images.length] as Image;
    const model = MODELS[Math.floor(i / images.length) % MODELS.length] as ModelId;
    plan.push({
      kind: "hit",
      label: `hit ${model}`,
      method: "POST",
      path: `/v1/classify?model=${model}&top_k=1`,
      headers: { ...auth, "content-type": img.type },
      body: Buffer.from(img.bytes),
      expect: { status: 200, image: img.name, model, cached: true },
    });
  }
  for (let i = 0; i < counts.miss; i++) {
    const img = jpegs[i % jpegs.length] as Image;
    const model = MODELS[i % MODELS.length] as ModelId;
    plan.push({
      kind: "miss",
      label: `miss ${model}`,
      method: "POST",
      path: `/v1/classify?model=${model}&top_k=1`,
      headers: { ...auth, "content-type": "image/jpeg" },
      body: Buffer.from(withNonce(img.bytes, `loadtest ${runId} ${i}`)),
      expect: { status: 200, image: img.name, model, cached: false },
    });
  }
  for (let i = 0; i < counts.bad; i++) plan.push({ kind: "bad", ...(bad[i % bad.length] as Omit<Planned, "kind">) });
  const publicPaths = ["/healthz", "/v1/models"];
  for (let i = plan.length; i < n; i++) {
    const path = publicPaths[i % publicPaths.length] as string;
    plan.push({ kind: "public", label: `public ${path}`, method: "GET", path, headers: {}, expect: { status: 200 } });
  }
  return shuffle(plan, r);
}

/** Fisher-Yates with the seeded generator: the same mix and order for the same seed. */
function shuffle<T>(xs: T[], r: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
  }
  return xs;
}

// --- checking -------------------------------------------------------------------
interface Outcome {
  item: Planned;
  status: number;
  ms: number;
  problem?: string;
  /** Answered by the worker (our envelope / x-request-id), not by wrangler's dev proxy. */
  fromWorker: boolean;
}

function check(
  item: Planned,
  status: number,
  body: string,
  headers: Record<string, string>,
  expected: Map<string, Top1>,
): string | undefined {
  const e = item.expect;
  if (status !== e.status) return `status ${status}, expected ${e.status}: ${body.slice(0, 160)}`;
  if (!headers["x-request-id"]) return "no x-request-id header";
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return `not JSON: ${body.slice(0, 80)}`;
  }
  if (e.code) {
    const code = (json as { error?: { code?: string } }).error?.code;
    return code === e.code ? undefined : `error code ${code}, expected ${e.code}`;
  }
  if (!e.image || !e.model) return undefined;
  const res = json as { model: { id: string }; cached: boolean; predictions: Top1[] };
  const want = expected.get(`${e.image}|${e.model}`) as Top1;
  const got = res.predictions[0];
  if (res.model.id !== e.model) return `model ${res.model.id}, expected ${e.model}`;
  if (!got || got.index !== want.index)
    return `top-1 ${got?.label} (${got?.index}), expected ${want.label} (${want.index})`;
  if (Math.abs(got.score - want.score) > 1e-5) return `top-1 score ${got.score}, expected ${want.score}`;
  if (res.cached !== e.cached) return `cached=${res.cached}, expected ${e.cached}`;
  if (!/infer;dur=|cache_read;dur=/.test(headers["server-timing"] ?? "")) return "no stage timings in Server-Timing";
  return undefined;
}

// --- running ----------------------------------------------------------------------
async function post(base: string, path: string, body: Uint8Array, headers: Record<string, string>) {
  const res = await fetch(`${base}${path}`, { method: "POST", body, headers, signal: AbortSignal.timeout(180_000) });
  return { status: res.status, text: await res.text() };
}

/**
 * One request per (image, model): the expected top-1, a loaded session for
 * every model (so the load measures a warm worker), and a cache entry for the
 * hits. For JPEGs the answer comes from a fresh inference (a nonce makes the
 * bytes new); a PNG's may come from an earlier run's cache entry, which is
 * pinned to the same model file by its sha256.
 */
async function learnAnswers(
  base: string,
  images: Image[],
  auth: Record<string, string>,
  runId: string,
): Promise<Map<string, Top1>> {
  const expected = new Map<string, Top1>();
  for (const model of MODELS) {
    for (const img of images) {
      const headers = { ...auth, "content-type": img.type };
      const fresh = img.jpeg ? withNonce(img.bytes, `loadtest warm-up ${runId}`) : img.bytes;
      const first = await post(base, `/v1/classify?model=${model}&top_k=1`, fresh, headers);
      if (first.status !== 200)
        throw new Error(`warm-up ${img.name} ${model}: ${first.status} ${first.text.slice(0, 300)}`);
      const top = (JSON.parse(first.text) as { predictions: Top1[] }).predictions[0] as Top1;
      expected.set(`${img.name}|${model}`, top);
      // The cache write happens after the response (waitUntil): wait until it reads back as a hit.
      for (let i = 0; ; i++) {
        const again = await post(base, `/v1/classify?model=${model}&top_k=1`, img.bytes, headers);
        if ((JSON.parse(again.text) as { cached: boolean }).cached) break;
        if (i > 50) throw new Error(`warm-up ${img.name} ${model}: never became a cache hit`);
        await sleep(100);
      }
    }
    log(`warm-up: ${model} answered for ${images.length} images`);
  }
  return expected;
}

interface RoundResult {
  autocannon: AcResult;
  outcomes: Outcome[];
  rssDuring: number[];
  rssAfterMb?: number;
  wallS: number;
}

async function runRound(
  base: string,
  plan: Planned[],
  connections: number,
  expected: Map<string, Top1>,
  workerdPid: number | undefined,
): Promise<RoundResult> {
  const outcomes: Outcome[] = [];
  const rssDuring: number[] = [];
  let next = 0;
  const sampler = workerdPid
    ? setInterval(() => {
        try {
          rssDuring.push(procMemory(workerdPid).rssMb);
        } catch {
          // workerd gone: the run reports it through failed requests.
        }
      }, 250)
    : undefined;
  const t0 = performance.now();
  const result = await new Promise<AcResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: base,
        connections,
        pipelining: 1, // one request in flight per connection: onResponse belongs to the last setupRequest
        amount: plan.length,
        timeout: 180,
        requests: [
          {
            setupRequest(req, context) {
              const item = plan[next++ % plan.length] as Planned;
              context.item = item;
              context.t0 = performance.now();
              return { ...req, method: item.method, path: item.path, headers: item.headers, body: item.body ?? "" };
            },
            onResponse(status, body, context, rawHeaders) {
              const item = context.item as Planned;
              const ms = performance.now() - (context.t0 as number);
              const headers = Object.fromEntries(
                Object.entries(rawHeaders).map(([k, v]) => [k.toLowerCase(), String(v)]),
              );
              const problem = check(item, status, body, headers, expected);
              outcomes.push({
                item,
                status,
                ms,
                fromWorker: Boolean(headers["x-request-id"]),
                ...(problem && { problem }),
              });
            },
          },
        ],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    setTimeout(() => instance.stop(), LIMITS.wallClockMs).unref();
  });
  const wallS = (performance.now() - t0) / 1000;
  if (sampler) clearInterval(sampler);
  let rssAfterMb: number | undefined;
  if (workerdPid) {
    await sleep(SETTLE_PAUSE_MS);
    rssAfterMb = procMemory(workerdPid).rssMb;
  }
  return { autocannon: result, outcomes, rssDuring, wallS, ...(rssAfterMb !== undefined && { rssAfterMb }) };
}

// --- reporting ------------------------------------------------------------------
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

function latencyRow(name: string, ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `| ${name} | ${s.length} | ${f1(percentile(s, 50))} | ${f1(percentile(s, 95))} | ${f1(percentile(s, 99))} | ${f1(s[s.length - 1] ?? Number.NaN)} |`;
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      url: { type: "string" },
      port: { type: "string", default: "8810" },
      requests: { type: "string", default: "400" },
      connections: { type: "string", default: "8" },
      seed: { type: "string", default: "6" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      "usage: npm run loadtest -- [--requests N (400)] [--connections C (8)] [--port P (8810) | --url http://127.0.0.1:P] [--seed S]\n",
    );
    process.exit(0);
  }
  const int = (v: string, name: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`--${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  let url: string | undefined;
  if (values.url !== undefined) {
    const u = new URL(values.url);
    // Never aimed at anything but a local dev server: this is a load generator.
    if (u.protocol !== "http:" || u.hostname !== "127.0.0.1" || u.pathname !== "/" || u.search) {
      throw new Error(`--url must be http://127.0.0.1:<port> (a local wrangler dev), got ${values.url}`);
    }
    url = u.origin;
  }
  return {
    url,
    port: int(values.port, "port", 1024, 65534),
    requests: int(values.requests, "requests", 20, LIMITS.maxRequests),
    connections: int(values.connections, "connections", 1, LIMITS.maxConnections),
    seed: int(values.seed, "seed", 0, 2 ** 31),
  };
}

const loadBefore = os
  .loadavg()
  .map((x) => x.toFixed(1))
  .join(" ");

async function main(): Promise<number> {
  const opts = parseCli();
  const images = loadImages();
  let server: DevServer | undefined;
  let base: string;
  let auth: Record<string, string>;
  if (opts.url) {
    base = opts.url;
    auth = { authorization: `Bearer ${localApiKey()}` };
    log(`using the server on ${base} (no memory readings: its workerd is not ours)`);
  } else {
    await seedModels(log);
    server = await startServer({
      port: opts.port,
      inspectorPort: opts.port + 1,
      logName: "loadtest-wrangler.log",
      log,
    });
    base = server.base;
    auth = { ...AUTH_HEADERS };
  }
  try {
    const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    const expected = await learnAnswers(base, images, auth, runId);
    let rssBaseline: number | undefined;
    if (server) {
      await sleep(2000);
      rssBaseline = procMemory(server.workerdPid).rssMb;
    }
    const plan = buildPlan(opts.requests, images, auth, runId, opts.seed);
    const half = Math.ceil(plan.length / 2);
    const rounds: RoundResult[] = [];
    for (const [i, part] of [plan.slice(0, half), plan.slice(half)].entries()) {
      log(`round ${i + 1}: ${part.length} requests over ${opts.connections} connections`);
      rounds.push(await runRound(base, part, opts.connections, expected, server?.workerdPid));
    }
    return report(opts, rounds, plan, rssBaseline);
  } finally {
    await server?.stop();
  }
}

function report(
  opts: ReturnType<typeof parseCli>,
  rounds: RoundResult[],
  plan: Planned[],
  rssBaseline: number | undefined,
): number {
  const outcomes = rounds.flatMap((r) => r.outcomes);
  const wallS = rounds.reduce((a, r) => a + r.wallS, 0);
  const byStatus = new Map<number, number>();
  for (const o of outcomes) byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
  const server5xx = outcomes.filter((o) => o.status >= 500);
  const wrong = outcomes.filter((o) => o.problem);
  const transportErrors = rounds.reduce((a, r) => a + r.autocannon.errors, 0);
  const missing = plan.length - outcomes.length;

  const lines: string[] = [];
  const load = os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");
  lines.push(`## Load test (${new Date().toISOString()})`, "");
  lines.push(
    `Machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), load average ${loadBefore} before and ${load} after the run (other work shares this machine).`,
    "",
  );
  lines.push(
    `${plan.length} requests, ${opts.connections} connections, 2 rounds, seed ${opts.seed}; ${wallS.toFixed(1)} s of load → **${(outcomes.length / wallS).toFixed(1)} req/s** overall.`,
    "",
  );
  lines.push("| class | n | p50 ms | p95 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|---:|");
  lines.push(
    latencyRow(
      "**all**",
      outcomes.map((o) => o.ms),
    ),
  );
  const labels = [...new Set(outcomes.map((o) => (o.item.kind === "bad" ? "bad (all kinds)" : o.item.label)))].sort();
  for (const label of labels) {
    lines.push(
      latencyRow(
        label,
        outcomes.filter((o) => (o.item.kind === "bad" ? "bad (all kinds)" : o.item.label) === label).map((o) => o.ms),
      ),
    );
  }
  lines.push("");
  lines.push(
    `Status codes: ${[...byStatus]
      .sort((a, b) => a[0] - b[0])
      .map(([s, n]) => `${s}×${n}`)
      .join(", ")}.`,
  );
  const badKinds = new Map<string, number>();
  for (const o of outcomes.filter((x) => x.item.kind === "bad"))
    badKinds.set(o.item.label, (badKinds.get(o.item.label) ?? 0) + 1);
  lines.push(`Bad inputs sent: ${[...badKinds].map(([k, n]) => `${k.replace(/^bad: /, "")}×${n}`).join(", ")}.`);
  lines.push(
    `Checks: 5xx ${server5xx.length} (from the worker ${server5xx.filter((o) => o.fromWorker).length}), wrong answers ${wrong.length}, transport errors ${transportErrors}, unanswered ${missing}.`,
  );
  for (const o of wrong.slice(0, 10)) lines.push(`  - ${o.item.label} ${o.item.method} ${o.item.path}: ${o.problem}`);

  let memoryOk = true;
  if (rssBaseline !== undefined) {
    const peak = Math.max(...rounds.flatMap((r) => r.rssDuring));
    const [a, b] = rounds.map((r) => r.rssAfterMb as number) as [number, number];
    const tolerance = Math.max(SETTLE_TOLERANCE_MB, a * 0.1);
    // Settled: the second round left the process no bigger than the first did (within tolerance),
    // and after the pause it is not above the peak seen under load (within the sampling grain).
    memoryOk = b - a <= tolerance && b - peak <= PEAK_SLACK_MB;
    lines.push(
      `Memory (workerd RSS): ${f1(rssBaseline)} MB after warm-up, peak ${f1(peak)} MB during load, ${f1(a)} MB after round 1 and ${f1(b)} MB after round 2 (each after ${SETTLE_PAUSE_MS / 1000} s idle): ${memoryOk ? "settled" : "DID NOT SETTLE"} (round 2 − round 1 = ${f1(b - a)} MB, allowed ${f1(tolerance)} MB; after − peak = ${f1(b - peak)} MB, allowed ${PEAK_SLACK_MB} MB).`,
    );
  } else {
    lines.push("Memory: not measured (external server).");
  }
  const ac = rounds.map((r) => r.autocannon);
  lines.push(
    `autocannon's own view per round: ${ac.map((r) => `${r.requests.average.toFixed(1)} req/s, latency p50 ${r.latency.p50} / p97.5 ${r.latency.p97_5} / p99 ${r.latency.p99} ms`).join("; ")}.`,
  );
  const pass = server5xx.length === 0 && wrong.length === 0 && transportErrors === 0 && missing === 0 && memoryOk;
  lines.push("", pass ? "**PASS**" : "**FAIL**");
  process.stdout.write(`${lines.join("\n")}\n`);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const raw = {
    opts,
    wallS,
    statusCounts: Object.fromEntries(byStatus),
    problems: wrong.map((o) => ({ label: o.item.label, path: o.item.path, status: o.status, problem: o.problem })),
    rounds: rounds.map((r) => ({
      wallS: r.wallS,
      rssDuringMb: r.rssDuring,
      rssAfterMb: r.rssAfterMb,
      autocannon: { requests: r.autocannon.requests, latency: r.autocannon.latency, errors: r.autocannon.errors },
    })),
    rssBaselineMb: rssBaseline,
    latenciesMs: outcomes.map((o) => ({ label: o.item.label, status: o.status, ms: Math.round(o.ms * 10) / 10 })),
    pass,
  };
  writeFileSync(join(RESULTS_DIR, "loadtest-latest.json"), JSON.stringify(raw, null, 1));
  return pass ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(2);
  },
);
