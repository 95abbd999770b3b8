/**
 * The API surface inside workerd with the real local R2, KV, Queues and DOs:
 * the OpenAPI document (every route in it, every real response valid against
 * it), /docs, model details, embeddings, sync batches and the input
 * conveniences (JSON base64/url bodies, min_score, ETag / 304).
 */
import { env, SELF as keylessSelf } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { app } from "../../src/app";
import { cachedVector, cacheKey, readCache } from "../../src/cache";
import { resultEtag } from "../../src/http/conditional";
import { getModel, listModels, type RegisteredModel } from "../../src/models/registry";
import { ensureCodecs } from "../../src/pipeline/codecs/wasm";
import { decodeImage } from "../../src/pipeline/decode";
import { embed } from "../../src/services/embed";
import { authedSelf as SELF } from "./support/auth";
import { embeddingTolerance } from "./support/tolerance";

const BASE = "http://edgetag.test";

async function repoFile(path: string): Promise<Uint8Array> {
  const res = await env.REFERENCE.fetch(`http://reference/files/${path}`);
  if (!res.ok) throw new Error(`reference service: ${path}: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

const image = (name: string) => repoFile(`test/fixtures/images/${name}`);

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// ------------------------------------------------------------ the spec --

interface Spec {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object> };
}
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}

let spec: Spec;
let defs: Record<string, unknown>;
/** "METHOD /spec/path STATUS" of every real response checked against the spec. */
const validated = new Set<string>();

/**
 * Every object schema with `properties` and no `additionalProperties` is made
 * closed, so a response carrying a field the spec does not document fails
 * too (a drift the handler's TypeScript types would not catch).
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== "object" || schema === null) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === "example" || k === "default" ? v : closed(v);
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  if (typeof out.$ref === "string") out.$ref = out.$ref.replace("#/components/schemas/", "#/$defs/");
  return out;
}

function validatorFor(schema: object) {
  return z.fromJSONSchema({ ...(closed(schema) as object), $defs: defs } as Parameters<typeof z.fromJSONSchema>[0]);
}

/** The response's status and content type must be declared for the operation, and its body must match the schema. */
async function checked(res: Response, method: string, specPath: string): Promise<unknown> {
  const op = spec.paths[specPath]?.[method.toLowerCase()];
  expect(op, `${method} ${specPath} is in the spec`).toBeDefined();
  const declared = op?.responses[String(res.status)];
  const text = await res.text();
  expect(declared, `${method} ${specPath} declares status ${res.status} (${text.slice(0, 200)})`).toBeDefined();
  validated.add(`${method} ${specPath} ${res.status}`);
  const content = declared?.content;
  if (!content) {
    expect(text, `${res.status} has no body in the spec`).toBe("");
    return undefined;
  }
  const type = (res.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
  const media = content[type];
  expect(media, `${method} ${specPath} ${res.status} declares ${type}`).toBeDefined();
  const validate = validatorFor(media?.schema ?? {});
  const bodies =
    type === "application/x-ndjson"
      ? text
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [JSON.parse(text)];
  for (const body of bodies) {
    const r = validate.safeParse(body);
    expect(r.success, `${method} ${specPath} ${res.status}: ${JSON.stringify(r.error?.issues.slice(0, 3))}`).toBe(true);
  }
  return type === "application/x-ndjson" ? bodies : bodies[0];
}

// --------------------------------------------------------------- helpers --

function send(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
  const { json, ...rest } = init;
  if (json !== undefined) {
    return SELF.fetch(`${BASE}${path}`, {
      method: "POST",
      ...rest,
      body: JSON.stringify(json),
      headers: { "content-type": "application/json", ...(rest.headers as Record<string, string>) },
    });
  }
  return SELF.fetch(`${BASE}${path}`, rest);
}

const raw = (path: string, bytes: Uint8Array, type = "image/jpeg", headers: Record<string, string> = {}) =>
  send(path, { method: "POST", body: bytes, headers: { "content-type": type, ...headers } });

interface ErrorBody {
  error: { code: string; message: string };
}
interface ClassifyBody {
  model: { id: string; trained: boolean; sha256: string };
  predictions: Array<{ label: string; index: number; score: number }>;
  image: { sha256: string; width: number; height: number; format: string };
  cached: boolean;
}
interface EmbedBody {
  model: { id: string; version: string; trained: boolean; sha256: string };
  dim: number;
  embedding: number[];
  image: { sha256: string };
  cached: boolean;
}
interface BatchBody {
  model: { id: string };
  counts: { total: number; succeeded: number; failed: number };
  results: Array<{
    index: number;
    predictions?: ClassifyBody["predictions"];
    image?: { sha256: string };
    error?: { code: string };
  }>;
}

async function expectError(res: Response, method: string, specPath: string, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("etag")).toBeNull();
  const body = (await checked(res, method, specPath)) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  return body;
}

const norm = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

beforeAll(async () => {
  for (const m of listModels()) {
    const { manifest } = m;
    await env.MODELS.put(
      manifest.file.r2Key,
      await repoFile(`models/${manifest.id}/${manifest.file.r2Key.split("/").pop()}`),
    );
  }
  const res = await SELF.fetch(`${BASE}/openapi.json`);
  expect(res.status).toBe(200);
  spec = (await res.json()) as Spec;
  defs = closed(spec.components.schemas) as Record<string, unknown>;
});

// ----------------------------------------------------------------- tests --

describe("OpenAPI 3.1 document and /docs", () => {
  it("is OpenAPI 3.1, and the spec and the router list exactly the same API operations", () => {
    expect(spec.openapi).toBe("3.1.0");
    const routed = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)(\{.*?\})?/g, "{$1}")}`),
    );
    const api = [...routed].filter((r) => / \/v1\//.test(r) || / \/healthz$/.test(r));
    const documented = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(api.length).toBeGreaterThanOrEqual(12);
    expect(documented.sort()).toEqual(api.sort());
    for (const r of ["GET /openapi.json", "GET /docs", "GET /docs/docs.js", "GET /docs/docs.css"])
      expect(routed).toContain(r);
  });

  it("declares bearer auth exactly where the middleware demands a key, and the spec's word matches a real request", async () => {
    const s = spec as unknown as {
      components: { securitySchemes?: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
    };
    expect(s.components.securitySchemes?.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    for (const [path, item] of Object.entries(s.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const url = `${BASE}${path.replace(/\{[^}]+\}/g, "mobilenet-v2")}`;
        // Ask the real worker without a key: 401 iff the spec says the operation needs one.
        const res = await keylessSelf.fetch(url, { method: method.toUpperCase() });
        const guarded = (op.security?.length ?? 0) > 0;
        expect(res.status === 401, `${method.toUpperCase()} ${path}: spec guarded=${guarded}, got ${res.status}`).toBe(
          guarded,
        );
        if (guarded) expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["401", "403", "429"]));
      }
    }
  });

  it("the validator this file uses rejects what the spec forbids (so the checks below can fail)", async () => {
    const res = await raw("/v1/classify?top_k=2", await image("png_rgb8.png"), "image/png");
    const body = (await checked(res, "POST", "/v1/classify")) as Record<string, unknown>;
    const v = validatorFor(
      spec.paths["/v1/classify"]?.post?.responses["200"]?.content?.["application/json"]?.schema ?? {},
    );
    expect(v.safeParse(body).success).toBe(true);
    expect(v.safeParse({ ...body, surprise: 1 }).success).toBe(false);
    expect(v.safeParse({ ...body, cached: "no" }).success).toBe(false);
    const { model: _omitted, ...noModel } = body;
    expect(v.safeParse(noModel).success).toBe(false);
    const err = validatorFor(
      spec.paths["/v1/classify"]?.post?.responses["400"]?.content?.["application/json"]?.schema ?? {},
    );
    expect(err.safeParse({ error: { code: "invalid_parameter", message: "x" } }).success).toBe(true);
    expect(err.safeParse({ error: { code: "made_up", message: "x" } }).success).toBe(false);
  });

  it("/docs is a self-contained page: no third-party URLs, its script reads /openapi.json", async () => {
    const html = await (await SELF.fetch(`${BASE}/docs`)).text();
    expect(html).toContain('<script src="/docs/docs.js"');
    const js = await SELF.fetch(`${BASE}/docs/docs.js`);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    const script = await js.text();
    expect(script).toContain('fetch("/openapi.json")');
    const css = await (await SELF.fetch(`${BASE}/docs/docs.css`)).text();
    for (const text of [html, script, css])
      expect(text).not.toMatch(/(src|href)=["']?(https?:)?\/\/|@import|https?:\/\/(?!example\.com)/);
  });

  it("validation failures keep the error envelope (query, path and JSON body)", async () => {
    await expectError(await send("/v1/jobs/not-a-uuid"), "GET", "/v1/jobs/{id}", 404, "not_found");
    await expectError(
      await send(`/v1/jobs/${crypto.randomUUID()}/results?limit=0`),
      "GET",
      "/v1/jobs/{id}/results",
      400,
      "invalid_parameter",
    );
    await expectError(await send("/v1/jobs", { json: { source: {} } }), "POST", "/v1/jobs", 400, "invalid_parameter");
    await expectError(
      await send("/v1/jobs", { method: "POST", body: "{", headers: { "content-type": "application/json" } }),
      "POST",
      "/v1/jobs",
      400,
      "bad_request",
    );
    await expectError(
      await send("/v1/jobs", { method: "POST", body: "x", headers: { "content-type": "text/plain" } }),
      "POST",
      "/v1/jobs",
      415,
      "unsupported_media_type",
    );
    await expectError(
      await send("/v1/images/bad%20key.png", { method: "PUT", body: "x", headers: { "content-type": "image/png" } }),
      "PUT",
      "/v1/images/{key}",
      400,
      "invalid_parameter",
    );
  });
});

