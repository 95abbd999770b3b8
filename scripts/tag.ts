/**
 * Bulk tagging from the command line:
 *
 *   npm run tag -- <folder | urls.txt | r2://prefix> [--model id] [--top-k n]
 *                  [--endpoint url] [--out file.ndjson|file.csv] [--concurrency n]
 *   npm run tag -- --job <id | last>
 *
 * A folder is uploaded to the images bucket under uploads/<run-id>/ and tagged
 * as one job; a URL list or an r2:// prefix is submitted as is. The job runs on
 * the server: this script only submits, follows and downloads, so Ctrl-C leaves
 * the job running and `--job` picks it up again.
 *
 * Exit codes: 0 job done (item failures are listed but do not fail the run),
 * 1 job failed or cancelled, API or connection error, 2 usage error, 130 Ctrl-C.
 */
import { createWriteStream, statSync } from "node:fs";
import { readFile, rename, rm } from "node:fs/promises";
import { isAbsolute, resolve } from "node:path";
import { ApiClient, ApiError, ConnectionError, type JobRequest, type JobStatus, TERMINAL_STATES } from "./tag/api";
import { type CliOptions, DEFAULT_ENDPOINT, parseCliArgs, USAGE, UsageError } from "./tag/args";
import { contentTypeFor, findImages, type LocalImage, newRunId, parseUrlList, uploadKeys } from "./tag/files";
import {
  finishedCount,
  formatDuration,
  formatProgress,
  formatUploadProgress,
  ProgressLine,
  RateMeter,
} from "./tag/progress";
import { csvHeader, type ResultLine, resultToCsv, sourceText } from "./tag/results";
import { readResume, resolveResume, writeResume } from "./tag/resume";

const POLL_MS = 1000;
/** How long following a job tolerates an unreachable server (e.g. `wrangler dev` reloading) before giving up. */
const UNREACHABLE_GRACE_MS = 60_000;
const MAX_LISTED_FAILURES = 20;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const err = (s: string) => process.stderr.write(`${s}\n`);

/**
 * `npm run` changes the working directory to the package root; INIT_CWD is
 * where the user actually typed the command, so relative paths and the default
 * output land where they expect.
 */
const baseDir = process.env.INIT_CWD ?? process.cwd();
const fromBase = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));

/** What a Ctrl-C has to report; filled in as the run progresses. */
const runState: { jobId?: string; submittedHere?: boolean; uploadPrefix?: string; progress?: ProgressLine } = {};

function onSigint(): void {
  runState.progress?.interrupt();
  if (runState.jobId) {
    err(`\njob ${runState.jobId} continues on the server; resume with: npm run tag -- --job ${runState.jobId}`);
  } else if (runState.uploadPrefix) {
    err(`\ninterrupted before submitting a job; files uploaded so far stay under ${runState.uploadPrefix}`);
  } else {
    err("\ninterrupted; nothing was submitted");
  }
  process.exit(130);
}

interface UploadOutcome {
  uploaded: number;
  refused: Array<{ rel: string; code: string; message: string }>;
}

/**
 * Uploads with at most `concurrency` requests in flight. A refusal of one file
 * (not an image, too big, corrupt) is that file's problem and the run goes on;
 * anything else (server down, 5xx after retries) stops the whole upload.
 */
async function uploadAll(
  client: ApiClient,
  images: LocalImage[],
  keys: Map<string, string>,
  concurrency: number,
  progress: ProgressLine,
): Promise<UploadOutcome> {
  const totalBytes = images.reduce((s, f) => s + f.bytes, 0);
  const meter = new RateMeter(5000);
  const out: UploadOutcome = { uploaded: 0, refused: [] };
  let next = 0;
  let files = 0;
  let bytes = 0;
  let fatal: unknown;
  const draw = () => {
    meter.add(Date.now(), files);
    progress.update(
      formatUploadProgress({
        files,
        totalFiles: images.length,
        bytes,
        totalBytes,
        failed: out.refused.length,
        rate: meter.rate(),
      }),
    );
  };
  draw();
  const ticker = setInterval(draw, 500);
  const worker = async () => {
    while (fatal === undefined && next < images.length) {
      const img = images[next++] as LocalImage;
      try {
        const body = await readFile(img.path);
        await client.putImage(
          keys.get(img.rel) as string,
          body,
          contentTypeFor(img.path) ?? "application/octet-stream",
        );
        out.uploaded++;
      } catch (e) {
        if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 429) {
          out.refused.push({ rel: img.rel, code: e.code, message: e.message });
        } else if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "EACCES") {
          // The file vanished or became unreadable since the walk: skip it like a refused one.
          out.refused.push({ rel: img.rel, code: "unreadable", message: (e as Error).message });
        } else {
          fatal ??= e;
        }
      }
      files++;
      bytes += img.bytes;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, images.length) }, worker));
  } finally {
    clearInterval(ticker);
  }
  if (fatal !== undefined) {
    progress.interrupt();
    throw fatal;
  }
  draw();
  progress.finish();
  return out;
}

