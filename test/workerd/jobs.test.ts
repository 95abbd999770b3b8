/**
 * Bulk tagging inside workerd with the real local Queue, Durable Object, R2
 * and KV: the HTTP jobs API, the queue consumers, the tracker's alarm, faults.
 */
import { createExecutionContext, createMessageBatch, env, getQueueResult, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { cacheKey, cacheTtl, readCache } from "../../src/cache";
import { consumeDeadLetters, consumeJobBatch } from "../../src/jobs/consumer";
import { prefetchImages } from "../../src/jobs/prefetch";
import type { ItemResult, JobItemMessage, JobStatus } from "../../src/jobs/schema";
import { QUEUE_NAMES } from "../../src/jobs/schema";
import {
  type ImageLoader,
  ItemError,
  imageLoader,
  type LoadOptions,
  OverPrefetchBudget,
  TransientError,
} from "../../src/jobs/sources";
import { jobStub } from "../../src/jobs/stub";
import type { JobTracker } from "../../src/jobs/tracker";
import { LIMITS } from "../../src/limits";
import { getModel, listModels } from "../../src/models/registry";
import { authedSelf as SELF } from "./support/auth";

const BASE = "http://edgetag.test";

/** getQueueResult's shape (its type lives only in workers-types/experimental). */
interface QueueOutcome {
  explicitAcks: string[];
  retryMessages: Array<{ msgId: string; delaySeconds?: number }>;
}
const JPEGS = ["jpeg_baseline_420", "jpeg_progressive", "jpeg_gray", "jpeg_cmyk", "jpeg_exif_orient6", "jpeg_restart"];
const PNGS = ["png_rgb8", "png_rgba8", "png_palette", "png_gray16", "png_adam7", "png_1x1"];

async function repoFile(path: string): Promise<Uint8Array> {
  const res = await env.REFERENCE.fetch(`http://reference/files/${path}`);
  if (!res.ok) throw new Error(`reference service: ${path}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

interface FixtureEntry {
  name: string;
  file: string;
}
let fixtures: FixtureEntry[] = [];

async function postJob(body: unknown): Promise<{ id: string; status_url: string }> {
  const res = await SELF.fetch(`${BASE}/v1/jobs`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
  const text = await res.text();
  expect(res.status, text).toBe(202);
  return JSON.parse(text);
}

async function jobStatus(id: string): Promise<JobStatus> {
  const res = await SELF.fetch(`${BASE}/v1/jobs/${id}`);
  expect(res.status).toBe(200);
  return (await res.json()) as JobStatus;
}

async function waitForState(id: string, states: string[], timeout = 90_000): Promise<JobStatus> {
  return vi.waitFor(
    async () => {
      const s = await jobStatus(id);
      if (!states.includes(s.state)) throw new Error(`job ${id} is ${s.state} ${JSON.stringify(s.counts)}`);
      return s;
    },
    { timeout, interval: 250 },
  );
}

/** Every result line, paging with the server's cursor the way the CLI does. */
async function allResults(id: string, limit = 7): Promise<ItemResult[]> {
  const out: ItemResult[] = [];
  let after = 0;
  for (;;) {
    const res = await SELF.fetch(`${BASE}/v1/jobs/${id}/results?after=${after}&limit=${limit}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/ndjson/);
    const text = new TextDecoder().decode(await res.arrayBuffer());
    const lines = text.split("\n").filter(Boolean);
    if (!lines.length) return out;
    out.push(...lines.map((l) => JSON.parse(l) as ItemResult));
    after = Number(res.headers.get("x-next-after"));
  }
}

function expectOneResultPerItem(results: ItemResult[], total: number): void {
  const items = results.map((r) => r.item).sort((a, b) => a - b);
  expect(items).toEqual(Array.from({ length: total }, (_, i) => i));
}

