/**
 * The pure parts of `npm run tag` (scripts/tag.ts): argument parsing, progress
 * formatting, CSV escaping, resume-file handling, and the results pager, which
 * runs against a real node:http server on 127.0.0.1 speaking the paging
 * contract (not a stubbed fetch), so headers, bodies and retries are real.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { crc32, encodePng, generateImage } from "../../scripts/gen-images";
import { localApiKey } from "../../scripts/keys/dev-key";
import { ApiClient, ApiError, ConnectionError } from "../../scripts/tag/api";
import { classifySource, DEFAULT_CONCURRENCY, parseCliArgs, UsageError } from "../../scripts/tag/args";
import { parseUrlList, uploadKeys } from "../../scripts/tag/files";
import {
  formatDuration,
  formatProgress,
  formatUploadProgress,
  ProgressLine,
  RateMeter,
} from "../../scripts/tag/progress";
import { csvField, csvHeader, parseCsv, type ResultLine, resultToCsv } from "../../scripts/tag/results";
import { readResume, resolveResume, resumePath, writeResume } from "../../scripts/tag/resume";

const noDirs = () => false;
const dirsNamed =
  (...names: string[]) =>
  (p: string) =>
    names.includes(p);

describe("tag CLI: arguments", () => {
  it("classifies the source: folder, URL list, r2:// prefix", () => {
    expect(parseCliArgs(["photos"], dirsNamed("photos")).source).toEqual({ kind: "folder", path: "photos" });
    expect(parseCliArgs(["urls.txt"], noDirs).source).toEqual({ kind: "urls-file", path: "urls.txt" });
    expect(parseCliArgs(["r2://some/prefix"], noDirs).source).toEqual({ kind: "r2", prefix: "some/prefix" });
    expect(classifySource("r2:///lead/slash", noDirs)).toEqual({ kind: "r2", prefix: "lead/slash" });
    expect(() => classifySource("r2://bad prefix", noDirs)).toThrow(UsageError);
  });

  it("applies defaults and reads every option", () => {
    const d = parseCliArgs(["x"], noDirs);
    expect(d).toMatchObject({ topK: 5, concurrency: DEFAULT_CONCURRENCY, format: "ndjson", job: undefined });
    expect(d.model).toBeUndefined();
    expect(d.endpoint).toBeUndefined();
    expect(d.out).toBeUndefined();
    const o = parseCliArgs(
      [
        "dir",
        "--model",
        "densenet-121",
        "--top-k",
        "20",
        "--endpoint",
        "http://127.0.0.1:9000/",
        "--out",
        "R.CSV",
        "--concurrency=8",
      ],
      dirsNamed("dir"),
    );
    expect(o).toMatchObject({
      model: "densenet-121",
      topK: 20,
      endpoint: "http://127.0.0.1:9000",
      out: "R.CSV",
      format: "csv",
      concurrency: 8,
    });
    expect(parseCliArgs(["x", "--out", "r.ndjson"], noDirs).format).toBe("ndjson");
  });

  it("--job follows without a source", () => {
    const o = parseCliArgs(["--job", "j_123"], noDirs);
    expect(o.job).toBe("j_123");
    expect(o.source).toBeUndefined();
    expect(parseCliArgs(["--job", "last"], noDirs).job).toBe("last");
  });

  it.each([
    [[], /missing the source/],
    [["a", "b"], /one source/],
    [["a", "--job", "j1"], /not both/],
    [["a", "--top-k", "0"], /--top-k/],
    [["a", "--top-k", "21"], /--top-k/],
    [["a", "--top-k", "2.5"], /--top-k/],
    [["a", "--top-k", "1e1"], /--top-k/],
    [["a", "--concurrency", "0"], /--concurrency/],
    [["a", "--endpoint", "ftp://x"], /http/],
    [["a", "--endpoint", "not a url"], /not a URL/],
    [["a", "--model", "../etc"], /--model/],
    [["a", "--bogus"], /bogus/],
    [["a", "--out", ""], /--out/],
  ])("rejects %j", (argv, message) => {
    expect(() => parseCliArgs(argv, noDirs)).toThrow(UsageError);
    expect(() => parseCliArgs(argv, noDirs)).toThrow(message);
  });

  it("--help needs nothing else", () => {
    expect(parseCliArgs(["-h"], noDirs).help).toBe(true);
  });
});

describe("tag CLI: inputs", () => {
  it("reads a URL list, skipping blanks and comments, reporting bad lines by number", () => {
    const list = parseUrlList(
      "# my photos\n\nhttps://a.example/1.jpg\r\n  http://b.example/2.png  \n#https://skipped\nftp://c/3.jpg\nnope\n",
    );
    expect(list.urls).toEqual(["https://a.example/1.jpg", "http://b.example/2.png"]);
    expect(list.invalid.map((l) => l.line)).toEqual([6, 7]);
  });

  it("maps relative paths to unique, valid upload keys", () => {
    const rels = ["a.png", "sub/b.jpg", "with space.png", "with_space.png", "ünï/çødé.webp", `${"x".repeat(600)}.png`];
    const keys = uploadKeys("RUN", rels);
    expect(keys.get("a.png")).toBe("uploads/RUN/a.png");
    expect(keys.get("sub/b.jpg")).toBe("uploads/RUN/sub/b.jpg");
    const all = [...keys.values()];
    expect(new Set(all).size).toBe(rels.length);
    for (const k of all) {
      expect(k).toMatch(/^uploads\/RUN\/[A-Za-z0-9/._-]+$/);
      expect(k.length).toBeLessThanOrEqual(512);
    }
    // Sanitized keys keep their extension, so the server still sees an image name.
    expect(keys.get("ünï/çødé.webp")).toMatch(/\.webp$/);
    // Deterministic: the same input gives the same keys.
    expect(uploadKeys("RUN", rels)).toEqual(keys);
  });
});

describe("tag CLI: progress line", () => {
  const counts = { total: 200, pending: 77, done: 120, failed: 3, skipped: 0, cached: 40 };

  it("formats the bar, counts, rate and ETA", () => {
    const line = formatProgress({ state: "running", counts, totalFinal: true, rate: 12.3 }, 10);
    // 123 of 200 finished, 77 left at 12.3/s → 6.26 s, rounded up.
    expect(line).toBe("[######....] 123/200 done 3 failed 40 cached | 12.3 img/s | ETA 7s");
  });

  it("has no ETA without a rate or while the total is still growing", () => {
    expect(formatProgress({ state: "running", counts, totalFinal: true, rate: null })).toContain("-- img/s | ETA ?");
    expect(formatProgress({ state: "running", counts, totalFinal: false, rate: 5 })).toMatch(/123\/200\+ done.*ETA \?/);
    const queued = formatProgress({
      state: "queued",
      counts: { ...counts, done: 0, failed: 0 },
      totalFinal: true,
      rate: 0,
    });
    expect(queued).toMatch(/^\[\.{20}\] 0\/200 done/);
    expect(queued).toMatch(/\| queued$/);
  });

  it("is full and ETA 0s when everything finished, and shows skipped items", () => {
    const line = formatProgress(
      {
        state: "done",
        counts: { total: 4, pending: 0, done: 2, failed: 1, skipped: 1, cached: 0 },
        totalFinal: true,
        rate: 2,
      },
      4,
    );
    expect(line).toBe("[####] 4/4 done 1 failed 0 cached 1 skipped | 2.0 img/s | ETA 0s | done");
  });

  it("survives an empty job", () => {
    const zero = { total: 0, pending: 0, done: 0, failed: 0, skipped: 0, cached: 0 };
    expect(formatProgress({ state: "done", counts: zero, totalFinal: true, rate: null }, 4)).toMatch(
      /^\[\.\.\.\.\] 0\/0/,
    );
  });

  it("formats durations", () => {
    expect(formatDuration(0)).toBe("0s");
    expect(formatDuration(5.2)).toBe("6s");
    expect(formatDuration(65)).toBe("1m05s");
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe("3h07m");
    expect(formatDuration(null)).toBe("?");
    expect(formatDuration(Number.POSITIVE_INFINITY)).toBe("?");
  });

  it("formats upload progress", () => {
    const s = formatUploadProgress(
      { files: 50, totalFiles: 200, bytes: 3.2e6, totalBytes: 12.8e6, failed: 1, rate: 10 },
      8,
    );
    expect(s).toBe("upload [##......] 50/200 files (1 refused) | 3.2/12.8 MB | 10.0 files/s | ETA 15s");
  });

  it("measures the rate over a sliding window", () => {
    const m = new RateMeter(10_000);
    m.add(0, 0);
    expect(m.rate()).toBeNull();
    m.add(1000, 10);
    expect(m.rate()).toBe(10);
    // A slow start drops out of the window: 0..20 s at 1/s, then 10/s.
    const w = new RateMeter(10_000);
    for (let t = 0; t <= 20; t++) w.add(t * 1000, t);
    for (let t = 21; t <= 40; t++) w.add(t * 1000, 20 + (t - 20) * 10);
    expect(w.rate()).toBeCloseTo(10, 5);
  });

  it("redraws one line on a TTY and throttles lines elsewhere", () => {
    const tty: string[] = [];
    const p = new ProgressLine({ isTTY: true, columns: 20, write: (s) => tty.push(s) });
    p.update("short");
    p.update("a line far longer than twenty columns");
    p.finish();
    expect(tty[0]).toBe("\r\x1b[2Kshort");
    expect(tty[1]).toBe("\r\x1b[2Ka line far longer …");
    expect(tty[2]).toBe("\n");

    let now = 0;
    const log: string[] = [];
    const q = new ProgressLine({ isTTY: false, write: (s) => log.push(s) }, 2000, () => now);
    q.update("t0");
    now = 500;
    q.update("t0.5");
    now = 2100;
    q.update("t2.1");
    now = 2200;
    q.update("final");
    q.finish();
    expect(log).toEqual(["t0\n", "t2.1\n", "final\n"]);
  });
});

describe("tag CLI: CSV", () => {
  it("quotes commas, quotes and newlines, and nothing else", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField("crane, bird")).toBe('"crane, bird"');
    expect(csvField('say "cheese"')).toBe('"say ""cheese"""');
    expect(csvField("two\nlines")).toBe('"two\nlines"');
    expect(csvField("cr\rhere")).toBe('"cr\rhere"');
    expect(csvField(undefined)).toBe("");
    expect(csvField(false)).toBe("false");
    expect(csvField(0.5)).toBe("0.5");
  });

  it("writes the documented columns and reads back field for field", () => {
    expect(csvHeader(2)).toBe("item,source,status,sha256,cached,label_1,score_1,label_2,score_2,error\r\n");
    const done: ResultLine = {
      item: 1,
      source: { key: "uploads/r/a.png" },
      status: "done",
      sha256: "ab".repeat(32),
      cached: true,
      predictions: [
        { label: "tench, Tinca tinca", index: 0, score: 0.125 },
        { label: 'the "odd"\nlabel', index: 1, score: 1e-7 },
      ],
    };
    const failed: ResultLine = {
      item: 2,
      source: { url: "https://x.example/a,b.jpg?q=1" },
      status: "failed",
      error: { code: "invalid_image", message: 'bad CRC, "IDAT"' },
    };
    const text = csvHeader(2) + resultToCsv(done, 2) + resultToCsv(failed, 2);
    const rows = parseCsv(text);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.length === 10)).toBe(true);
    expect(rows[1]).toEqual([
      "1",
      "uploads/r/a.png",
      "done",
      "ab".repeat(32),
      "true",
      "tench, Tinca tinca",
      "0.125",
      'the "odd"\nlabel',
      "1e-7",
      "",
    ]);
    expect(rows[2]).toEqual([
      "2",
      "https://x.example/a,b.jpg?q=1",
      "failed",
      "",
      "",
      "",
      "",
      "",
      "",
      'invalid_image: bad CRC, "IDAT"',
    ]);
  });

  it("pads items with fewer predictions than top_k to the same width", () => {
    const r: ResultLine = {
      item: 3,
      source: { key: "k" },
      status: "done",
      predictions: [{ label: "a", index: 0, score: 1 }],
    };
    expect(parseCsv(resultToCsv(r, 5))[0]).toHaveLength(5 + 2 * 5 + 1);
  });
});

describe("tag CLI: resume file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "edgetag-resume-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trips and reports a missing file as null", async () => {
    expect(await readResume(dir)).toBeNull();
    const info = {
      job_id: "j1",
      endpoint: "http://127.0.0.1:8787",
      out: "/tmp/j1.ndjson",
      format: "ndjson" as const,
      submitted_at: "2026-01-01T00:00:00.000Z",
    };
    const path = await writeResume(dir, info);
    expect(path).toBe(resumePath(dir));
    expect(await readResume(dir)).toEqual(info);
  });

  it("refuses a corrupt file with its path in the message", async () => {
    await writeFile(resumePath(dir), "{not json");
    await expect(readResume(dir)).rejects.toThrow(/last-job\.json is not valid JSON/);
    await writeFile(resumePath(dir), JSON.stringify({ job_id: 1 }));
    await expect(readResume(dir)).rejects.toThrow(/lacks/);
  });

  it("reuses the saved endpoint and output only for the same job; flags win", () => {
    const saved = { job_id: "j1", endpoint: "http://h:1", out: "/o/j1.csv", format: "csv" as const, submitted_at: "" };
    const none = { endpoint: undefined, out: undefined };
    expect(resolveResume("last", none, saved, "http://d")).toEqual({
      jobId: "j1",
      endpoint: "http://h:1",
      out: "/o/j1.csv",
    });
    expect(resolveResume("j1", none, saved, "http://d")).toEqual({
      jobId: "j1",
      endpoint: "http://h:1",
      out: "/o/j1.csv",
    });
    expect(resolveResume("j2", none, saved, "http://d")).toEqual({ jobId: "j2", endpoint: "http://d", out: undefined });
    expect(resolveResume("j1", { endpoint: "http://e", out: "x.ndjson" }, saved, "http://d")).toEqual({
      jobId: "j1",
      endpoint: "http://e",
      out: "x.ndjson",
    });
    expect(() => resolveResume("last", none, null, "http://d")).toThrow(/no saved job/);
  });
});

/**
 * A real HTTP server implementing the results paging contract over `items`.
 * Two cursor conventions: "item" (the cursor is the last item index, results
 * in item order) and "seq" (what src/jobs/tracker.ts does: results in the order
 * items finished, the cursor a finish sequence number unrelated to item indices).
 * Knobs make it misbehave the ways a server can: no x-next-after header,
 * transient 503s, a cursor that is ignored.
 */