/** Polls until the job is terminal, drawing the progress line; survives short server outages. */
async function follow(client: ApiClient, jobId: string, progress: ProgressLine): Promise<JobStatus> {
  const meter = new RateMeter();
  let unreachableSince: number | undefined;
  for (;;) {
    let job: JobStatus;
    try {
      job = await client.getJob(jobId);
      unreachableSince = undefined;
    } catch (e) {
      if (!(e instanceof ConnectionError)) throw e;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > UNREACHABLE_GRACE_MS) throw e;
      progress.update(`server unreachable (${e.causeCode ?? e.message}); retrying…`, true);
      await sleep(2000);
      continue;
    }
    meter.add(Date.now(), finishedCount(job.counts));
    const serverRate = typeof job.images_per_s === "number" ? job.images_per_s : null;
    if (TERMINAL_STATES.has(job.state)) {
      // The final line shows the server's whole-run rate, which is what the summary reports too.
      progress.update(
        formatProgress({ state: job.state, counts: job.counts, totalFinal: true, rate: serverRate ?? meter.rate() }),
        true,
      );
      progress.finish();
      return job;
    }
    progress.update(
      formatProgress({
        state: job.state,
        counts: job.counts,
        totalFinal: job.total_final,
        rate: meter.rate() ?? serverRate,
      }),
    );
    await sleep(POLL_MS);
  }
}

interface Downloaded {
  lines: number;
  failures: ResultLine[];
  statuses: Record<string, number>;
}

/**
 * Streams every result page into `<out>.partial`, then renames it: an
 * interrupted download never leaves a file that looks complete.
 */
async function download(client: ApiClient, job: JobStatus, out: string, format: "ndjson" | "csv"): Promise<Downloaded> {
  const partial = `${out}.partial`;
  const stream = createWriteStream(partial);
  const write = (s: string) =>
    new Promise<void>((res, rej) => {
      stream.write(s, (e) => (e ? rej(e) : res()));
    });
  const result: Downloaded = { lines: 0, failures: [], statuses: {} };
  const topK = job.top_k;
  try {
    if (format === "csv") await write(csvHeader(topK));
    for await (const page of client.resultPages(job.id)) {
      let chunk = "";
      for (const r of page) {
        chunk += format === "csv" ? resultToCsv(r, topK) : `${JSON.stringify(r)}\n`;
        result.lines++;
        result.statuses[r.status] = (result.statuses[r.status] ?? 0) + 1;
        if (r.status !== "done") result.failures.push(r);
      }
      await write(chunk);
    }
    await new Promise<void>((res, rej) => stream.end((e?: Error | null) => (e ? rej(e) : res())));
    await rename(partial, out);
  } catch (e) {
    stream.destroy();
    await rm(partial, { force: true });
    throw e;
  }
  return result;
}

function printSummary(job: JobStatus, dl: Downloaded, out: string, upload: UploadOutcome | undefined): void {
  const c = job.counts;
  const took = typeof job.elapsed_s === "number" ? ` in ${formatDuration(job.elapsed_s)}` : "";
  const rate = typeof job.images_per_s === "number" ? ` | ${job.images_per_s.toFixed(1)} img/s` : "";
  err(`job ${job.id} ${job.state}${took} (model ${job.model}, top ${job.top_k})`);
  err(`  ${c.total} items: ${c.done} done, ${c.failed} failed, ${c.skipped} skipped, ${c.cached} cached${rate}`);
  err(`  results: ${out} (${dl.lines} ${dl.lines === 1 ? "result" : "results"})`);
  if (job.error) {
    const e = job.error;
    err(`  job error: ${typeof e === "string" ? e : `${e.code}: ${e.message}`}`);
  }
  const finished = finishedCount(c);
  if (dl.lines !== finished)
    err(`  warning: the server reports ${finished} finished items but sent ${dl.lines} results`);
  if (dl.failures.length > 0) {
    err(`  ${dl.failures.length} item(s) not tagged:`);
    for (const f of dl.failures.slice(0, MAX_LISTED_FAILURES)) {
      const why = f.error ? `${f.error.code}: ${f.error.message}` : "(no error given)";
      err(`    #${f.item} ${f.status} ${sourceText(f.source)}: ${why}`);
    }
    if (dl.failures.length > MAX_LISTED_FAILURES)
      err(`    … and ${dl.failures.length - MAX_LISTED_FAILURES} more (see ${out})`);
  }
  if (upload && upload.refused.length > 0) {
    err(`  ${upload.refused.length} file(s) refused at upload (not in the job):`);
    for (const r of upload.refused.slice(0, MAX_LISTED_FAILURES)) err(`    ${r.rel}: ${r.code}: ${r.message}`);
    if (upload.refused.length > MAX_LISTED_FAILURES)
      err(`    … and ${upload.refused.length - MAX_LISTED_FAILURES} more`);
  }
}