beforeAll(async () => {
  for (const m of listModels()) {
    const { manifest } = m;
    await env.MODELS.put(
      manifest.file.r2Key,
      await repoFile(`models/${manifest.id}/${manifest.file.r2Key.split("/").pop()}`),
    );
  }
  const index = JSON.parse(new TextDecoder().decode(await repoFile("test/fixtures/images/index.json")));
  fixtures = index.images;
  // The images bucket: every fixture under photos/, a few more under extra/, and one non-image.
  for (const f of fixtures) await env.IMAGES.put(`photos/${f.file}`, await repoFile(`test/fixtures/images/${f.file}`));
  for (const name of [...JPEGS, ...PNGS]) {
    const f = fixtures.find((x) => x.name === name) as FixtureEntry;
    await env.IMAGES.put(`extra/${f.file}`, await repoFile(`test/fixtures/images/${f.file}`));
  }
  await env.IMAGES.put("photos/notes.txt", "this is not an image");
  await env.IMAGES.put("photos/folder/", ""); // a "directory" placeholder object, not an item
});

describe("jobs API validation", () => {
  it("rejects bad job requests with 4xx JSON", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ source: {} }, 400, "invalid_parameter"],
      [{ source: { urls: ["ftp://x.test/a.jpg"] } }, 400, "invalid_parameter"],
      [{ source: { keys: ["../etc/passwd"] } }, 400, "invalid_parameter"],
      [{ source: { prefix: "a" }, top_k: 0 }, 400, "invalid_parameter"],
      [{ source: { prefix: "a" }, model: "resnet-9000" }, 404, "unknown_model"],
      [{ source: { prefix: "a" }, webhook: { url: "http://hooks.test/x", secret: "short" } }, 400, "invalid_parameter"],
      [
        { source: { prefix: "a" }, webhook: { url: "http://169.254.169.254/latest", secret: "s".repeat(16) } },
        400,
        "invalid_parameter",
      ],
      [{ source: { prefix: "a" }, extra: 1 }, 400, "invalid_parameter"],
    ];
    for (const [body, status, code] of cases) {
      const res = await SELF.fetch(`${BASE}/v1/jobs`, {
        method: "POST",
        body: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
      const text = await res.text();
      expect(res.status, `${JSON.stringify(body)} -> ${text}`).toBe(status);
      expect(JSON.parse(text).error.code).toBe(code);
    }
    const notJson = await SELF.fetch(`${BASE}/v1/jobs`, {
      method: "POST",
      body: "{",
      headers: { "content-type": "application/json" },
    });
    expect(notJson.status).toBe(400);
    const wrongType = await SELF.fetch(`${BASE}/v1/jobs`, {
      method: "POST",
      body: "x",
      headers: { "content-type": "text/plain" },
    });
    expect(wrongType.status).toBe(415);
    for (const path of [
      "/v1/jobs/not-a-uuid",
      `/v1/jobs/${crypto.randomUUID()}`,
      `/v1/jobs/${crypto.randomUUID()}/results`,
    ]) {
      const res = await SELF.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(404);
    }
  });

  it("uploads images through PUT /v1/images/<key> and refuses non-images", async () => {
    const png = await repoFile("test/fixtures/images/png_rgb8.png");
    const ok = await SELF.fetch(`${BASE}/v1/images/uploads/t1/a.png`, {
      method: "PUT",
      body: png,
      headers: { "content-type": "image/png" },
    });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toMatchObject({ key: "uploads/t1/a.png", format: "png", width: 128, height: 128 });
    expect((await env.IMAGES.head("uploads/t1/a.png"))?.size).toBe(png.byteLength);
    const bad = await SELF.fetch(`${BASE}/v1/images/uploads/t1/b.png`, {
      method: "PUT",
      body: "hello",
      headers: { "content-type": "image/png" },
    });
    expect(bad.status).toBe(415);
    expect(await env.IMAGES.head("uploads/t1/b.png")).toBeNull();
  });
});