function pagingServer(items: ResultLine[], finishOrder: number[]) {
  const state = {
    requests: [] as string[],
    authorization: [] as Array<string | undefined>,
    omitHeader: false,
    fail503: 0,
    stuck: false,
    mode: "item" as "item" | "seq",
  };
  const byItem = new Map(items.map((i) => [i.item, i]));
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://x");
    state.requests.push(`${req.method} ${url.pathname}${url.search}`);
    state.authorization.push(req.headers.authorization);
    const m = /^\/v1\/jobs\/([^/]+)\/results$/.exec(url.pathname);
    if (m?.[1] !== "job1") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "not_found", message: `no job ${m?.[1] ?? ""}` } }));
      return;
    }
    if (state.fail503 > 0) {
      state.fail503--;
      res.writeHead(503, { "content-type": "application/json", "retry-after": "0" });
      res.end(JSON.stringify({ error: { code: "unavailable", message: "try again" } }));
      return;
    }
    const after = state.stuck ? 0 : Number(url.searchParams.get("after") ?? "0");
    const limit = Number(url.searchParams.get("limit") ?? "100");
    let page: ResultLine[];
    let next: number;
    if (state.mode === "item") {
      page = items.filter((i) => i.item > after).slice(0, limit);
      next = page.length ? (page[page.length - 1] as ResultLine).item : after;
    } else {
      // seq n (1-based) is the n-th item to finish.
      const seqs = finishOrder
        .map((_, i) => i + 1)
        .filter((q) => q > after)
        .slice(0, limit);
      page = seqs.map((q) => byItem.get(finishOrder[q - 1] as number) as ResultLine);
      next = seqs.length ? (seqs[seqs.length - 1] as number) : after;
    }
    const headers: Record<string, string> = { "content-type": "application/x-ndjson" };
    if (!state.omitHeader) headers["x-next-after"] = String(next);
    res.writeHead(200, headers);
    res.end(page.map((p) => `${JSON.stringify(p)}\n`).join(""));
  };
  return { state, handler };
}