/** Builds the job's source, uploading a folder first. Returns undefined upload info for non-folder sources. */
async function prepareSource(
  opts: CliOptions,
  client: ApiClient,
  progress: ProgressLine,
): Promise<{ source: JobRequest["source"]; upload?: UploadOutcome; count?: number }> {
  const src = opts.source;
  if (!src) throw new UsageError("no source");
  if (src.kind === "r2") return { source: { prefix: src.prefix } };
  if (src.kind === "urls-file") {
    let text: string;
    try {
      text = await readFile(fromBase(src.path), "utf8");
    } catch (e) {
      throw new UsageError(`cannot read ${src.path}: ${(e as Error).message}`);
    }
    const list = parseUrlList(text);
    if (list.invalid.length > 0) {
      const lines = list.invalid.map((l) => `  line ${l.line}: ${l.reason}: ${l.text.slice(0, 120)}`).join("\n");
      throw new UsageError(`${src.path} has lines that are not http(s) URLs:\n${lines}`);
    }
    if (list.urls.length === 0) throw new UsageError(`${src.path} holds no URLs`);
    return { source: { urls: list.urls }, count: list.urls.length };
  }
  const images = await findImages(fromBase(src.path));
  if (images.length === 0) throw new UsageError(`no .jpg/.jpeg/.png/.webp files under ${src.path}`);
  const runId = newRunId();
  const prefix = `uploads/${runId}/`;
  const keys = uploadKeys(
    runId,
    images.map((i) => i.rel),
  );
  runState.uploadPrefix = prefix;
  err(`uploading ${images.length} file(s) from ${src.path} to ${prefix}`);
  const upload = await uploadAll(client, images, keys, opts.concurrency, progress);
  if (upload.uploaded === 0) {
    throw new Error(
      `every file was refused at upload (first: ${upload.refused[0]?.code}: ${upload.refused[0]?.message})`,
    );
  }
  // A prefix, not a list of keys: the request stays small for any folder size, and the run id makes it exclusive.
  return { source: { prefix }, upload, count: upload.uploaded };
}

async function run(argv: string[]): Promise<number> {
  const opts = parseCliArgs(argv, (p) => {
    try {
      return statSync(fromBase(p)).isDirectory();
    } catch {
      return false;
    }
  });
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const progress = new ProgressLine(process.stderr);
  runState.progress = progress;

  let jobId: string;
  let endpoint: string;
  let out: string | undefined;
  let upload: UploadOutcome | undefined;
  let client: ApiClient;

  if (opts.job !== undefined) {
    const resolved = resolveResume(opts.job, opts, await readResume(baseDir), DEFAULT_ENDPOINT);
    ({ jobId, endpoint, out } = resolved);
    runState.jobId = jobId;
    client = new ApiClient(endpoint);
    err(`following job ${jobId} on ${endpoint}`);
  } else {
    endpoint = opts.endpoint ?? DEFAULT_ENDPOINT;
    client = new ApiClient(endpoint);
    // Fail fast with the "run npm run dev" hint before walking or uploading a large folder.
    await (await client.request("GET", "/healthz")).body?.cancel();
    const prepared = await prepareSource(opts, client, progress);
    upload = prepared.upload;
    const req: JobRequest = { source: prepared.source, top_k: opts.topK };
    if (opts.model !== undefined) req.model = opts.model;
    const created = await client.createJob(req);
    jobId = created.id;
    runState.jobId = jobId;
    runState.submittedHere = true;
    out = opts.out;
    const resumeOut = fromBase(out ?? `${jobId}.ndjson`);
    // Saved before following, so even a crash in the next line leaves a way back to the job.
    await writeResume(baseDir, {
      job_id: jobId,
      endpoint,
      out: resumeOut,
      format: resumeOut.toLowerCase().endsWith(".csv") ? "csv" : "ndjson",
      submitted_at: new Date().toISOString(),
    }).catch((e: Error) => err(`warning: could not save .edgetag/last-job.json: ${e.message}`));
    const what = prepared.count !== undefined ? `${prepared.count} image(s)` : `prefix ${prepared.source.prefix}`;
    err(`job ${jobId} submitted (${what}); status: ${endpoint}/v1/jobs/${jobId}`);
  }

  const outPath = fromBase(out ?? `${jobId}.ndjson`);
  const format = outPath.toLowerCase().endsWith(".csv") ? "csv" : "ndjson";
  const job = await follow(client, jobId, progress);
  const dl = await download(client, job, outPath, format);
  printSummary(job, dl, outPath, upload);
  return job.state === "done" ? 0 : 1;
}

function explain(e: unknown): number {
  if (e instanceof UsageError) {
    err(`error: ${e.message}\n\n${USAGE}`);
    return 2;
  }
  if (e instanceof ApiError) {
    err(`error: ${e.code}: ${e.message} (HTTP ${e.status})`);
    return 1;
  }
  if (e instanceof ConnectionError) {
    const local = /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(e.endpoint);
    const hint = local ? "is the dev server running? start it with: npm run dev" : "check --endpoint";
    err(`error: ${e.message}; ${hint}`);
    return 1;
  }
  err(`error: ${e instanceof Error ? e.message : String(e)}`);
  return 1;
}

process.on("SIGINT", onSigint);
run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    runState.progress?.interrupt();
    const code = explain(e);
    if (runState.jobId && runState.submittedHere) {
      err(`job ${runState.jobId} may still be running; resume with: npm run tag -- --job ${runState.jobId}`);
    }
    process.exit(code);
  },
);