describe("GET /v1/models and /v1/models/:id", () => {
  it("returns the whole manifest but its R2 key, plus trained, embedding and loaded", async () => {
    const list = (await checked(await send("/v1/models"), "GET", "/v1/models")) as { models: Array<{ id: string }> };
    expect(list.models.map((m) => m.id).sort()).toEqual(
      listModels()
        .map((m) => m.manifest.id)
        .sort(),
    );
    for (const m of listModels()) {
      const { manifest } = m;
      const res = await send(`/v1/models/${manifest.id}`);
      const text = await res.clone().text();
      const body = (await checked(res, "GET", "/v1/models/{id}")) as Record<string, unknown>;
      expect(text).not.toContain(manifest.file.r2Key);
      expect(text).not.toContain("r2Key");
      expect(body).toMatchObject({
        id: manifest.id,
        version: manifest.version,
        name: manifest.name,
        description: manifest.description,
        architecture: manifest.architecture,
        trained: manifest.trained,
        license: manifest.license,
        source: manifest.source,
        file: { sha256: manifest.file.sha256, bytes: manifest.file.bytes },
        input: manifest.input,
        preprocess: manifest.preprocess,
        output: manifest.output,
        labels: { set: manifest.labels, count: manifest.numClasses },
        stats: manifest.stats,
        quantization: manifest.quantization,
        embedding: { available: !!manifest.output.features, dim: manifest.output.features?.dim ?? null },
      });
      expect(body.fidelity).toEqual(manifest.fidelity);
      expect(typeof body.loaded).toBe("boolean");
      if (!manifest.trained) expect(manifest.name).toMatch(/untrained/i);
    }
    await expectError(await send("/v1/models/resnet-9000"), "GET", "/v1/models/{id}", 404, "unknown_model");
  });

  it("reports loaded once a model has served", async () => {
    await raw("/v1/classify?model=mobilenet-v2", await image("png_1x1.png"), "image/png");
    const body = (await checked(await send("/v1/models/mobilenet-v2"), "GET", "/v1/models/{id}")) as {
      loaded: boolean;
    };
    expect(body.loaded).toBe(true);
  });
});