describe("tag CLI: results pager against a real HTTP server", () => {
  // Gaps in the numbering (7 and 8 missing) must not confuse the cursor.
  const items: ResultLine[] = [...Array.from({ length: 6 }, (_, i) => i + 1), 9, 10, 11].map((n) => ({
    item: n,
    source: { key: `k/${n}.png` },
    status: n % 5 === 0 ? "failed" : "done",
  }));
  const finishOrder = [3, 1, 2, 6, 5, 4, 11, 9, 10];
  const fake = pagingServer(items, finishOrder);
  let server: Server;
  let client: ApiClient;

  beforeAll(async () => {
    server = createServer(fake.handler);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    client = new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 3, 10);
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });
  afterEach(() => {
    Object.assign(fake.state, {
      requests: [],
      authorization: [],
      omitHeader: false,
      fail503: 0,
      stuck: false,
      mode: "item",
    });
  });

  const collect = async (limit: number) => {
    const pages: number[][] = [];
    for await (const page of client.resultPages("job1", limit)) pages.push(page.map((p) => p.item));
    return pages;
  };

  it("sends the API key as a Bearer token on every request (the dev key unless EDGETAG_API_KEY is set)", async () => {
    await collect(4);
    expect(fake.state.authorization.length).toBeGreaterThan(1);
    expect(new Set(fake.state.authorization)).toEqual(new Set([`Bearer ${localApiKey()}`]));
    const keyed = new ApiClient(client.endpoint, 0, 10, "et_explicit_key_for_this_client");
    for await (const _ of keyed.resultPages("job1", 100)) break;
    expect(fake.state.authorization.at(-1)).toBe("Bearer et_explicit_key_for_this_client");
  });

  it("pages with x-next-after until an empty page", async () => {
    expect(await collect(4)).toEqual([[1, 2, 3, 4], [5, 6, 9, 10], [11]]);
    expect(fake.state.requests).toEqual([
      "GET /v1/jobs/job1/results?limit=4",
      "GET /v1/jobs/job1/results?limit=4&after=4",
      "GET /v1/jobs/job1/results?limit=4&after=10",
      "GET /v1/jobs/job1/results?limit=4&after=11",
    ]);
  });

  it("treats x-next-after as an opaque cursor: finish-order paging loses nothing", async () => {
    fake.state.mode = "seq";
    expect(await collect(4)).toEqual([[3, 1, 2, 6], [5, 4, 11, 9], [10]]);
    // The cursor is the finish sequence (4, 8, 9), not the last item index (6, 9, 10).
    expect(fake.state.requests.slice(1)).toEqual([
      "GET /v1/jobs/job1/results?limit=4&after=4",
      "GET /v1/jobs/job1/results?limit=4&after=8",
      "GET /v1/jobs/job1/results?limit=4&after=9",
    ]);
  });

  it("falls back to the last item when the header is missing", async () => {
    fake.state.omitHeader = true;
    expect((await collect(5)).flat()).toEqual([1, 2, 3, 4, 5, 6, 9, 10, 11]);
  });

  it("retries transient 503s", async () => {
    fake.state.fail503 = 2;
    expect((await collect(1000)).flat()).toHaveLength(9);
    expect(fake.state.requests).toHaveLength(4);
  });

  it("stops instead of looping when the server ignores the cursor", async () => {
    fake.state.stuck = true;
    const pages = await collect(3);
    // The first page is fine; the repeat of items 1..3 is dropped and ends the download.
    expect(pages).toEqual([[1, 2, 3]]);
  });

  it("turns an API error into ApiError with code and message", async () => {
    const err = await (async () => {
      for await (const _ of client.resultPages("nope")) {
        // unreachable
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 404, code: "not_found", message: "no job nope" });
  });

  it("turns connection refused into ConnectionError", async () => {
    // Bind and close a port so nothing listens on it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await new ApiClient(`http://127.0.0.1:${port}`).getJob("x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect((err as ConnectionError).causeCode).toBe("ECONNREFUSED");
  });
});

