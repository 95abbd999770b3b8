import { killGroup, stopGroup } from "./process-group";
/**
 * End-to-end check of bulk tagging, the way a user runs it:
 *
 *   npm run e2e:tag
 *
 * 1. starts `npm run dev` (its own process group, 127.0.0.1:8787) and waits for /healthz?deep=1;
 * 2. generates 200 varied PNGs (scripts/gen-images.ts) in a temp folder;
 * 3. runs `npm run tag -- <folder> --out results.ndjson`, then again with
 *    `--model densenet-121 --out results.csv`;
 * 4. checks each output: exactly one line/row per image, all done, and every
 *    result's sha256 equals the sha256 of the local file it came from (so
 *    distinct files have distinct hashes and no result is attributed to the
 *    wrong file); prints images/s per model from the final job status;
 * 5. stops the server (whole process group) however the script ends.
 *
 * Everything is bounded: the whole run fails after 10 minutes.
 * E2E_REUSE_SERVER=1 uses a server already listening on 8787 instead of starting one.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { generateImages } from "./gen-images";
import { localApiKey } from "./keys/dev-key";
import type { JobStatus } from "./tag/api";
import { parseCsv, type ResultLine } from "./tag/results";

const REPO = resolve(import.meta.dirname, "..");
const BASE = "http://127.0.0.1:8787";
const IMAGES = 200;
const TOTAL_BUDGET_MS = 10 * 60_000;
const deadline = Date.now() + TOTAL_BUDGET_MS;
const remaining = () => Math.max(0, deadline - Date.now());

const log = (s: string) => process.stderr.write(`[e2e] ${s}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let server: ChildProcess | undefined;
/** The running `npm run tag`, in its own process group: killed with the server when this script ends early. */
let tagChild: ChildProcess | undefined;
let devLog = "";
let tmp = "";

/** Kills the dev server's whole group (npm → sh → wrangler → workerd), TERM first, KILL if it lingers. */
async function stopServer(): Promise<void> {
  const pid = server?.pid;
  if (!pid || server?.exitCode !== null || server?.signalCode !== null) {
    if (pid) killGroup(pid, "SIGKILL"); // the leader is gone but workerd may not be
    return;
  }
  await stopGroup(pid, 200);
}

// Last resort for paths that skip the async cleanup (process.exit elsewhere): synchronous KILL of the group.
process.on("exit", () => {
  if (tagChild?.pid && tagChild.exitCode === null) killGroup(tagChild.pid, "SIGKILL");
  if (server?.pid) killGroup(server.pid, "SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping the tag CLI and the server`);
    if (tagChild?.pid && tagChild.exitCode === null) killGroup(tagChild.pid, "SIGTERM");
    void stopServer().finally(() => process.exit(130));
  });
}

/** The end of the dev server log, without the CLI's own polling and upload lines (they drown everything else). */
function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => !/\] (GET \/v1\/jobs\/|PUT \/v1\/images\/)/.test(l))
      .slice(-lines)
      .join("\n");
  } catch {
    return "(no log)";
  }
}