describe("input conveniences on POST /v1/classify", () => {
  it("a JSON base64 body, a data: URL, URL-safe base64 and a JSON url all give the raw upload's answer", async () => {
    const bytes = await image("jpeg_baseline_420.jpg");
    const sha = await sha256(bytes);
    const viaRaw = (await checked(await raw("/v1/classify?top_k=4", bytes), "POST", "/v1/classify")) as ClassifyBody;
    expect(viaRaw.image.sha256).toBe(sha);
    const b64 = base64(bytes);
    const urlSafe = b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(urlSafe).not.toBe(b64); // the fixture's base64 really uses + or / or padding
    for (const json of [
      { image: b64 },
      { image: `data:image/jpeg;base64,${b64}` },
      { image: urlSafe },
      { image: b64.replace(/(.{76})/g, "$1\n") },
      { url: "http://images.test/jpeg_baseline_420.jpg" },
    ]) {
      const body = (await checked(
        await send("/v1/classify?top_k=4", { json }),
        "POST",
        "/v1/classify",
      )) as ClassifyBody;
      expect(body.image.sha256, JSON.stringify(json).slice(0, 60)).toBe(sha);
      expect(body.predictions).toEqual(viaRaw.predictions);
    }
    const form = new FormData();
    form.append("url", "http://images.test/jpeg_baseline_420.jpg");
    const viaForm = (await checked(
      await send("/v1/classify?top_k=4", { method: "POST", body: form }),
      "POST",
      "/v1/classify",
    )) as ClassifyBody;
    expect(viaForm.predictions).toEqual(viaRaw.predictions);
  });

  it("bad JSON bodies are 400s that say what is wrong", async () => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ image: "abc$" }, 400, "invalid_parameter", /base64/],
      [{ image: "a" }, 400, "invalid_parameter", /base64/],
      [{ image: "ab=c" }, 400, "invalid_parameter", /base64/],
      [{ image: "" }, 400, "invalid_parameter", /image/],
      [{ image: "====" }, 400, "invalid_parameter", /base64/],
      [{ image: "aGk", url: "http://images.test/x.jpg" }, 400, "invalid_parameter", /not both/],
      [{}, 400, "invalid_parameter", /neither/],
      [[{ image: "aGk=" }], 400, "invalid_parameter", /object/],
      [{ image: 42 }, 400, "invalid_parameter", /image/],
      [{ url: "ftp://images.test/x.jpg" }, 400, "invalid_parameter", /http/],
      [{ url: "not a url" }, 400, "invalid_parameter", /url/],
      [{ image: "aGk=", extra: 1 }, 400, "invalid_parameter", /./],
      [{ image: base64(new TextEncoder().encode("hello, not an image")) }, 415, "unsupported_media_type", /./],
    ];
    for (const [json, status, code, message] of cases) {
      const body = await expectError(await send("/v1/classify", { json }), "POST", "/v1/classify", status, code);
      expect(body.error.message, JSON.stringify(json)).toMatch(message);
    }
    await expectError(
      await send("/v1/classify", { method: "POST", body: "{nope", headers: { "content-type": "application/json" } }),
      "POST",
      "/v1/classify",
      400,
      "bad_request",
    );
    await expectError(
      await send("/v1/classify", { method: "POST", body: "<x/>", headers: { "content-type": "application/xml" } }),
      "POST",
      "/v1/classify",
      415,
      "unsupported_media_type",
    );
  });

  it("URL inputs: an origin 404 is a 422, a failing origin a 502, an oversized body a 413", async () => {
    await expectError(
      await send("/v1/classify", { json: { url: "http://images.test/missing.jpg" } }),
      "POST",
      "/v1/classify",
      422,
      "source_fetch_failed",
    );
    await expectError(
      await send("/v1/classify", { json: { url: "http://flaky.test/png_gray8.png" } }),
      "POST",
      "/v1/classify",
      502,
      "source_unavailable",
    );
    // flaky.test fails only once per URL: the retry works.
    const ok = await send("/v1/classify", { json: { url: "http://flaky.test/png_gray8.png" } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("public, max-age=300");
    await checked(ok, "POST", "/v1/classify");
    await expectError(
      await send("/v1/classify", { json: { url: "http://big.test/huge.jpg" } }),
      "POST",
      "/v1/classify",
      413,
      "payload_too_large",
    );
  });

  it("min_score drops low predictions after top_k, and is validated", async () => {
    const bytes = await image("png_rgb8.png");
    const all = (await checked(
      await raw("/v1/classify?model=mobilenet-v2-nsfw&top_k=5", bytes, "image/png"),
      "POST",
      "/v1/classify",
    )) as ClassifyBody;
    expect(all.predictions).toHaveLength(5);
    const cut = ((all.predictions[1]?.score ?? 0) + (all.predictions[2]?.score ?? 0)) / 2;
    const some = (await checked(
      await raw(`/v1/classify?model=mobilenet-v2-nsfw&top_k=5&min_score=${cut}`, bytes, "image/png"),
      "POST",
      "/v1/classify",
    )) as ClassifyBody;
    expect(some.predictions).toEqual(all.predictions.slice(0, 2));
    const none = (await checked(
      await raw("/v1/classify?model=mobilenet-v2-nsfw&min_score=1", bytes, "image/png"),
      "POST",
      "/v1/classify",
    )) as ClassifyBody;
    expect(none.predictions).toEqual(all.predictions.filter((p) => p.score >= 1));
    for (const q of ["min_score=-0.1", "min_score=1.5", "min_score=abc"]) {
      await expectError(
        await raw(`/v1/classify?${q}`, bytes, "image/png"),
        "POST",
        "/v1/classify",
        400,
        "invalid_parameter",
      );
    }
  });

  it("ETag + Cache-Control on results; If-None-Match answers 304 before any inference", async () => {
    const bytes = await image("jpeg_progressive.jpg");
    const first = await raw("/v1/classify?top_k=3", bytes);
    const etag = first.headers.get("etag") as string;
    expect(etag).toMatch(/^"[0-9a-f]{40}"$/); // strong: no W/
    expect(first.headers.get("cache-control")).toBe(`public, max-age=${env.CACHE_TTL_SECONDS}`);
    await checked(first, "POST", "/v1/classify");

    // Same image and parameters, any body form: same tag. Other parameters or model: another tag.
    const again = await send("/v1/classify?top_k=3", { json: { image: base64(bytes) } });
    expect(again.headers.get("etag")).toBe(etag);
    const tags = new Set([etag]);
    for (const q of ["top_k=4", "top_k=3&min_score=0.1", "top_k=3&model=densenet-121"]) {
      tags.add((await raw(`/v1/classify?${q}`, bytes)).headers.get("etag") as string);
    }
    expect(tags.size).toBe(4);

    for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, "*"]) {
      const res = await raw("/v1/classify?top_k=3", bytes, "image/jpeg", { "if-none-match": inm });
      expect(res.status, inm).toBe(304);
      expect(res.headers.get("etag")).toBe(etag);
      expect(res.headers.get("cache-control")).toBe(`public, max-age=${env.CACHE_TTL_SECONDS}`);
      await checked(res, "POST", "/v1/classify");
    }
    const stale = await raw("/v1/classify?top_k=3", bytes, "image/jpeg", { "if-none-match": '"0000"' });
    expect(stale.status).toBe(200);

    // A 304 costs a hash, not an inference: nothing gets cached for an image only ever answered 304.
    const fresh = await image("png_palette_trns.png");
    const model = getModel("densenet-121");
    const tag = await resultEtag("classify", await sha256(fresh), model, { top_k: 5, min_score: 0 });
    const res = await raw("/v1/classify?model=densenet-121", fresh, "image/png", { "if-none-match": tag });
    expect(res.status).toBe(304);
    await new Promise((r) => setTimeout(r, 300)); // room for a (wrongly) scheduled cache write to land
    expect(await env.RESULTS.get(cacheKey(model, await sha256(fresh)))).toBeNull();
    const full = (await (await raw("/v1/classify?model=densenet-121", fresh, "image/png")).json()) as ClassifyBody;
    expect(full.cached).toBe(false);
  });
});

