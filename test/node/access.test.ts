/**
 * The pure parts of access control and observability, in Node: key format and
 * records, the secret list parser, the public-route allowlist, request ids,
 * Server-Timing, the log summary and the Analytics Engine data point layout,
 * and that wrangler.toml's rate-limit bindings carry the numbers LIMITS states.
 * (The same code runs end to end in workerd in test/workerd/access.test.ts.)
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { DEV_API_KEY } from "../../scripts/keys/dev-key";
import { VerifiedKeyCache } from "../../src/auth/key-cache";
import { ApiKeyRecord, generateKey, hashKey, isPlausibleKey, newRecord, parseHashList } from "../../src/auth/keys";
import { isPublic } from "../../src/auth/middleware";
import { LIMITS } from "../../src/limits";
import { dataPoint } from "../../src/observability/metrics";
import { summarize } from "../../src/observability/record";
import { requestIdFrom } from "../../src/observability/request-id";
import { serverTiming } from "../../src/observability/server-timing";

const REPO = join(import.meta.dirname, "../..");

describe("wrangler.toml", () => {
  // The parts read here (wrangler's Config type does not resolve outside its bundle).
  const config = unstable_readConfig({ config: join(REPO, "wrangler.toml") }) as unknown as {
    ratelimits: Array<{ name: string; namespace_id: string; simple: { limit: number; period: number } }>;
    kv_namespaces: Array<{ binding: string; id?: string }>;
    analytics_engine_datasets: Array<{ binding: string }>;
    vars: Record<string, unknown>;
  };

  it("declares one rate-limiting binding per tier with the limits in src/limits.ts", () => {
    const tiers = Object.values(LIMITS.rateLimits);
    expect(config.ratelimits.map((r) => r.name).sort()).toEqual(tiers.map((t) => t.binding).sort());
    for (const tier of tiers) {
      const binding = config.ratelimits.find((r) => r.name === tier.binding);
      expect(binding?.simple, tier.binding).toEqual({ limit: tier.limit, period: tier.period });
    }
    expect(new Set(config.ratelimits.map((r) => r.namespace_id)).size).toBe(tiers.length);
  });

  it("binds API_KEYS apart from the result cache, and the optional METRICS dataset", () => {
    const kv = config.kv_namespaces.map((k) => k.binding);
    expect(kv).toContain("API_KEYS");
    expect(config.kv_namespaces.find((k) => k.binding === "API_KEYS")?.id).not.toBe(
      config.kv_namespaces.find((k) => k.binding === "RESULTS")?.id,
    );
    expect(config.analytics_engine_datasets.map((d) => d.binding)).toEqual(["METRICS"]);
    // No dev-key switch of any kind reaches the deployed config.
    expect(JSON.stringify(config.vars)).not.toMatch(/dev.?key|auth/i);
  });
});

describe("API keys", () => {
  it("generates 256-bit keys with a recognisable prefix, never twice the same", () => {
    const keys = new Set(Array.from({ length: 200 }, generateKey));
    expect(keys.size).toBe(200);
    for (const k of keys) {
      expect(k).toMatch(/^et_[A-Za-z0-9_-]{43}$/);
      expect(isPlausibleKey(k)).toBe(true);
    }
    expect(isPlausibleKey(DEV_API_KEY)).toBe(true);
  });

  it("hashes with SHA-256 (the value scripts and the worker agree on)", async () => {
    expect(await hashKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("refuses implausible tokens before hashing them", () => {
    for (const t of [
      "",
      "short",
      "a".repeat(LIMITS.apiKeyLength.max + 1),
      "has space inside it",
      "semi;colon;token!",
    ]) {
      expect(isPlausibleKey(t), t).toBe(false);
    }
  });

  it("validates stored records", async () => {
    const hash = await hashKey("et_some_key_for_the_record");
    const r = newRecord(hash, "ci", "bulk", new Date("2026-01-02T03:04:05Z"));
    expect(r).toEqual({ id: hash.slice(0, 16), name: "ci", created: "2026-01-02T03:04:05.000Z", rate: "bulk" });
    expect(ApiKeyRecord.parse({ id: r.id, name: "x", created: r.created }).rate).toBe("standard");
    for (const bad of [
      { ...r, id: "XYZ" },
      { ...r, name: "" },
      { ...r, created: "yesterday" },
      { ...r, rate: "infinite" },
      { ...r, revoked: "soon" },
    ]) {
      expect(ApiKeyRecord.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("parses the API_KEY_HASHES secret, skipping (and reporting) malformed entries", () => {
    const a = "a".repeat(64);
    const b = "B".repeat(64);
    const { entries, errors } = parseHashList(` ${a} ,${b}:bulk,,nothex,${"c".repeat(64)}:infinite, `);
    expect(entries).toEqual([
      { hash: a, rate: "standard" },
      { hash: "b".repeat(64), rate: "bulk" },
    ]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/entry 4/);
    expect(parseHashList(undefined)).toEqual({ entries: [], errors: [] });
  });

  it("keeps only the read-only model catalogue public under /v1", () => {
    expect(isPublic("GET", "/v1/models")).toBe(true);
    expect(isPublic("GET", "/v1/models/")).toBe(true);
    expect(isPublic("HEAD", "/v1/models/mobilenet-v2")).toBe(true);
    for (const [m, p] of [
      ["POST", "/v1/models"],
      ["DELETE", "/v1/models/x"],
      ["GET", "/v1/models/x/weights"],
      ["GET", "/v1/modelsx"],
      ["POST", "/v1/classify"],
      ["GET", "/v1/jobs/x"],
      ["GET", "/v1/tags/a.png"],
      ["GET", "/v1/anything"],
    ]) {
      expect(isPublic(m as string, p as string), `${m} ${p}`).toBe(false);
    }
  });
});

describe("observability helpers", () => {
  it("echoes sane request ids and replaces anything else", () => {
    expect(requestIdFrom("abc-123_X.y:z")).toBe("abc-123_X.y:z");
    for (const bad of [undefined, null, "", "a b", "x".repeat(LIMITS.maxRequestIdLength + 1), "a\nb", "<script>"]) {
      expect(requestIdFrom(bad), String(bad)).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
    }
  });

  it("formats Server-Timing from stage timings, dropping names and values it cannot express", () => {
    expect(serverTiming({ decode: 12.5, infer: 30, "bad name": 1, nan: Number.NaN, neg: -1 }, 50.25)).toBe(
      'decode;dur=12.5, infer;dur=30, request;dur=50.25;desc="worker, whole request"',
    );
    expect(serverTiming(undefined, 1)).toBe('request;dur=1;desc="worker, whole request"');
  });

  it("summarises classify answers, batches and error envelopes from the response", async () => {
    const json = (body: unknown, status = 200) =>
      new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
    const one = { model: { id: "mobilenet-v2" }, cached: false, timings_ms: { decode: 3, infer: 9 }, predictions: [] };
    expect(await summarize(json(one), "/v1/classify")).toEqual({
      model: "mobilenet-v2",
      cache: "miss",
      items: 1,
      stages_ms: { decode: 3, infer: 9 },
    });
    const batch = { results: [one, { ...one, cached: true }, { error: { code: "invalid_image" } }] };
    expect(await summarize(json(batch), "/v1/classify/batch")).toEqual({
      model: "mobilenet-v2",
      cache: "mixed",
      items: 3,
    });
    expect(await summarize(json({ error: { code: "rate_limited", message: "m" } }, 429), "/v1/jobs")).toEqual({
      error: "rate_limited",
    });
    // Other routes' bodies and non-JSON bodies are not read at all.
    expect(await summarize(json(one), "/v1/jobs")).toEqual({});
    expect(await summarize(new Response("x"), "/v1/classify")).toEqual({});
    expect(await summarize(json("not an object"), "/v1/classify")).toEqual({});
  });

  it("lays out the Analytics Engine data point as documented", () => {
    const point = dataPoint({
      request_id: "r",
      method: "POST",
      route: "/v1/classify",
      status: 200,
      duration_ms: 42,
      key_id: "0123456789abcdef",
      model: "densenet-121",
      cache: "hit",
      items: 1,
      stages_ms: { decode: 5, preprocess: 2, infer: 20 },
    });
    expect(point).toEqual({
      indexes: ["0123456789abcdef"],
      blobs: ["/v1/classify", "POST", "densenet-121", "hit", ""],
      doubles: [200, 42, 1, 1, 0, 0, 5, 2, 20],
    });
    const failed = dataPoint({
      request_id: "r",
      method: "GET",
      route: "(unmatched)",
      status: 503,
      duration_ms: 1,
      error: "model_unavailable",
    });
    expect(failed.indexes).toEqual(["anonymous"]);
    expect(failed.blobs?.[4]).toBe("model_unavailable");
    expect(failed.doubles?.slice(2, 6)).toEqual([0, 0, 0, 1]);
  });
});

describe("VerifiedKeyCache", () => {
  const key = (id: string) => ({ id, name: id, rate: "standard" as const, source: "kv" as const });

  it("answers until its TTL has passed, then forgets", () => {
    let now = 1_000;
    const cache = new VerifiedKeyCache(30_000, 10, () => now);
    cache.set("h1", key("a"));
    now += 29_999;
    expect(cache.get("h1")).toEqual(key("a"));
    now += 1;
    expect(cache.get("h1")).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("holds at most maxEntries, dropping the least recently verified", () => {
    let now = 0;
    const cache = new VerifiedKeyCache(30_000, 2, () => now);
    cache.set("h1", key("a"));
    cache.set("h2", key("b"));
    now = 10;
    cache.set("h1", key("a")); // verified again: now the newest
    cache.set("h3", key("c"));
    expect([cache.get("h1")?.id, cache.get("h2")?.id, cache.get("h3")?.id]).toEqual(["a", undefined, "c"]);
  });

  it("the revocation bound is the two TTLs together, one minute", () => {
    expect(LIMITS.apiKeyIsolateCacheSeconds + LIMITS.apiKeyCacheTtlSeconds).toBeLessThanOrEqual(60);
    // KV refuses a cacheTtl under 30 s.
    expect(LIMITS.apiKeyCacheTtlSeconds).toBeGreaterThanOrEqual(30);
  });
});