describe("gen-images", () => {
  it("computes the standard CRC-32", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("encodes PNGs that the project's PNG decoder reads back exactly", async () => {
    const { decode } = await import("fast-png");
    const px = new Uint8Array([0, 10, 20, 255, 128, 1, 7, 7, 7, 200, 100, 50]);
    const img = decode(encodePng(2, 2, "rgb", px));
    expect([img.width, img.height, img.channels, img.depth]).toEqual([2, 2, 3, 8]);
    expect(Array.from(img.data)).toEqual(Array.from(px));
    for (const i of [0, 3, 4, 9]) {
      const g = generateImage(i);
      const d = decode(g.png);
      expect([d.width, d.height]).toEqual([g.width, g.height]);
      expect(d.channels).toBe({ gray: 1, rgb: 3, rgba: 4 }[g.color]);
      expect(g.width).toBeGreaterThanOrEqual(64);
      expect(g.width).toBeLessThanOrEqual(640);
    }
    // Deterministic for a seed, distinct across indices.
    expect(generateImage(5).png.equals(generateImage(5).png)).toBe(true);
    expect(generateImage(5).png.equals(generateImage(6).png)).toBe(false);
  });
});

describe("tag CLI: resume file location", () => {
  it("writes where it says it does", async () => {
    const d = await mkdtemp(join(tmpdir(), "edgetag-resume2-"));
    try {
      await writeResume(d, { job_id: "a", endpoint: "http://x", out: "o", format: "ndjson", submitted_at: "" });
      expect(JSON.parse(await readFile(join(d, ".edgetag", "last-job.json"), "utf8")).job_id).toBe("a");
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });
});