describe("POST /v1/classify/batch", () => {
  it("multipart: files and URLs in order, per-item errors that spare the others", async () => {
    const names = ["jpeg_baseline_420.jpg", "png_rgb8.png", "webp_lossy.webp"];
    const files = await Promise.all(names.map(image));
    const form = new FormData();
    form.append("image", new File([files[0] as Uint8Array], names[0] as string));
    form.append("url", "http://images.test/png_adam7.png");
    form.append("image", new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])], "broken.png"));
    form.append("image", new File([files[1] as Uint8Array], names[1] as string));
    form.append("url", "http://images.test/missing.jpg");
    form.append("image", new File([files[2] as Uint8Array], names[2] as string));
    form.append("image", new File([], "empty.jpg"));
    const res = await send("/v1/classify/batch?top_k=3", { method: "POST", body: form });
    expect(res.status).toBe(200);
    const body = (await checked(res, "POST", "/v1/classify/batch")) as BatchBody;
    expect(body.model.id).toBe("mobilenet-v2");
    expect(body.counts).toEqual({ total: 7, succeeded: 4, failed: 3 });
    expect(body.results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(body.results.map((r) => r.error?.code ?? "ok")).toEqual([
      "ok",
      "ok",
      "invalid_image",
      "ok",
      "source_fetch_failed",
      "ok",
      "empty_body",
    ]);
    // Each success is exactly what a single classify of that image answers.
    const singles = [files[0], await image("png_adam7.png"), undefined, files[1], undefined, files[2]];
    for (const [i, bytes] of singles.entries()) {
      if (!bytes) continue;
      const one = (await (await raw("/v1/classify?top_k=3", bytes, "application/octet-stream")).json()) as ClassifyBody;
      expect(body.results[i]?.predictions, `item ${i}`).toEqual(one.predictions);
      expect(body.results[i]?.image?.sha256).toBe(await sha256(bytes));
    }
  });

  it("JSON: base64 and url items, bad items fail alone", async () => {
    const bytes = await image("png_gray8.png");
    const res = await send("/v1/classify/batch?model=mobilenet-v2-nsfw&top_k=2&min_score=0.01", {
      json: {
        images: [
          { image: base64(bytes) },
          { image: "%%%" },
          { url: "http://images.test/jpeg_gray.jpg" },
          { image: base64(bytes), url: "http://images.test/jpeg_gray.jpg" },
          {},
          "just a string",
          { url: "file:///etc/passwd" },
        ],
      },
    });
    const body = (await checked(res, "POST", "/v1/classify/batch")) as BatchBody;
    expect(body.results.map((r) => r.error?.code ?? "ok")).toEqual([
      "ok",
      "invalid_parameter",
      "ok",
      "invalid_parameter",
      "invalid_parameter",
      "invalid_parameter",
      "invalid_parameter",
    ]);
    expect(body.counts).toEqual({ total: 7, succeeded: 2, failed: 5 });
    for (const r of body.results.filter((x) => x.predictions)) {
      expect(r.predictions?.length).toBeLessThanOrEqual(2);
      for (const p of r.predictions ?? []) expect(p.score).toBeGreaterThanOrEqual(0.01);
    }
  });

  it("refuses whole batches that are malformed: too many, none, wrong envelope, unknown model", async () => {
    const tiny = await image("png_1x1.png");
    const seventeen = Array.from({ length: 17 }, () => ({ image: base64(tiny) }));
    const tooMany = await expectError(
      await send("/v1/classify/batch", { json: { images: seventeen } }),
      "POST",
      "/v1/classify/batch",
      400,
      "invalid_parameter",
    );
    expect(tooMany.error.message).toMatch(/16/);
    const form = new FormData();
    for (let i = 0; i < 17; i++) form.append("image", new File([tiny], `${i}.png`));
    await expectError(
      await send("/v1/classify/batch", { method: "POST", body: form }),
      "POST",
      "/v1/classify/batch",
      400,
      "invalid_parameter",
    );
    const sixteen = (await checked(
      await send("/v1/classify/batch", { json: { images: seventeen.slice(1) } }),
      "POST",
      "/v1/classify/batch",
    )) as BatchBody;
    expect(sixteen.counts).toEqual({ total: 16, succeeded: 16, failed: 0 });

    await expectError(
      await send("/v1/classify/batch", { json: { images: [] } }),
      "POST",
      "/v1/classify/batch",
      400,
      "invalid_parameter",
    );
    await expectError(
      await send("/v1/classify/batch", { json: [{ image: "aGk=" }] }),
      "POST",
      "/v1/classify/batch",
      400,
      "invalid_parameter",
    );
    await expectError(
      await send("/v1/classify/batch", { json: { images: [{ image: "aGk=" }], extra: true } }),
      "POST",
      "/v1/classify/batch",
      400,
      "invalid_parameter",
    );
    const odd = new FormData();
    odd.append("picture", new File([tiny], "a.png"));
    await expectError(
      await send("/v1/classify/batch", { method: "POST", body: odd }),
      "POST",
      "/v1/classify/batch",
      400,
      "bad_request",
    );
    await expectError(
      await raw("/v1/classify/batch", tiny, "image/png"),
      "POST",
      "/v1/classify/batch",
      415,
      "unsupported_media_type",
    );
    await expectError(
      await send("/v1/classify/batch?model=nope", { json: { images: [{ image: base64(tiny) }] } }),
      "POST",
      "/v1/classify/batch",
      404,
      "unknown_model",
    );
    await expectError(
      await send("/v1/classify/batch?top_k=0", { json: { images: [{ image: base64(tiny) }] } }),
      "POST",
      "/v1/classify/batch",
      400,
      "invalid_parameter",
    );
  });
});