describe("a bulk job end to end (real queue, Durable Object, R2, KV)", () => {
  let firstJob: string;

  it("tags 60+ images from a prefix, a key list and URLs: done, exactly one result per image, exact counts", async () => {
    const urls = [
      ...JPEGS.map((n) => `http://images.test/${fixtures.find((f) => f.name === n)?.file}`),
      "http://flaky.test/png_rgb8.png", // 503 once: retried, then done
      "http://images.test/missing.jpg", // 404: a failed item, not a retry
      "http://big.test/huge.jpg", // 21 MiB without Content-Length: cut off while streaming
    ];
    const keys = [...PNGS.map((n) => `extra/${fixtures.find((f) => f.name === n)?.file}`), "extra/nope.png"];
    const { id, status_url } = await postJob({
      model: "mobilenet-v2",
      top_k: 3,
      source: { prefix: "photos/", urls, keys },
    });
    firstJob = id;
    expect(status_url).toBe(`/v1/jobs/${id}`);

    const final = await waitForState(id, ["done"]);
    const prefixCount = fixtures.length + 1; // + notes.txt; the "folder/" placeholder is not an item
    const total = prefixCount + urls.length + keys.length;
    expect(total).toBeGreaterThanOrEqual(50);
    expect(final.total_final).toBe(true);
    expect(final.counts.total).toBe(total);
    expect(final.counts.pending).toBe(0);
    expect(final.counts.failed).toBe(4); // notes.txt, missing.jpg, huge.jpg, nope.png
    expect(final.counts.done).toBe(total - 4);
    expect(final.images_per_s).toBeGreaterThan(0);

    const results = await allResults(id);
    expectOneResultPerItem(results, total);
    const failed = Object.fromEntries(
      results.filter((r) => r.status === "failed").map((r) => [JSON.stringify(r.source), r.error?.code]),
    );
    expect(failed).toEqual({
      '{"key":"photos/notes.txt"}': "unsupported_media_type",
      '{"url":"http://images.test/missing.jpg"}': "source_fetch_failed",
      '{"url":"http://big.test/huge.jpg"}': "payload_too_large",
      '{"key":"extra/nope.png"}': "source_not_found",
    });
    for (const r of results.filter((x) => x.status === "done")) {
      expect(r.predictions).toHaveLength(3);
      expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    // The same bytes reached through a key and a URL give the same hash.
    const byKey = results.find((r) => "key" in r.source && r.source.key === "extra/png_rgb8.png");
    const byUrl = results.find((r) => "url" in r.source && r.source.url === "http://flaky.test/png_rgb8.png");
    expect(byUrl?.status).toBe("done");
    expect(byUrl?.sha256).toBe(byKey?.sha256);
  });

  it("a second job over the same images runs no inference: every result is a cache hit", async () => {
    const { id } = await postJob({ model: "mobilenet-v2", top_k: 3, source: { prefix: "photos/" } });
    const final = await waitForState(id, ["done"]);
    expect(final.counts.cached).toBe(final.counts.done);
    const results = await allResults(id, 1000);
    const done = results.filter((r) => r.status === "done");
    expect(done.length).toBe(fixtures.length);
    expect(done.every((r) => r.cached === true)).toBe(true);
    // And the cached answers are the first job's answers.
    const first = new Map((await allResults(firstJob, 1000)).map((r) => [JSON.stringify(r.source), r]));
    for (const r of done) expect(r.predictions).toEqual(first.get(JSON.stringify(r.source))?.predictions);
  });

  it("cancelling stops the job: unprocessed items are skipped and nothing runs afterwards", async () => {
    const { id } = await postJob({ model: "densenet-121", source: { prefix: "photos/" } });
    // Cancel once the prefix is listed (cancelling earlier is valid too, but then there is nothing to skip).
    await vi.waitFor(
      async () => {
        if (!(await jobStatus(id)).total_final) throw new Error("still listing");
      },
      { timeout: 10_000, interval: 20 },
    );
    const res = await SELF.fetch(`${BASE}/v1/jobs/${id}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    const cancelled = await waitForState(id, ["cancelled"]);
    expect(cancelled.counts.skipped).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 3000));
    const later = await jobStatus(id);
    expect(later.counts).toEqual(cancelled.counts);
    expect(later.counts.pending).toBe(0);
    expect(later.counts.done + later.counts.failed + later.counts.skipped).toBe(later.counts.total);
    const results = await allResults(id);
    expectOneResultPerItem(results, later.counts.total);
  });

  it("delivers a signed completion webhook, retrying after a failure", async () => {
    const secret = "s3cret-for-the-webhook-test";
    const { id } = await postJob({
      source: { keys: ["extra/png_1x1.png"] },
      webhook: { url: "http://hooks.test/fail-once/job-hook", secret },
    });
    await waitForState(id, ["done"]);
    const deliveries = await vi.waitFor(
      async () => {
        const r = await env.REFERENCE.fetch("http://reference/webhooks/job-hook");
        const list = (await r.json()) as Array<{ headers: Record<string, string>; body: string }>;
        if (!list.length) throw new Error("no webhook yet");
        return list;
      },
      { timeout: 20_000, interval: 500 },
    );
    expect(deliveries).toHaveLength(1);
    const [hook] = deliveries as [{ headers: Record<string, string>; body: string }];
    const payload = JSON.parse(hook.body);
    expect(payload.event).toBe("job.finished");
    expect(payload.job).toMatchObject({ id, state: "done", counts: { total: 1, done: 1 } });
    // Verify independently of src/jobs/webhook.ts.
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const sigHex = (hook.headers["x-edgetag-signature"] ?? "").replace(/^sha256=/, "");
    const sig = new Uint8Array((sigHex.match(/../g) ?? []).map((h) => Number.parseInt(h, 16)));
    const signed = new TextEncoder().encode(`${hook.headers["x-edgetag-timestamp"]}.${hook.body}`);
    expect(await crypto.subtle.verify("HMAC", key, sig, signed)).toBe(true);
    const tampered = new TextEncoder().encode(`${hook.headers["x-edgetag-timestamp"]}.${hook.body} `);
    expect(await crypto.subtle.verify("HMAC", key, sig, tampered)).toBe(false);
    const status = await jobStatus(id);
    expect(status.webhook).toMatchObject({ delivered: true, attempts: 2 });
  });
});

describe("fault injection (consumer called with real bindings, faults injected into its loader)", () => {
  const retry = { base: 1, max: 10 };

  /** A job whose items are registered but not yet enqueued by the alarm (we deliver them by hand). */
  async function manualJob(
    keys: string[],
  ): Promise<{ id: string; stub: DurableObjectStub<JobTracker>; messages: JobItemMessage[] }> {
    const id = crypto.randomUUID();
    const stub = jobStub(env.JOBS, id);
    // Created inside the object so its alarm cannot run in between: this test is the queue.
    await runInDurableObject(stub, async (instance, state) => {
      await instance.create({ id, model: "mobilenet-v2", top_k: 2, source: { keys } });
      await state.storage.deleteAlarm();
      state.storage.sql.exec("UPDATE items SET state = 'queued', enqueued_at = ?", Date.now());
    });
    const messages = keys.map(
      (key, item): JobItemMessage => ({ v: 1, job: id, item, ref: { key }, model: "mobilenet-v2", top_k: 2 }),
    );
    return { id, stub, messages };
  }

  function deps(load: ImageLoader) {
    const ctx = createExecutionContext();
    return {
      jobs: env.JOBS,
      load,
      classify: {
        models: env.MODELS,
        cache: env.RESULTS,
        cacheTtlSeconds: cacheTtl(undefined),
        waitUntil: (p: Promise<unknown>) => ctx.waitUntil(p),
      },
      ctx,
    };
  }

  async function deliver(
    messages: Array<{ id: string; body: JobItemMessage; attempts?: number }>,
    load: ImageLoader,
    queue: string = QUEUE_NAMES.jobs,
  ) {
    const d = deps(load);
    const batch = createMessageBatch<unknown>(
      queue,
      messages.map((m) => ({ id: m.id, timestamp: new Date(), attempts: m.attempts ?? 1, body: m.body })),
    );
    if (queue === QUEUE_NAMES.jobs) await consumeJobBatch(batch, d, retry);
    else await consumeDeadLetters(batch, env.JOBS);
    return (await getQueueResult(batch, d.ctx)) as QueueOutcome;
  }

  // The extra/ objects seeded in beforeAll (computed lazily: fixtures load in beforeAll).
  let keys: string[] = [];
  beforeAll(() => {
    keys = JPEGS.concat(PNGS).map((n) => `extra/${fixtures.find((f) => f.name === n)?.file}`);
  });

  it("the Nth message throws, one R2 read fails transiently, one message is delivered twice: every image gets exactly one result", async () => {
    const { id, stub, messages } = await manualJob(keys);
    const real = imageLoader(env.IMAGES);
    let calls = 0;
    const flakyOnce = new Set<string>();
    const faulty: ImageLoader = async (ref) => {
      calls++;
      if (calls === 4) throw new Error("consumer bug: unexpected exception on the 4th message");
      if ("key" in ref && ref.key === keys[7] && !flakyOnce.has(ref.key)) {
        flakyOnce.add(ref.key);
        throw new TransientError("R2 get failed: network connection lost");
      }
      return real(ref);
    };
    const first = messages.map((body, i) => ({ id: `m${i}`, body }));
    // Message 2 is also delivered as a second copy with another message id.
    const duplicate = { id: "m2-copy", body: messages[2] as JobItemMessage };
    const r1 = await deliver([...first, duplicate], faulty);
    expect(r1.retryMessages.map((m) => m.msgId).sort()).toEqual(["m3", "m7"]);
    expect(r1.explicitAcks.sort()).toEqual(
      first
        .map((m) => m.id)
        .filter((x) => x !== "m3" && x !== "m7")
        .concat("m2-copy")
        .sort(),
    );

    // The queue redelivers the two retried messages (same ids, attempts 2), plus message 0 once more.
    const r2 = await deliver(
      [
        { id: "m3", body: messages[3] as JobItemMessage, attempts: 2 },
        { id: "m7", body: messages[7] as JobItemMessage, attempts: 2 },
        { id: "m0", body: messages[0] as JobItemMessage, attempts: 2 },
      ],
      faulty,
    );
    expect(r2.retryMessages).toEqual([]);
    expect(r2.explicitAcks.sort()).toEqual(["m0", "m3", "m7"]);

    const status = (await stub.status()) as JobStatus;
    expect(status.state).toBe("done");
    expect(status.counts).toMatchObject({ total: keys.length, done: keys.length, failed: 0, pending: 0 });
    const results = await allResults(id);
    expectOneResultPerItem(results, keys.length);

    // Each finished item wrote its classification to the shared cache, without the embedding:
    // jobs never read embeddings back, and the vector is most of an entry's bytes.
    const model = getModel("mobilenet-v2");
    const done = results.flatMap((r) => (r.status === "done" && r.sha256 ? [r.sha256] : []));
    expect(done.length).toBeGreaterThan(5);
    for (const sha of done) {
      const entry = await readCache(env.RESULTS, cacheKey(model, sha));
      expect(entry?.predictions.length, sha).toBeGreaterThan(0);
      expect(entry?.embedding, sha).toBeUndefined();
    }
  });

  it("a poison message exhausts its retries, the dead-letter consumer fails its item, and the job finishes", async () => {
    const { stub, messages } = await manualJob(keys.slice(0, 3));
    const real = imageLoader(env.IMAGES);
    const poison: ImageLoader = async (ref) => {
      if ("key" in ref && ref.key === keys[1]) throw new TransientError("origin keeps timing out");
      return real(ref);
    };
    const r = await deliver(
      messages.map((body, i) => ({ id: `p${i}`, body })),
      poison,
    );
    expect(r.retryMessages.map((m) => m.msgId)).toEqual(["p1"]);
    // Retries 2..6 fail the same way (max_retries = 5), then Queues moves it to the DLQ.
    for (let attempt = 2; attempt <= 6; attempt++) {
      const again = await deliver([{ id: "p1", body: messages[1] as JobItemMessage, attempts: attempt }], poison);
      expect(again.retryMessages.map((m) => m.msgId)).toEqual(["p1"]);
    }
    expect(((await stub.status()) as JobStatus).state).toBe("running");
    const dlq = await deliver([{ id: "p1", body: messages[1] as JobItemMessage }], poison, QUEUE_NAMES.jobsDeadLetter);
    expect(dlq.explicitAcks).toEqual(["p1"]);
    const status = (await stub.status()) as JobStatus;
    expect(status.state).toBe("done");
    expect(status.counts).toMatchObject({ total: 3, done: 2, failed: 1, pending: 0 });
    const results = await stub.results(0, 10);
    const dead = results.items.find((x) => x.item === 1);
    expect(dead?.error?.code).toBe("retries_exhausted");
    expect(dead?.error?.message).toMatch(/6 attempts.*origin keeps timing out/);
  });

  it("an item whose consumer crashed is noticed by the sweep, re-enqueued and finished; a job cannot hang", async () => {
    const { id, stub } = await manualJob(keys.slice(0, 2));
    // A consumer claims both items, then its isolate dies before reporting.
    expect(
      await stub.claim([
        { item: 0, token: "crashed-0" },
        { item: 1, token: "crashed-1" },
      ]),
    ).toEqual([0, 1]);
    // Ten minutes later the alarm's sweep puts them back in the queue (the real one).
    await runInDurableObject(stub, (instance) => instance.pump(Date.now() + 11 * 60_000));
    const final = await waitForState(id, ["done"], 60_000);
    expect(final.counts).toMatchObject({ total: 2, done: 2, failed: 0 });
    expectOneResultPerItem(await allResults(id), 2);
  });

  it("prefetching: loads overlap, and a failing load (permanent or transient) affects only its own item", async () => {
    const { stub, messages } = await manualJob(keys);
    const real = imageLoader(env.IMAGES);
    let active = 0;
    let maxActive = 0;
    const capped: string[] = [];
    const loader: ImageLoader = async (ref, opts) => {
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        if (opts?.prefetchMaxBytes !== undefined && "key" in ref) capped.push(ref.key);
        await new Promise((r) => setTimeout(r, 5)); // a slow origin, so loads would overlap if they could
        if ("key" in ref && ref.key === keys[2]) throw new ItemError("source_not_found", "deleted meanwhile");
        if ("key" in ref && ref.key === keys[5]) throw new TransientError("R2 get failed: 503");
        return await real(ref, opts);
      } finally {
        active--;
      }
    };
    const r = await deliver(
      messages.map((body, i) => ({ id: `f${i}`, body })),
      loader,
    );
    expect(r.retryMessages.map((m) => m.msgId)).toEqual(["f5"]);
    expect(r.explicitAcks.sort()).toEqual(
      messages
        .map((_, i) => `f${i}`)
        .filter((x) => x !== "f5")
        .sort(),
    );
    expect(maxActive).toBeGreaterThan(1);
    expect(maxActive).toBeLessThanOrEqual(LIMITS.jobPrefetch.maxInFlight + 1);
    expect(capped.length).toBeGreaterThan(1); // loaded ahead, under the prefetch cap

    const status = (await stub.status()) as JobStatus;
    expect(status.counts).toMatchObject({ total: keys.length, done: keys.length - 2, failed: 1, pending: 1 });
    const results = (await stub.results(0, 100)).items;
    expect(results.find((x) => x.item === 2)?.error).toEqual({
      code: "source_not_found",
      message: "deleted meanwhile",
    });
    expect(results.find((x) => x.item === 5)).toBeUndefined(); // released for a retry, not finished
    for (const x of results.filter((y) => y.item !== 2)) {
      expect(x.status).toBe("done");
      expect(x.predictions).toHaveLength(2);
    }
  });

  it("loaders honour the prefetch cap: a bigger image stops early, and real errors stay what they were", async () => {
    const load = imageLoader(env.IMAGES);
    const key = keys[0] as string;
    const full = await load({ key });
    await expect(load({ key }, { prefetchMaxBytes: full.byteLength - 1 })).rejects.toBeInstanceOf(OverPrefetchBudget);
    expect(await load({ key }, { prefetchMaxBytes: full.byteLength })).toEqual(full);
    await expect(load({ key: "extra/nope.png" }, { prefetchMaxBytes: 10 })).rejects.toMatchObject({
      code: "source_not_found",
    });
    // URLs: over the cap by Content-Length, or while streaming a body without one.
    const url = `http://images.test/${fixtures.find((f) => f.name === "jpeg_baseline_420")?.file}`;
    await expect(load({ url }, { prefetchMaxBytes: 10 })).rejects.toBeInstanceOf(OverPrefetchBudget);
    await expect(load({ url: "http://big.test/huge.jpg" }, { prefetchMaxBytes: 1024 })).rejects.toBeInstanceOf(
      OverPrefetchBudget,
    );
    await expect(load({ url: "http://images.test/missing.jpg" }, { prefetchMaxBytes: 10 })).rejects.toMatchObject({
      code: "source_fetch_failed",
    });
  });

  it("the prefetch budget bounds bytes ahead; an item over its share is loaded again, uncapped, in its turn", async () => {
    // maxInFlight 4, maxBytes 100: each prefetch may read 25 bytes.
    const sizes = [20, 20, 60, 20, 20, 20, 20, 20];
    const calls: Array<{ i: number; cap: number | undefined }> = [];
    const prepare = async (i: number, opts: LoadOptions) => {
      calls.push({ i, cap: opts.prefetchMaxBytes });
      await new Promise((r) => setTimeout(r, 1));
      const size = sizes[i] as number;
      if (opts.prefetchMaxBytes !== undefined && size > opts.prefetchMaxBytes) throw new OverPrefetchBudget("big");
      if (i === 4) throw new ItemError("invalid_image", "item 4 is broken");
      return { bytes: new Uint8Array(size) };
    };
    const items = prefetchImages(sizes.length, prepare, { maxInFlight: 4, maxBytes: 100, turnEvery: 4 });
    await new Promise((r) => setTimeout(r, 50));
    // Nothing taken yet: 0, 1, 3 and 5 hold 80 bytes (2 was over its share, 4 failed), so a
    // further 25-byte reservation would not fit.
    expect(calls.map((c) => c.i)).toEqual([0, 1, 2, 3, 4, 5]);
    const got: Array<number | string> = [];
    for (let i = 0; i < sizes.length; i++) {
      try {
        got.push((await items.take(i)).bytes.byteLength);
      } catch (e) {
        got.push((e as ItemError).code);
      }
    }
    expect(got).toEqual([20, 20, 60, 20, "invalid_image", 20, 20, 20]);
    expect(calls.filter((c) => c.i === 2)).toEqual([
      { i: 2, cap: 25 },
      { i: 2, cap: undefined },
    ]);
    for (const i of [0, 1, 3, 4, 5, 6, 7]) expect(calls.filter((c) => c.i === i)).toEqual([{ i, cap: 25 }]);
  });

  it("malformed queue messages are dropped, not retried forever", async () => {
    const r = await deliver(
      [{ id: "junk", body: { hello: "world" } as unknown as JobItemMessage }],
      imageLoader(env.IMAGES),
    );
    expect(r.explicitAcks).toEqual(["junk"]);
    expect(r.retryMessages).toEqual([]);
  });
});

describe("auto-tagging on upload (R2 event notifications)", () => {
  it("tags a new object and records a non-image as an error, through the real queue", async () => {
    const png = await repoFile("test/fixtures/images/png_rgba8.png");
    await env.IMAGES.put("incoming/cat.png", png);
    await env.IMAGES.put("incoming/readme.md", "# not an image");
    const event = (key: string) => ({
      account: "local",
      bucket: "edgetag-images",
      action: "PutObject",
      object: { key, size: 1, eTag: "e" },
      eventTime: new Date().toISOString(),
    });
    await env.IMAGE_EVENTS.sendBatch([{ body: event("incoming/cat.png") }, { body: event("incoming/readme.md") }]);
    const tags = await vi.waitFor(
      async () => {
        const res = await SELF.fetch(`${BASE}/v1/tags/incoming/cat.png`);
        if (res.status !== 200) throw new Error(`tags: ${res.status}`);
        return (await res.json()) as { predictions: unknown[]; model: { id: string; trained: boolean } };
      },
      { timeout: 30_000, interval: 250 },
    );
    expect(tags.predictions).toHaveLength(5);
    expect(tags.model).toMatchObject({ id: "mobilenet-v2", trained: false });
    const bad = await vi.waitFor(
      async () => {
        const res = await SELF.fetch(`${BASE}/v1/tags/incoming/readme.md`);
        if (res.status !== 200) throw new Error(`tags: ${res.status}`);
        return (await res.json()) as { error: { code: string } };
      },
      { timeout: 30_000, interval: 250 },
    );
    expect(bad.error.code).toBe("unsupported_media_type");
    expect((await SELF.fetch(`${BASE}/v1/tags/incoming/never.png`)).status).toBe(404);
  });
});