async function healthy(path: string): Promise<boolean> {
  try {
    const res = await fetch(`${BASE}${path}`, {
      headers: { authorization: `Bearer ${localApiKey()}` },
      signal: AbortSignal.timeout(3000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

async function startServer(): Promise<void> {
  if (process.env.E2E_REUSE_SERVER === "1") {
    if (!(await healthy("/healthz"))) throw new Error(`E2E_REUSE_SERVER=1 but nothing answers on ${BASE}`);
    log(`reusing the server on ${BASE}`);
    return;
  }
  if (await healthy("/healthz")) {
    throw new Error(`something already answers on ${BASE}; stop it, or set E2E_REUSE_SERVER=1 to test against it`);
  }
  devLog = join(tmp, "dev.log");
  const fd = openSync(devLog, "a");
  log(`starting npm run dev (log: ${devLog})`);
  server = spawn("npm", ["run", "dev"], {
    cwd: REPO,
    // Own process group, so stopServer() reaches workerd too, and Ctrl-C in this terminal is ours to handle.
    detached: true,
    stdio: ["ignore", fd, fd],
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "1" },
  });
  closeSync(fd);
  const t0 = Date.now();
  // deep=1: the models must be in local R2 too, not just the worker up.
  while (!(await healthy("/healthz?deep=1"))) {
    if (server.exitCode !== null || server.signalCode !== null) {
      throw new Error(`npm run dev exited (${server.exitCode ?? server.signalCode}):\n${tail(devLog)}`);
    }
    if (remaining() === 0) throw new Error(`server not healthy in time:\n${tail(devLog)}`);
    await sleep(500);
  }
  log(`server healthy after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Runs `npm run tag -- ...` from the temp dir (INIT_CWD, so .edgetag/ lands there, not in the repo). */
async function runTag(args: string[]): Promise<void> {
  log(`npm run tag -- ${args.join(" ")}`);
  const child = spawn("npm", ["--prefix", REPO, "run", "--silent", "tag", "--", ...args], {
    cwd: tmp,
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
  tagChild = child;
  const timer = setTimeout(() => {
    log("time budget exhausted: stopping the tag CLI");
    if (child.pid) killGroup(child.pid, "SIGKILL");
  }, remaining());
  const code = await new Promise<number | string>((r) => child.on("exit", (c, s) => r(c ?? s ?? "?")));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`npm run tag exited with ${code}`);
}

async function lastJob(): Promise<JobStatus> {
  const saved = JSON.parse(await readFile(join(tmp, ".edgetag", "last-job.json"), "utf8")) as { job_id: string };
  const res = await fetch(`${BASE}/v1/jobs/${saved.job_id}`, {
    headers: { authorization: `Bearer ${localApiKey()}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET /v1/jobs/${saved.job_id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as JobStatus;
}

interface Row {
  item: number;
  key: string;
  status: string;
  sha256: string;
  labels: number;
}

/** The checks both outputs must pass; `fileSha` maps a relative path to the local file's sha256. */
function verify(name: string, rows: Row[], fileSha: Map<string, string>, topK: number): string[] {
  const problems: string[] = [];
  if (rows.length !== fileSha.size) problems.push(`${name}: ${rows.length} results for ${fileSha.size} images`);
  const items = new Set(rows.map((r) => r.item));
  if (items.size !== rows.length) problems.push(`${name}: duplicate item numbers`);
  const seenRel = new Set<string>();
  const runPrefix = /^uploads\/[A-Za-z0-9TZ]+-[0-9a-f]+\//;
  for (const r of rows) {
    const where = `${name} item ${r.item} (${r.key})`;
    if (r.status !== "done") problems.push(`${where}: status ${r.status}`);
    if (r.labels !== topK) problems.push(`${where}: ${r.labels} labels, expected ${topK}`);
    const rel = r.key.replace(runPrefix, "");
    const want = fileSha.get(rel);
    if (want === undefined) problems.push(`${where}: no local file ${rel}`);
    else if (r.sha256 !== want) problems.push(`${where}: sha256 ${r.sha256} but the file is ${want}`);
    if (seenRel.has(rel)) problems.push(`${where}: file tagged twice`);
    seenRel.add(rel);
  }
  const distinctResults = new Set(rows.map((r) => r.sha256)).size;
  const distinctFiles = new Set(fileSha.values()).size;
  if (distinctResults !== distinctFiles) {
    problems.push(`${name}: ${distinctResults} distinct sha256 in results, ${distinctFiles} distinct files`);
  }
  return problems;
}

function ndjsonRows(text: string): Row[] {
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      const r = JSON.parse(l) as ResultLine;
      return {
        item: r.item,
        key: (r.source as { key?: string }).key ?? "",
        status: r.status,
        sha256: r.sha256 ?? "",
        labels: r.predictions?.length ?? 0,
      };
    });
}

function csvRows(text: string, topK: number): Row[] {
  const [header, ...rows] = parseCsv(text);
  const want = ["item", "source", "status", "sha256", "cached"];
  for (let i = 1; i <= topK; i++) want.push(`label_${i}`, `score_${i}`);
  want.push("error");
  if (JSON.stringify(header) !== JSON.stringify(want)) throw new Error(`CSV header is ${JSON.stringify(header)}`);
  return rows.map((f) => {
    if (f.length !== want.length) throw new Error(`CSV row with ${f.length} fields: ${JSON.stringify(f)}`);
    let labels = 0;
    for (let i = 0; i < topK; i++) {
      const label = f[5 + 2 * i] ?? "";
      const score = Number(f[6 + 2 * i]);
      if (label !== "" && Number.isFinite(score) && score >= 0 && score <= 1) labels++;
    }
    return { item: Number(f[0]), key: f[1] ?? "", status: f[2] ?? "", sha256: f[3] ?? "", labels };
  });
}

async function main(): Promise<void> {
  tmp = await mkdtemp(join(tmpdir(), "edgetag-e2e-"));
  const watchdog = setTimeout(() => {
    log(`FAIL: over the ${TOTAL_BUDGET_MS / 60_000} minute budget`);
    explainFromDevLog();
    void stopServer().finally(() => process.exit(1));
  }, TOTAL_BUDGET_MS);
  watchdog.unref();
  let ok = false;
  try {
    await startServer();

    const folder = join(tmp, "images");
    // A fresh seed per run: fixed images would be KV cache hits from the second run on, and the
    // images/s below would measure the cache, not inference. E2E_SEED reproduces a run.
    const seed = Number(process.env.E2E_SEED ?? Math.floor(Math.random() * 1e9));
    const imgs = generateImages(folder, IMAGES, seed);
    const fileSha = new Map(imgs.map((i) => [i.rel, createHash("sha256").update(i.png).digest("hex")]));
    log(`generated ${imgs.length} PNGs in ${folder} (E2E_SEED=${seed})`);

    const problems: string[] = [];
    const rates: string[] = [];

    await runTag([folder, "--out", join(tmp, "results.ndjson")]);
    const job1 = await lastJob();
    problems.push(
      ...verify("ndjson", ndjsonRows(await readFile(join(tmp, "results.ndjson"), "utf8")), fileSha, job1.top_k),
    );
    rates.push(describe(job1));

    await runTag([folder, "--model", "densenet-121", "--out", join(tmp, "results.csv")]);
    const job2 = await lastJob();
    if (job2.model !== "densenet-121") problems.push(`csv: job ran ${job2.model}, not densenet-121`);
    problems.push(
      ...verify("csv", csvRows(await readFile(join(tmp, "results.csv"), "utf8"), job2.top_k), fileSha, job2.top_k),
    );
    rates.push(describe(job2));

    // The r2:// path over the first run's uploads: same files, so every sha256 must match again,
    // and the KV cache should answer (no inference), which makes this step cheap.
    const firstKey = ndjsonRows(await readFile(join(tmp, "results.ndjson"), "utf8"))[0]?.key ?? "";
    const runPrefix = firstKey.split("/").slice(0, 2).join("/");
    await runTag([`r2://${runPrefix}/`, "--out", join(tmp, "results-r2.ndjson")]);
    const job3 = await lastJob();
    problems.push(
      ...verify("r2", ndjsonRows(await readFile(join(tmp, "results-r2.ndjson"), "utf8")), fileSha, job3.top_k),
    );
    rates.push(`${describe(job3)} [r2://${runPrefix}/]`);

    for (const r of rates) log(r);
    if (problems.length > 0) {
      for (const p of problems.slice(0, 30)) log(`FAIL: ${p}`);
      if (problems.length > 30) log(`… and ${problems.length - 30} more`);
      throw new Error(`${problems.length} check(s) failed (outputs kept in ${tmp})`);
    }
    ok = true;
    log(
      `PASS: ${IMAGES} images tagged (mobilenet-v2 → NDJSON, densenet-121 → CSV, r2:// prefix → NDJSON); every output complete, all done, sha256 matches every file`,
    );
  } finally {
    clearTimeout(watchdog);
    await stopServer();
    if (server) log("server stopped");
    // Keep the evidence when something failed; clean up after a pass.
    if (ok) await rm(tmp, { recursive: true, force: true });
  }
}

function describe(job: JobStatus): string {
  const rate = typeof job.images_per_s === "number" ? job.images_per_s.toFixed(1) : "?";
  const took = typeof job.elapsed_s === "number" ? `${job.elapsed_s.toFixed(1)} s` : "?";
  return `${job.model}: ${job.counts.total} images, ${rate} img/s (job ${job.id}, ${took}, ${job.counts.cached} cached)`;
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`FAIL: ${e instanceof Error ? e.message : String(e)}`);
    explainFromDevLog();
    process.exit(1);
  },
);

/**
 * `wrangler dev` rebuilds and reloads the worker whenever src/ changes, and a
 * reload drops in-flight local queue batches, so a job can stall for reasons
 * that have nothing to do with the code under test. Say so when it happened.
 */
function explainFromDevLog(): void {
  if (!devLog) return;
  let text = "";
  try {
    text = readFileSync(devLog, "utf8");
  } catch {
    return;
  }
  const reloads = text.split("Reloading local server").length - 1;
  if (reloads > 0)
    log(`note: wrangler reloaded the worker ${reloads} time(s) during the run (files under src/ changed)`);
  log(`last lines of ${devLog}:\n${tail(devLog, 15)}`);
}