describe("POST /v1/embed", () => {
  const embeddable = () => listModels().filter((m) => m.manifest.output.features);

  it("refuses models that cannot embed (HTTP and service), and unknown models, before touching the image", async () => {
    const tiny = await image("png_1x1.png");
    await expectError(
      await raw("/v1/embed?model=resnet-9000", tiny, "image/png"),
      "POST",
      "/v1/embed",
      404,
      "unknown_model",
    );
    for (const m of listModels().filter((x) => !x.manifest.output.features)) {
      const body = await expectError(
        await raw(`/v1/embed?model=${m.manifest.id}`, tiny, "image/png"),
        "POST",
        "/v1/embed",
        400,
        "embedding_unavailable",
      );
      expect(body.error.message).toContain(m.manifest.id);
    }
    // Whatever the catalog holds, a model without a features output is refused by the service itself.
    const real = getModel("mobilenet-v2");
    const { features: _dropped, ...output } = real.manifest.output;
    const featureless: RegisteredModel = {
      ...real,
      manifest: { ...real.manifest, id: "no-features", output },
      versionKey: "no-features@t",
    };
    await expect(
      embed({ bytes: tiny, model: featureless }, { models: env.MODELS, cacheTtlSeconds: 60, waitUntil: () => {} }),
    ).rejects.toMatchObject({
      status: 400,
      code: "embedding_unavailable",
    });
    // The body is not even read: garbage after a featureless or unknown model is still that error.
    await expectError(
      await raw("/v1/embed?model=resnet-9000", new Uint8Array(0)),
      "POST",
      "/v1/embed",
      404,
      "unknown_model",
    );
  });

  it("every model with a features output embeds: unit norm, the manifest's dim, stable, cached, and matches onnxruntime-node", async () => {
    const models = embeddable();
    expect(models.length, "models whose manifest names output.features").toBeGreaterThan(0);
    await ensureCodecs();
    const names = ["jpeg_baseline_420.jpg", "png_rgba8.png", "webp_lossy.webp"];
    for (const m of models) {
      const dim = m.manifest.output.features?.dim as number;
      for (const name of names) {
        const bytes = await image(name);
        const res = await raw(`/v1/embed?model=${m.manifest.id}`, bytes, "application/octet-stream");
        const etag = res.headers.get("etag");
        const body = (await checked(res, "POST", "/v1/embed")) as EmbedBody;
        const what = `${m.manifest.id} ${name}`;
        expect(body.model).toMatchObject({
          id: m.manifest.id,
          trained: m.manifest.trained,
          sha256: m.manifest.file.sha256,
        });
        expect(body.dim, what).toBe(dim);
        expect(body.embedding, what).toHaveLength(dim);
        expect(Math.abs(norm(body.embedding) - 1), what).toBeLessThan(1e-5);
        expect(body.image.sha256).toBe(await sha256(bytes));

        // Identical image -> identical vector: the cached copy, a JSON upload, and a fresh inference.
        await vi.waitFor(
          async () => {
            const entry = await readCache(env.RESULTS, cacheKey(m, body.image.sha256));
            expect(entry && cachedVector(entry, dim)).toEqual(Float32Array.from(body.embedding));
          },
          { timeout: 5000 },
        );
        const again = (await checked(
          await send(`/v1/embed?model=${m.manifest.id}`, { json: { image: base64(bytes) } }),
          "POST",
          "/v1/embed",
        )) as EmbedBody;
        expect(again.cached).toBe(true);
        expect(again.embedding).toEqual(body.embedding);
        const uncached = await embed(
          { bytes, model: m },
          { models: env.MODELS, cacheTtlSeconds: 60, waitUntil: () => {} },
        );
        expect(uncached.cached).toBe(false);
        expect(uncached.embedding).toEqual(body.embedding);

        // 304 like classify.
        const nm = await raw(`/v1/embed?model=${m.manifest.id}`, bytes, "application/octet-stream", {
          "if-none-match": etag as string,
        });
        expect(nm.status).toBe(304);

        // Independent reference on the worker's decoded pixels.
        const decoded = await decodeImage(bytes, { maxPixels: 1 << 26 });
        const q = `model=${m.manifest.id}&width=${decoded.width}&height=${decoded.height}&orientation=${decoded.orientation}`;
        const ref = await env.REFERENCE.fetch(`http://reference/reference?${q}`, {
          method: "POST",
          body: decoded.data,
        });
        expect(ref.status, await ref.clone().text()).toBe(200);
        const { embedding: expected } = (await ref.json()) as { embedding?: number[] };
        expect(expected, "the reference returns the features output").toHaveLength(dim);
        const maxDelta = Math.max(...body.embedding.map((v, i) => Math.abs(v - (expected?.[i] as number))));
        const cosine = dot(body.embedding, expected as number[]);
        console.log(`embed parity ${what}: cosine ${cosine.toFixed(7)}, max |Δ| ${maxDelta.toExponential(1)}`);
        const tolerance = embeddingTolerance(m.manifest); // int8-activation models: see support/tolerance.ts
        expect(cosine, what).toBeGreaterThan(tolerance.minCosine);
        expect(maxDelta, what).toBeLessThan(tolerance.maxDelta);
      }
      // Different images embed differently.
      const a = (await (
        await raw(`/v1/embed?model=${m.manifest.id}`, await image(names[0] as string))
      ).json()) as EmbedBody;
      const b = (await (
        await raw(`/v1/embed?model=${m.manifest.id}`, await image(names[2] as string), "image/webp")
      ).json()) as EmbedBody;
      expect(dot(a.embedding, b.embedding)).toBeLessThan(0.9999);
    }
  });

  it("one inference serves both: a classification caches the embedding too, in one entry, and vice versa", async () => {
    const [m] = embeddable();
    expect(m).toBeDefined();
    const model = m as RegisteredModel;
    const dim = model.manifest.output.features?.dim as number;
    const one = await image("png_gray16.png");
    const cls = (await (await raw(`/v1/classify?model=${model.manifest.id}`, one, "image/png")).json()) as ClassifyBody;
    expect(cls.cached).toBe(false);
    await vi.waitFor(
      async () => {
        const entry = await readCache(env.RESULTS, cacheKey(model, cls.image.sha256));
        expect(entry?.predictions.slice(0, cls.predictions.length)).toEqual(cls.predictions);
        expect(entry && cachedVector(entry, dim)).toHaveLength(dim);
      },
      { timeout: 5000 },
    );
    // One key per (model build, image): a miss is one KV write.
    const keys = await env.RESULTS.list({ prefix: `res:v2:${model.manifest.id}:` });
    expect(keys.keys.filter((k) => k.name.endsWith(cls.image.sha256))).toHaveLength(1);
    const emb = (await (await raw(`/v1/embed?model=${model.manifest.id}`, one, "image/png")).json()) as EmbedBody;
    expect(emb.cached).toBe(true);

    const two = await image("png_rgb16.png");
    const first = (await (await raw(`/v1/embed?model=${model.manifest.id}`, two, "image/png")).json()) as EmbedBody;
    expect(first.cached).toBe(false);
    await vi.waitFor(async () => expect(await env.RESULTS.get(cacheKey(model, first.image.sha256))).not.toBeNull(), {
      timeout: 5000,
    });
    const second = (await (
      await raw(`/v1/classify?model=${model.manifest.id}`, two, "image/png")
    ).json()) as ClassifyBody;
    expect(second.cached).toBe(true);
  });
});

