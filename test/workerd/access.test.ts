/**
 * Access control, rate limits, observability and the resilience cases the
 * other files do not cover, end to end inside workerd with the real local
 * KV, R2, rate-limiting and Analytics Engine bindings. One file for all of it:
 * every workerd test file pays ~15 s to import ORT's wasm.
 */
import { env, SELF } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createKey, ensureKey, revokeKey } from "../../scripts/keys/store";
import { VerifiedKeyCache } from "../../src/auth/key-cache";
import { ApiKeyRecord, hashKey, kvName } from "../../src/auth/keys";
import { authenticate } from "../../src/auth/verify";
import { getSession, isLoaded } from "../../src/inference/sessions";
import { LIMITS } from "../../src/limits";
import { getModel, listModels } from "../../src/models/registry";
import { writeMetrics } from "../../src/observability/metrics";
import { classify } from "../../src/services/classify";
import { authedSelf, TEST_API_KEY } from "./support/auth";

const BASE = "http://edgetag.test";
/** Its hash (and nothing else) is in API_KEY_HASHES in vitest.config.ts, next to a malformed entry. */
const SECRET_LIST_KEY = "et_test_secret_list_entry_key";

interface ErrorBody {
  error: { code: string; message: string };
}

async function repoFile(path: string): Promise<Uint8Array> {
  const res = await env.REFERENCE.fetch(`http://reference/files/${path}`);
  if (!res.ok) throw new Error(`reference service: ${path}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(5);
  return body;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let jpeg: Uint8Array;

beforeAll(async () => {
  for (const m of listModels()) {
    const { manifest } = m;
    const bytes = await repoFile(`models/${manifest.id}/${manifest.file.r2Key.split("/").pop()}`);
    await env.MODELS.put(manifest.file.r2Key, bytes);
  }
  jpeg = await repoFile("test/fixtures/images/jpeg_baseline_420.jpg");
});

afterEach(() => {
  vi.restoreAllMocks();
});

function classifyWith(headers: Record<string, string>, query = "model=mobilenet-v2", body: Uint8Array = jpeg) {
  return SELF.fetch(`${BASE}/v1/classify?${query}`, {
    method: "POST",
    body,
    headers: { "content-type": "image/jpeg", ...headers },
  });
}

describe("public routes need no key", () => {
  it("serves the demo page, health and the model catalogue without Authorization", async () => {
    for (const path of ["/", "/healthz", "/healthz?deep=1", "/v1/models", "/v1/models/mobilenet-v2"]) {
      const res = await SELF.fetch(`${BASE}${path}`);
      expect(res.status, path).toBe(200);
      await res.body?.cancel();
    }
    // The API description and its reader stay outside /v1 and are never behind the key check.
    for (const path of ["/openapi.json", "/docs"]) {
      const res = await SELF.fetch(`${BASE}${path}`);
      expect(res.status, path).not.toBe(401);
      await res.body?.cancel();
    }
  });
});

describe("protected routes", () => {
  const protectedRequests: Array<[string, string, BodyInit | null, string | undefined]> = [
    ["POST", "/v1/classify", "x", "image/jpeg"],
    ["POST", "/v1/classify/batch", "{}", "application/json"],
    ["POST", "/v1/embed", "x", "image/jpeg"],
    ["POST", "/v1/jobs", "{}", "application/json"],
    ["GET", "/v1/jobs/abc", null, undefined],
    ["GET", "/v1/jobs/abc/results", null, undefined],
    ["DELETE", "/v1/jobs/abc", null, undefined],
    ["PUT", "/v1/images/a.png", "x", "image/png"],
    ["GET", "/v1/tags/a.png", null, undefined],
    // Default deny: a route nobody has written yet is protected too, and the catalogue is read-only.
    ["GET", "/v1/not-yet-written", null, undefined],
    ["POST", "/v1/models", "{}", "application/json"],
  ];

  it("answer 401 with WWW-Authenticate: Bearer and the error envelope when no key is sent", async () => {
    for (const [method, path, body, type] of protectedRequests) {
      const res = await SELF.fetch(`${BASE}${path}`, { method, body, headers: type ? { "content-type": type } : {} });
      await expectError(res, 401, "unauthorized");
      expect(res.headers.get("www-authenticate"), `${method} ${path}`).toBe('Bearer realm="edgetag"');
    }
  });

  it("answer 401 invalid_token for malformed headers and unknown keys", async () => {
    const headers = [
      "Basic dXNlcjpwYXNz",
      "Bearer",
      "Bearer ",
      "Bearer two tokens",
      "Bearer short",
      `Bearer ${"a".repeat(LIMITS.apiKeyLength.max + 1)}`,
      "Bearer et_has\u00e9nonascii_characters",
      "Bearer et_this_key_was_never_issued_to_anyone",
      `Bearer ${TEST_API_KEY}x`,
      `Bearer ${SECRET_LIST_KEY.slice(0, -1)}`,
    ];
    for (const authorization of headers) {
      let res: Response;
      try {
        res = await classifyWith({ authorization });
      } catch {
        continue; // a header value the Fetch API itself refuses never reaches us
      }
      await expectError(res, 401, "unauthorized");
      expect(res.headers.get("www-authenticate"), authorization).toBe('Bearer realm="edgetag", error="invalid_token"');
    }
  });

  it("accept a key from KV (case-insensitive scheme) and refuse it with 403 once revoked", async () => {
    const { key, record } = await createKey(env.API_KEYS, "revocation test", "standard");
    expect(key).toMatch(/^et_[A-Za-z0-9_-]{43}$/);
    // Only the hash is stored: the key appears nowhere in the namespace.
    const stored = await env.API_KEYS.get(kvName(await hashKey(key)));
    expect(ApiKeyRecord.parse(JSON.parse(stored as string))).toEqual(record);
    expect(stored).not.toContain(key);
    const listed = await env.API_KEYS.list();
    expect(JSON.stringify(listed)).not.toContain(key);

    expect((await classifyWith(bearer(key))).status).toBe(200);
    expect((await classifyWith({ authorization: `bearer ${key}` })).status).toBe(200);

    await revokeKey(env.API_KEYS, record.id);
    // This isolate verified the key moments ago and reuses that for up to
    // LIMITS.apiKeyIsolateCacheSeconds: revocation is not instant, but bounded.
    expect((await classifyWith(bearer(key))).status).toBe(200);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + LIMITS.apiKeyIsolateCacheSeconds * 1000);
      const body = await expectError(await classifyWith(bearer(key)), 403, "forbidden");
      expect(body.error.message).toContain(record.id);
    } finally {
      vi.useRealTimers();
    }
    // Other keys are unaffected.
    expect((await authedSelf.fetch(`${BASE}/v1/tags/none.png`)).status).toBe(404);
  });

  it("remember verified keys per isolate (one KV read per key per TTL), but never a refusal", async () => {
    const verified = new VerifiedKeyCache(60_000, 2);
    const stores = { kv: env.API_KEYS, verified };
    const { key, record } = await createKey(env.API_KEYS, "cache test", "bulk");
    const reads = vi.spyOn(env.API_KEYS, "get");
    expect(await authenticate(`Bearer ${key}`, stores)).toMatchObject({ id: record.id, rate: "bulk", source: "kv" });
    expect(await authenticate(`Bearer ${key}`, stores)).toMatchObject({ id: record.id });
    expect(reads).toHaveBeenCalledTimes(1);
    // The record is gone, yet the isolate still knows the key: the cache answered, not KV.
    await env.API_KEYS.delete(kvName(await hashKey(key)));
    expect(await authenticate(`Bearer ${key}`, stores)).toMatchObject({ id: record.id });

    // An unknown key is read every time, so a key created after a refusal works at once.
    const later = `et_${"k".repeat(43)}`;
    await expect(authenticate(`Bearer ${later}`, stores)).rejects.toMatchObject({ status: 401 });
    await ensureKey(env.API_KEYS, later, "created after a 401", "standard");
    expect(await authenticate(`Bearer ${later}`, stores)).toMatchObject({ name: "created after a 401" });
    // A revoked key is not remembered either.
    const { key: gone, record: goneRecord } = await createKey(env.API_KEYS, "revoked first", "standard");
    await revokeKey(env.API_KEYS, goneRecord.id);
    await expect(authenticate(`Bearer ${gone}`, stores)).rejects.toMatchObject({ status: 403 });
    expect(verified.size).toBe(2); // the first key and `later`
    // Two entries at most: a third verified key evicts the oldest, whose KV record is gone.
    const { key: third } = await createKey(env.API_KEYS, "third", "standard");
    await authenticate(`Bearer ${third}`, stores);
    expect(verified.size).toBe(2);
    await expect(authenticate(`Bearer ${key}`, stores)).rejects.toMatchObject({ status: 401 });
  });

  it("accept a key listed in the API_KEY_HASHES secret, which needs no KV at all", async () => {
    expect(env.API_KEY_HASHES).toContain(await hashKey(SECRET_LIST_KEY));
    expect(await env.API_KEYS.get(kvName(await hashKey(SECRET_LIST_KEY)))).toBeNull();
    expect((await classifyWith(bearer(SECRET_LIST_KEY))).status).toBe(200);
    // Direct call without any KV namespace: the malformed entry next to it is skipped, not fatal.
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const key = await authenticate(`Bearer ${SECRET_LIST_KEY}`, { hashList: `garbage,${env.API_KEY_HASHES}` });
    expect(key).toMatchObject({
      source: "secret",
      rate: "standard",
      id: (await hashKey(SECRET_LIST_KEY)).slice(0, 16),
    });
    expect(errors.mock.calls.flat().join("\n")).toMatch(/API_KEY_HASHES entry 1/);
    await expect(
      authenticate("Bearer et_not_in_the_list_at_all", { hashList: env.API_KEY_HASHES }),
    ).rejects.toMatchObject({
      status: 401,
    });
  });

  it("refuse a key whose stored record is malformed rather than guess", async () => {
    const key = "et_test_key_with_a_malformed_record";
    await env.API_KEYS.put(kvName(await hashKey(key)), JSON.stringify({ id: "nope", name: "x" }));
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    await expectError(await classifyWith(bearer(key)), 401, "unauthorized");
    expect(errors.mock.calls.flat().join("\n")).toMatch(/malformed key record/);
  });
});

describe("per-key rate limits (Workers rate-limiting binding, implemented locally by miniflare)", () => {
  it("answers 429 with Retry-After once a standard key spends its budget; other keys are unaffected", async () => {
    const { limit, period } = LIMITS.rateLimits.standard;
    const { key } = await createKey(env.API_KEYS, "rate limit test", "standard");
    const { key: neighbour } = await createKey(env.API_KEYS, "rate limit neighbour", "standard");
    // A cheap authenticated request (KV read, 404). The binding counts in fixed windows, so a
    // window boundary may fall inside this loop: the budget is then spent at most twice over.
    let allowed = 0;
    let limited: Response | undefined;
    for (let i = 0; i < 2 * limit + 1 && !limited; i++) {
      const res = await SELF.fetch(`${BASE}/v1/tags/none.png`, { headers: bearer(key) });
      if (res.status === 429) limited = res;
      else {
        expect(res.status).toBe(404);
        await res.body?.cancel();
        allowed++;
      }
    }
    expect(limited, `no 429 after ${allowed} requests`).toBeDefined();
    expect(allowed).toBeGreaterThanOrEqual(limit);
    expect(allowed).toBeLessThanOrEqual(2 * limit);
    const body = await expectError(limited as Response, 429, "rate_limited");
    expect(body.error.message).toContain(`${limit} requests per ${period} s`);
    expect((limited as Response).headers.get("retry-after")).toBe(String(period));
    // Per key: another standard key and the unlimited test key still get through.
    expect((await SELF.fetch(`${BASE}/v1/tags/none.png`, { headers: bearer(neighbour) })).status).toBe(404);
    expect((await authedSelf.fetch(`${BASE}/v1/tags/none.png`)).status).toBe(404);
  });

  it("wrangler.toml's [[ratelimits]] are the bindings LIMITS names, and unlimited keys skip them", async () => {
    for (const tier of Object.values(LIMITS.rateLimits)) {
      const binding = (env as unknown as Record<string, RateLimit | undefined>)[tier.binding];
      expect(typeof binding?.limit, tier.binding).toBe("function");
    }
    const { key } = await createKey(env.API_KEYS, "unlimited test", "unlimited");
    for (let i = 0; i < LIMITS.rateLimits.standard.limit + 5; i++) {
      const res = await SELF.fetch(`${BASE}/v1/tags/none.png`, { headers: bearer(key) });
      expect(res.status).toBe(404);
      await res.body?.cancel();
    }
  });
});

describe("observability", () => {
  function captureLogs() {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
    return {
      records: () =>
        lines
          .map((l) => {
            try {
              return JSON.parse(l) as Record<string, unknown>;
            } catch {
              return undefined;
            }
          })
          .filter((r): r is Record<string, unknown> => r?.msg === "request"),
      raw: () => lines.join("\n"),
    };
  }

  it("gives every response an x-request-id: a sane incoming one is echoed, anything else replaced", async () => {
    const minted = await SELF.fetch(`${BASE}/healthz`);
    expect(minted.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await SELF.fetch(`${BASE}/healthz`, { headers: { "x-request-id": "client-abc.123:7" } });
    expect(echoed.headers.get("x-request-id")).toBe("client-abc.123:7");
    for (const bad of ["x".repeat(LIMITS.maxRequestIdLength + 1), "has space", '"quoted"', "semi;colon"]) {
      const res = await SELF.fetch(`${BASE}/healthz`, { headers: { "x-request-id": bad } });
      expect(res.headers.get("x-request-id"), bad).toMatch(/^[0-9a-f-]{36}$/);
    }
    // Errors, including auth failures, carry it too.
    const denied = await classifyWith({ "x-request-id": "denied-1" });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("x-request-id")).toBe("denied-1");
  });

  it("sends Server-Timing with the classify stages, and logs one JSON line per request without secrets", async () => {
    const logs = captureLogs();
    // A fresh image (a JPEG comment changes the bytes) so the first request is a miss.
    const marked = withComment(jpeg, `obs-${Date.now()}`);
    const miss = await authedSelf.fetch(`${BASE}/v1/classify?model=mobilenet-v2&top_k=3`, {
      method: "POST",
      body: marked,
      headers: { "content-type": "image/jpeg", "x-request-id": "obs-miss" },
    });
    expect(miss.status).toBe(200);
    const missBody = (await miss.json()) as { timings_ms: Record<string, number>; cached: boolean };
    expect(missBody.cached).toBe(false);
    const timing = miss.headers.get("server-timing") ?? "";
    for (const stage of ["hash", "decode", "preprocess", "infer", "postprocess", "total"]) {
      expect(timing, stage).toContain(`${stage};dur=${missBody.timings_ms[stage]}`);
    }
    expect(timing).toMatch(/request;dur=[\d.]+;desc="worker, whole request"/);

    await vi.waitFor(async () => {
      const again = await authedSelf.fetch(`${BASE}/v1/classify?model=mobilenet-v2&top_k=3`, {
        method: "POST",
        body: marked,
        headers: { "content-type": "image/jpeg", "x-request-id": "obs-hit" },
      });
      expect(((await again.json()) as { cached: boolean }).cached).toBe(true);
      expect(again.headers.get("server-timing")).toContain("cache_read;dur=");
    });
    const denied = await classifyWith({
      authorization: "Bearer et_wrong_key_for_the_log_test",
      "x-request-id": "obs-401",
    });
    expect(denied.status).toBe(401);
    const health = await SELF.fetch(`${BASE}/healthz`, { headers: { "x-request-id": "obs-health" } });
    expect(health.headers.get("server-timing")).toMatch(/^request;dur=/);

    const byId = (id: string) => logs.records().filter((r) => r.request_id === id);
    expect(byId("obs-miss")).toHaveLength(1);
    expect(byId("obs-miss")[0]).toMatchObject({
      level: "info",
      method: "POST",
      route: "/v1/classify",
      status: 200,
      model: "mobilenet-v2",
      cache: "miss",
      items: 1,
      key_id: (await hashKey(TEST_API_KEY)).slice(0, 16),
      stages_ms: missBody.timings_ms,
    });
    expect(byId("obs-miss")[0]?.duration_ms).toBeTypeOf("number");
    expect(byId("obs-hit").at(-1)).toMatchObject({ status: 200, cache: "hit", model: "mobilenet-v2" });
    expect(byId("obs-401")).toEqual([
      expect.objectContaining({ level: "warn", status: 401, error: "unauthorized", route: "/v1/classify" }),
    ]);
    expect(byId("obs-401")[0]).not.toHaveProperty("key_id");
    expect(byId("obs-health")[0]).toMatchObject({ route: "/healthz", status: 200 });
    await SELF.fetch(`${BASE}/v2/nothing/here`, { headers: { "x-request-id": "obs-404" } });
    expect(byId("obs-404")[0]).toMatchObject({ route: "(unmatched)", status: 404, error: "not_found" });

    // Never the key, the Authorization header, or image bytes (in any encoding).
    const raw = logs.raw();
    for (const secret of [TEST_API_KEY, "et_wrong_key_for_the_log_test", "Bearer", "authorization"]) {
      expect(raw.toLowerCase()).not.toContain(secret.toLowerCase());
    }
    // Only the documented fields, each a short scalar or the stage map: no room for bytes or headers.
    const allowed = new Set([
      ...["level", "msg", "request_id", "method", "route", "status", "duration_ms", "key_id"],
      ...["model", "cache", "items", "stages_ms", "error"],
    ]);
    for (const record of logs.records()) {
      for (const [field, value] of Object.entries(record)) {
        expect(allowed.has(field), field).toBe(true);
        expect(JSON.stringify(value).length, field).toBeLessThan(field === "stages_ms" ? 400 : 80);
      }
    }
  });

  it("writes metrics to the real (local) Analytics Engine binding without disturbing requests", async () => {
    expect(env.METRICS).toBeDefined();
    expect(() =>
      writeMetrics(env.METRICS, {
        request_id: "m",
        method: "GET",
        route: "/healthz",
        status: 200,
        duration_ms: 1,
      }),
    ).not.toThrow();
    // Absent binding (a deploy without Analytics Engine): a no-op.
    expect(() =>
      writeMetrics(undefined, { request_id: "m", method: "GET", route: "/", status: 200, duration_ms: 1 }),
    ).not.toThrow();
  });
});

describe("resilience", () => {
  it("classify() still answers when every KV call throws (the cache is an optimisation)", async () => {
    const real = getModel("mobilenet-v2");
    // A 600-character model id makes the cache key exceed KV's 512-byte limit,
    // so the real binding throws on both get and put. Same model build otherwise.
    const model = { ...real, manifest: { ...real.manifest, id: "m".repeat(600) } };
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const pending: Promise<unknown>[] = [];
    const result = await classify(
      { bytes: jpeg, model, topK: 3 },
      { models: env.MODELS, cache: env.RESULTS, cacheTtlSeconds: 3600, waitUntil: (p) => pending.push(p) },
    );
    await Promise.all(pending);
    expect(result.cached).toBe(false);
    expect(result.predictions).toHaveLength(3);
    const log = warnings.mock.calls.flat().join("\n");
    expect(log).toMatch(/cache: read failed/);
    expect(log).toMatch(/cache: write failed/);
  });

  it("a bad image sent to a cold model does not strand that model's load (found by the load test)", async () => {
    // classify() starts the model load before decoding, so a 4xx from the decoder ends the
    // request while the load is in flight. Unless the load is kept alive past the response,
    // workerd never resumes it: the model stays "loading" and every request for it waits
    // out the 120 s stale-load takeover.
    const densenet = getModel("densenet-121");
    expect(isLoaded(densenet), "densenet-121 must be cold in this isolate").toBe(false);
    const truncated = jpeg.slice(0, Math.floor(jpeg.length * 0.6));
    await expectError(
      await authedSelf.fetch(`${BASE}/v1/classify?model=densenet-121`, {
        method: "POST",
        body: truncated,
        headers: { "content-type": "image/jpeg" },
      }),
      422,
      "invalid_image",
    );
    // The load the failed request started finishes on its own (no second request needed)...
    await vi.waitFor(() => expect(isLoaded(densenet)).toBe(true), { timeout: 30_000, interval: 100 });
    // ...and the next request uses it.
    const res = await classifyWith({ authorization: `Bearer ${TEST_API_KEY}` }, "model=densenet-121");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { timings_ms: Record<string, number> }).timings_ms.session_create).toBeUndefined();
  });

  it("R2 failing (not just missing) at cold start is a 503 with Retry-After", async () => {
    const real = getModel("mobilenet-v2");
    // R2 refuses keys over 1024 bytes: a real binding error, not a missing object.
    const model = {
      ...real,
      manifest: { ...real.manifest, id: "r2-broken", file: { ...real.manifest.file, r2Key: "k".repeat(1100) } },
      versionKey: "r2-broken@test",
    };
    await expect(getSession(env.MODELS, model)).rejects.toMatchObject({
      status: 503,
      code: "model_unavailable",
      message: expect.stringMatching(/model storage \(R2\) failed/),
      headers: { "Retry-After": expect.stringMatching(/^\d+$/) },
    });
  });

  it("a session that fails to create is not rebuilt on every request: the back-off doubles", async () => {
    // Bytes that pass the manifest's size and sha256 check but are not an ONNX graph,
    // so the failure is in session creation itself.
    const garbage = new TextEncoder().encode("this is not an onnx model ".repeat(64));
    const sha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", garbage))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    const real = getModel("mobilenet-v2");
    const model = {
      ...real,
      manifest: {
        ...real.manifest,
        id: "not-onnx",
        file: { ...real.manifest.file, r2Key: "models/not-onnx/model.onnx", sha256: sha, bytes: garbage.byteLength },
      },
      versionKey: `not-onnx@${sha}`,
    };
    await env.MODELS.put(model.manifest.file.r2Key, garbage);
    const first = await getSession(env.MODELS, model).catch((e: unknown) => e);
    expect(first).toMatchObject({ status: 503, headers: { "Retry-After": "2" } });
    expect((first as Error).message).not.toMatch(/corrupt|missing/);
    // Inside the window: answered from memory. Proof: with the object gone, the answer is
    // still the remembered session failure, not "missing".
    await env.MODELS.delete(model.manifest.file.r2Key);
    await expect(getSession(env.MODELS, model)).rejects.toMatchObject({
      message: expect.stringMatching(/next retry in/),
    });
    await env.MODELS.put(model.manifest.file.r2Key, garbage);
    await new Promise((r) => setTimeout(r, LIMITS.modelRetryBackoffMs.initial + 100));
    // After the window it really tries again, fails again, and waits twice as long.
    await expect(getSession(env.MODELS, model)).rejects.toMatchObject({ headers: { "Retry-After": "4" } });
  });
});

/** Inserts a COM segment after SOI: different bytes (so a cache miss), same pixels. */
function withComment(jpegBytes: Uint8Array, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const seg = new Uint8Array(4 + payload.length);
  seg.set([0xff, 0xfe, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  seg.set(payload, 4);
  const out = new Uint8Array(jpegBytes.length + seg.length);
  out.set(jpegBytes.subarray(0, 2));
  out.set(seg, 2);
  out.set(jpegBytes.subarray(2), 2 + seg.length);
  return out;
}

// ensureKey is what the support helper uses; keep it exercised on its own too.
it("ensureKey leaves an existing record (e.g. a revoked dev key) alone", async () => {
  const key = "et_test_ensure_key_idempotent";
  const first = await ensureKey(env.API_KEYS, key, "first", "bulk");
  await revokeKey(env.API_KEYS, first.record.id);
  const again = await ensureKey(env.API_KEYS, key, "second", "standard");
  expect(again.record).toMatchObject({ name: "first", rate: "bulk", revoked: expect.any(String) });
});