describe("the rest of the API answers as its spec says", () => {
  it("health, images, tags and a small job", async () => {
    await checked(await send("/healthz"), "GET", "/healthz");
    await checked(await send("/healthz?deep=1"), "GET", "/healthz");

    const png = await image("png_rgb8.png");
    const put = await send("/v1/images/surface/a.png", {
      method: "PUT",
      body: png,
      headers: { "content-type": "image/png" },
    });
    expect(put.status).toBe(201);
    await checked(put, "PUT", "/v1/images/{key}");
    await expectError(await send("/v1/tags/surface/none.png"), "GET", "/v1/tags/{key}", 404, "not_found");
    await env.IMAGE_EVENTS.send({ bucket: "edgetag-images", action: "PutObject", object: { key: "surface/a.png" } });
    await vi.waitFor(async () => expect((await send("/v1/tags/surface/a.png")).status).toBe(200), {
      timeout: 20_000,
      interval: 200,
    });
    await checked(await send("/v1/tags/surface/a.png"), "GET", "/v1/tags/{key}");

    const created = await send("/v1/jobs", {
      json: {
        model: "mobilenet-v2",
        top_k: 2,
        source: { urls: ["http://images.test/png_1x1.png", "http://images.test/missing.png"], keys: ["surface/a.png"] },
      },
    });
    const job = (await checked(created, "POST", "/v1/jobs")) as { id: string };
    await vi.waitFor(
      async () => expect(((await (await send(`/v1/jobs/${job.id}`)).json()) as { state: string }).state).toBe("done"),
      { timeout: 30_000, interval: 250 },
    );
    await checked(await send(`/v1/jobs/${job.id}`), "GET", "/v1/jobs/{id}");
    const lines = (await checked(
      await send(`/v1/jobs/${job.id}/results`),
      "GET",
      "/v1/jobs/{id}/results",
    )) as unknown[];
    expect(lines).toHaveLength(3);
    await checked(await send(`/v1/jobs/${job.id}`, { method: "DELETE" }), "DELETE", "/v1/jobs/{id}");
  });

  it("every operation in the spec had a real 2xx response validated above", () => {
    const ops = Object.entries(spec.paths).flatMap(([path, item]) =>
      Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const missing = ops.filter((op) => ![...validated].some((v) => v.startsWith(`${op} 2`)));
    expect(missing).toEqual([]);
    // And the error envelope was checked on most of them.
    expect([...validated].filter((v) => / 4\d\d$/.test(v)).length).toBeGreaterThanOrEqual(10);
  });
});
