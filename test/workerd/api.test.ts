/**
 * The worker end to end inside workerd, with the real local R2 and KV bindings
 * seeded with the real committed model files. One file on purpose: every
 * workerd test file pays ~15 s to import ORT's 14 MB wasm.
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { cacheKey, readCache, writeCache } from "../../src/cache";
import { initOrt, sessionOptions, warmUpInt8 } from "../../src/inference/ort";
import { getModel, listModels } from "../../src/models/registry";
import { ensureCodecs } from "../../src/pipeline/codecs/wasm";
import { decodeImage, decodeImageWithInfo } from "../../src/pipeline/decode";
import { authedSelf as SELF } from "./support/auth";
import { int8Activations, probabilityTolerance } from "./support/tolerance";

const BASE = "http://edgetag.test";

interface Fixture {
  name: string;
  file: string;
  format: string;
  width: number;
  height: number;
  orientation: number;
}

interface ClassifyBody {
  model: { id: string; version: string; trained: boolean; sha256: string };
  predictions: Array<{ label: string; index: number; score: number }>;
  image: { sha256: string; width: number; height: number; format: string };
  cached: boolean;
  timings_ms: Record<string, number>;
}

interface ErrorBody {
  error: { code: string; message: string };
}

async function repoFile(path: string): Promise<Uint8Array> {
  const res = await env.REFERENCE.fetch(`http://reference/files/${path}`);
  if (!res.ok) throw new Error(`reference service: ${path}: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

async function seedModel(id: string): Promise<void> {
  const { manifest } = getModel(id);
  const bytes = await repoFile(`models/${id}/${manifest.file.r2Key.split("/").pop()}`);
  await env.MODELS.put(manifest.file.r2Key, bytes);
}

let fixtures: Fixture[] = [];
const fixtureBytes = new Map<string, Uint8Array>();

async function fixture(name: string): Promise<{ entry: Fixture; bytes: Uint8Array }> {
  const entry = fixtures.find((f) => f.name === name);
  if (!entry) throw new Error(`no fixture ${name}`);
  let bytes = fixtureBytes.get(name);
  if (!bytes) {
    bytes = await repoFile(`test/fixtures/images/${entry.file}`);
    fixtureBytes.set(name, bytes);
  }
  return { entry, bytes };
}

const MIME: Record<string, string> = { jpeg: "image/jpeg", png: "image/png", webp: "image/webp" };

function post(path: string, body: BodyInit | null, contentType?: string, headers: Record<string, string> = {}) {
  return SELF.fetch(`${BASE}${path}`, {
    method: "POST",
    body,
    headers: contentType ? { "content-type": contentType, ...headers } : headers,
  });
}

async function classifyFixture(name: string, query: string): Promise<{ status: number; body: ClassifyBody }> {
  const { entry, bytes } = await fixture(name);
  const res = await post(`/v1/classify?${query}`, bytes, MIME[entry.format]);
  return { status: res.status, body: (await res.json()) as ClassifyBody };
}

async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  return body;
}

beforeAll(async () => {
  const index = JSON.parse(new TextDecoder().decode(await repoFile("test/fixtures/images/index.json")));
  fixtures = Array.isArray(index) ? index : index.images;
  expect(fixtures.length).toBeGreaterThan(5);
  for (const m of listModels()) await seedModel(m.manifest.id);
});

describe("a cold model whose file is missing", () => {
  // First in the file, so densenet-121 has never been loaded in this isolate.
  it("answers 503 JSON with Retry-After over HTTP, keeps other models serving, and recovers", async () => {
    const { manifest } = getModel("densenet-121");
    const saved = await env.MODELS.get(manifest.file.r2Key);
    const bytes = new Uint8Array(await (saved as R2ObjectBody).arrayBuffer());
    await env.MODELS.delete(manifest.file.r2Key);

    const { bytes: jpeg } = await fixture("jpeg_baseline_420");
    const res = await post("/v1/classify?model=densenet-121", jpeg, "image/jpeg");
    const body = await expectError(res, 503, "model_unavailable");
    expect(body.error.message).toContain(manifest.file.r2Key);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await SELF.fetch(`${BASE}/healthz?deep=1`)).status).toBe(503);

    const other = await post("/v1/classify?model=mobilenet-v2", jpeg, "image/jpeg");
    expect(other.status).toBe(200);

    await env.MODELS.put(manifest.file.r2Key, bytes);
    await new Promise((r) => setTimeout(r, 2100)); // the first back-off window
    const healed = await post("/v1/classify?model=densenet-121", jpeg, "image/jpeg");
    expect(healed.status).toBe(200);
  });
});

describe("ORT adapter inside workerd", () => {
  it("initialises onnxruntime-web from the pre-compiled wasm module and passes its self-test", async () => {
    const info = await initOrt();
    expect(info.ortVersion).toBe("1.30.0");
    // The glue asked for a shared memory and got a non-shared one (the patched module needs it), and
    // what init swapped out for that is back.
    expect(info.unsharedMemory).toBe(true);
    expect(new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(typeof (Atomics as { waitAsync?: unknown }).waitAsync).toBe("function");
    // Memoised: later calls return the same result instead of initialising again.
    const [a, b] = await Promise.all([initOrt(), initOrt()]);
    expect(a).toBe(info);
    expect(b).toBe(info);
  });

  it("runs the int8 warm-up (QLinearConv, uint8 MaxPool) with its independently checked output, once", async () => {
    // warmUpInt8() throws unless every run returns exactly the output NumPy and onnxruntime-node gave.
    const first = warmUpInt8();
    expect(warmUpInt8()).toBe(first); // memoised: concurrent cold loads share one warm-up
    await expect(first).resolves.toBeUndefined();
    // The models whose graphs run integer kernels ask for it (test/node/quantize.test.ts checks the files).
    expect(getModel("densenet-121").manifest.runtime?.warmup).toBe("int8");
    expect(getModel("mobilenet-v2-nsfw").manifest.runtime?.warmup).toBe("int8");
    expect(getModel("mobilenet-v2").manifest.runtime?.warmup).toBeUndefined();
  });

  it("builds each model's session as its manifest's runtime block says", () => {
    expect(sessionOptions()).toEqual({ executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    // DenseNet-121's file is already optimised offline (manifest runtime.preoptimized).
    const densenet = getModel("densenet-121").manifest.runtime;
    expect(densenet?.graphOptimizationLevel).toBe("disabled");
    expect(sessionOptions(densenet)).toEqual({ executionProviders: ["wasm"], graphOptimizationLevel: "disabled" });
    expect(sessionOptions(getModel("mobilenet-v2").manifest.runtime)).toEqual({
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
      extra: { "session.disable_quant_qdq": "1" },
    });
  });
});

describe("service endpoints", () => {
  it("GET /healthz answers ok without touching models", async () => {
    const res = await SELF.fetch(`${BASE}/healthz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; ort: string; models: Array<{ id: string }> };
    expect(body.status).toBe("ok");
    expect(body.ort).toBe("1.30.0");
    expect(body.models.map((m) => m.id).sort()).toEqual(["densenet-121", "mobilenet-v2", "mobilenet-v2-nsfw"]);
  });

  it("GET /healthz?deep=1 checks the model files in R2", async () => {
    const res = await SELF.fetch(`${BASE}/healthz?deep=1`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { models: Array<{ inStorage: boolean }> };
    expect(body.models.every((m) => m.inStorage)).toBe(true);
  });

  it("GET /v1/models lists every model, the untrained ones labelled untrained", async () => {
    const res = await SELF.fetch(`${BASE}/v1/models`);
    expect(res.status).toBe(200);
    const { models } = (await res.json()) as {
      models: Array<{
        id: string;
        trained: boolean;
        name: string;
        stats: { parameters: number };
        quantization: object;
      }>;
    };
    const byId = Object.fromEntries(models.map((m) => [m.id, m]));
    expect(Object.keys(byId).sort()).toEqual(["densenet-121", "mobilenet-v2", "mobilenet-v2-nsfw"]);
    for (const id of ["mobilenet-v2", "densenet-121"]) {
      expect(byId[id]?.trained).toBe(false);
      expect(byId[id]?.name).toMatch(/untrained/i);
    }
    expect(byId["mobilenet-v2-nsfw"]?.trained).toBe(true);
    expect(byId["mobilenet-v2"]?.stats.parameters).toBe(3_504_872);
    expect(byId["densenet-121"]?.stats.parameters).toBe(7_978_856);
  });

  it("GET /v1/models/:id returns one model and 404s an unknown one", async () => {
    const ok = await SELF.fetch(`${BASE}/v1/models/densenet-121`);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { id: string }).id).toBe("densenet-121");
    await expectError(await SELF.fetch(`${BASE}/v1/models/resnet-9000`), 404, "unknown_model");
  });

  it("unknown routes are JSON 404s", async () => {
    await expectError(await SELF.fetch(`${BASE}/v2/whatever`), 404, "not_found");
  });
});

describe("POST /v1/classify", () => {
  it("classifies a JPEG with MobileNetV2: 5 sorted softmax predictions, image facts and timings", async () => {
    const { status, body } = await classifyFixture("jpeg_baseline_444_odd", "model=mobilenet-v2");
    expect(status).toBe(200);
    expect(body.model).toMatchObject({ id: "mobilenet-v2", trained: false });
    expect(body.model.sha256).toBe(getModel("mobilenet-v2").manifest.file.sha256);
    expect(body.predictions).toHaveLength(5);
    const scores = body.predictions.map((p) => p.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    for (const p of body.predictions) {
      expect(p.score).toBeGreaterThan(0);
      expect(p.score).toBeLessThan(1);
      expect(p.label).toBe(getModel("mobilenet-v2").labels[p.index]);
    }
    const { entry } = await fixture("jpeg_baseline_444_odd");
    expect(body.image).toMatchObject({ width: entry.width, height: entry.height, format: "jpeg" });
    expect(body.image.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(body.cached).toBe(false);
    for (const stage of ["hash", "decode", "preprocess", "infer", "postprocess", "total"]) {
      expect(body.timings_ms[stage], stage).toBeTypeOf("number");
    }
  });

  it("classifies with DenseNet-121 and reports the EXIF-oriented size", async () => {
    const rotated = fixtures.find((f) => f.orientation >= 5 && f.width !== f.height);
    expect(rotated, "a fixture with a transposing EXIF orientation").toBeDefined();
    const { status, body } = await classifyFixture(rotated?.name as string, "model=densenet-121&top_k=3");
    expect(status).toBe(200);
    expect(body.model.id).toBe("densenet-121");
    expect(body.predictions).toHaveLength(3);
    // Displayed size: stored width and height swap for orientations 5..8.
    expect(body.image.width).toBe(rotated?.height);
    expect(body.image.height).toBe(rotated?.width);
  });

  it("serves the second identical request from KV without inference", async () => {
    const first = await classifyFixture("png_rgb8", "model=mobilenet-v2&top_k=7");
    expect(first.status).toBe(200);
    expect(first.body.cached).toBe(false);
    const key = cacheKey(getModel("mobilenet-v2"), first.body.image.sha256);
    // The write happens in waitUntil after the response; wait for it to land.
    await vi.waitFor(async () => expect(await env.RESULTS.get(key)).not.toBeNull(), { timeout: 5000 });

    const second = await classifyFixture("png_rgb8", "model=mobilenet-v2&top_k=7");
    expect(second.status).toBe(200);
    expect(second.body.cached).toBe(true);
    expect(second.body.predictions).toEqual(first.body.predictions);
    expect(second.body.image).toEqual(first.body.image);
    expect(second.body.timings_ms.infer).toBeUndefined();
    // A larger top_k is still a hit: the entry keeps the top 20.
    const wider = await classifyFixture("png_rgb8", "model=mobilenet-v2&top_k=20");
    expect(wider.body.cached).toBe(true);
    expect(wider.body.predictions).toHaveLength(20);
    expect(wider.body.predictions.slice(0, 7)).toEqual(first.body.predictions);
    // Same image, other model: a different key, so a miss.
    const other = await classifyFixture("png_rgb8", "model=densenet-121");
    expect(other.body.cached).toBe(false);
  });

  it("caches with the configured TTL", async () => {
    const { body } = await classifyFixture("webp_lossy", "model=mobilenet-v2");
    const key = cacheKey(getModel("mobilenet-v2"), body.image.sha256);
    await vi.waitFor(async () => expect(await env.RESULTS.get(key)).not.toBeNull(), { timeout: 5000 });
    const listed = await env.RESULTS.list({ prefix: key });
    const expiration = listed.keys[0]?.expiration ?? 0;
    const expected = Date.now() / 1000 + Number(env.CACHE_TTL_SECONDS);
    expect(Math.abs(expiration - expected)).toBeLessThan(120);
  });

  it("ignores a malformed cache entry (an old deploy's shape) and recomputes", async () => {
    const { bytes } = await fixture("png_gray8");
    const sha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    await env.RESULTS.put(cacheKey(getModel("mobilenet-v2"), sha), JSON.stringify({ v: 0, labels: ["stale"] }));
    const { status, body } = await classifyFixture("png_gray8", "model=mobilenet-v2");
    expect(status).toBe(200);
    expect(body.cached).toBe(false);
    expect(body.predictions).toHaveLength(5);
  });

  it("treats KV failures as misses instead of failing the request", async () => {
    // A key over KV's 512-byte limit makes the real binding throw on get and put.
    const badKey = "k".repeat(600);
    await expect(env.RESULTS.get(badKey)).rejects.toThrow();
    expect(await readCache(env.RESULTS, badKey)).toBeUndefined();
    await expect(
      writeCache(
        env.RESULTS,
        badKey,
        { v: 2, predictions: [], image: { sha256: "x", width: 1, height: 1, format: "png" }, createdAt: "" },
        3600,
      ),
    ).resolves.toBeUndefined();
  });

  it("decodes a large JPEG in the DCT domain at reduced scale and reports its real size", async () => {
    const bytes = await repoFile("test/fixtures/large/photo_2016x1512.jpg");
    const res = await post("/v1/classify?model=mobilenet-v2&top_k=3", bytes, "image/jpeg");
    expect(res.status).toBe(200);
    const body = (await res.json()) as ClassifyBody;
    expect(body.image).toMatchObject({ width: 2016, height: 1512, format: "jpeg" });
    expect(body.predictions).toHaveLength(3);
    // The decoder picked 1/2 (1008x756: shorter side 756 >= 2 x 256, while 1/4 would give 378).
    const { image } = await decodeImageWithInfo(bytes, { maxPixels: 1 << 24, minShortSide: 512 });
    expect([image.width, image.height, image.scale]).toEqual([1008, 756, 2]);
  });

  it("accepts multipart/form-data with an image field", async () => {
    const { bytes } = await fixture("jpeg_baseline_420");
    const form = new FormData();
    form.append("image", new File([bytes], "photo.jpg", { type: "image/jpeg" }));
    const res = await SELF.fetch(`${BASE}/v1/classify?top_k=2`, { method: "POST", body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ClassifyBody;
    expect(body.model.id).toBe("mobilenet-v2"); // the default model
    expect(body.predictions).toHaveLength(2);
  });

  it("decodes every committed fixture format and agrees with itself across containers", async () => {
    for (const f of fixtures) {
      const { status, body } = await classifyFixture(f.name, "model=mobilenet-v2&top_k=1");
      expect(status, `${f.name}: ${JSON.stringify(body)}`).toBe(200);
      expect(body.image.format).toBe(f.format);
    }
  });
});

describe("errors are 4xx JSON and the isolate survives them", () => {
  it("rejects bad parameters with 400", async () => {
    const { bytes } = await fixture("jpeg_baseline_420");
    for (const q of ["top_k=0", "top_k=21", "top_k=abc", "top_k=2.5", `model=${"x".repeat(100)}`]) {
      await expectError(await post(`/v1/classify?${q}`, bytes, "image/jpeg"), 400, "invalid_parameter");
    }
  });

  it("rejects an unknown model with 404", async () => {
    const { bytes } = await fixture("jpeg_baseline_420");
    const body = await expectError(
      await post("/v1/classify?model=resnet-9000", bytes, "image/jpeg"),
      404,
      "unknown_model",
    );
    expect(body.error.message).toContain("mobilenet-v2");
  });

  it("rejects an empty body with 400", async () => {
    await expectError(await post("/v1/classify", new Uint8Array(0), "image/jpeg"), 400, "empty_body");
    await expectError(await post("/v1/classify", null, "image/png"), 400, "empty_body");
  });

  it("rejects non-image content types and non-image bytes with 415", async () => {
    // JSON is accepted ({"image": base64} / {"url"}): test/workerd/surface.test.ts covers it.
    await expectError(await post("/v1/classify", "<image/>", "application/xml"), 415, "unsupported_media_type");
    await expectError(await post("/v1/classify", "hello", "text/plain"), 415, "unsupported_media_type");
    const random = new Uint8Array(4096);
    for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
    await expectError(await post("/v1/classify", random, "image/jpeg"), 415, "unsupported_media_type");
    const gif = new TextEncoder().encode("GIF89a\x01\x00\x01\x00\x00\x00\x00;");
    const body = await expectError(await post("/v1/classify", gif, "image/gif"), 415, "unsupported_media_type");
    expect(body.error.message).toMatch(/GIF/);
  });

  it("rejects multipart without the image field with 400", async () => {
    const form = new FormData();
    form.append("picture", new File([new Uint8Array([1, 2, 3])], "a.jpg"));
    await expectError(await SELF.fetch(`${BASE}/v1/classify`, { method: "POST", body: form }), 400, "bad_request");
  });

  it("rejects truncated images with 422", async () => {
    for (const name of ["jpeg_baseline_420", "png_rgb8"]) {
      const { entry, bytes } = await fixture(name);
      const cut = bytes.slice(0, Math.floor(bytes.length * 0.6));
      await expectError(await post("/v1/classify", cut, MIME[entry.format]), 422, "invalid_image");
    }
  });

  it("refuses a decompression bomb from its header with 413, before decoding", async () => {
    const bomb = await repoFile("test/fixtures/bad/huge_50000x50000.png");
    const body = await expectError(await post("/v1/classify", bomb, "image/png"), 413, "image_too_large");
    expect(body.error.message).toMatch(/50000/);
  });

  it("refuses an oversized body with 413, by Content-Length and while streaming", async () => {
    const big = new Uint8Array(21 * 1024 * 1024);
    await expectError(await post("/v1/classify", big, "image/jpeg"), 413, "payload_too_large");
    // No Content-Length: a stream that never says its size.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 22; i++) controller.enqueue(new Uint8Array(1024 * 1024));
        controller.close();
      },
    });
    await expectError(await post("/v1/classify", stream, "image/jpeg"), 413, "payload_too_large");
  });

  it("every documented bad file gets its documented answer, then the isolate still classifies", async () => {
    const index = JSON.parse(new TextDecoder().decode(await repoFile("test/fixtures/bad/index.json")));
    const bad: Array<{ file: string; status: number; code: string; message_includes?: string }> = index.files;
    expect(bad.length).toBeGreaterThan(20);
    for (const b of bad) {
      const bytes = await repoFile(`test/fixtures/bad/${b.file}`);
      const res = await post("/v1/classify", bytes, "application/octet-stream");
      const text = await res.text();
      // The decoder calls zero bytes an unknown format; over HTTP the body check answers first.
      const expected = bytes.length === 0 ? { status: 400, code: "empty_body" } : b;
      expect(res.status, `${b.file}: ${text}`).toBe(expected.status);
      const { error } = JSON.parse(text) as ErrorBody;
      expect(error.code, b.file).toBe(expected.code);
      if (b.message_includes) expect(error.message, b.file).toContain(b.message_includes);
    }
    const after = await classifyFixture("jpeg_baseline_420", "model=densenet-121&top_k=1");
    expect(after.status).toBe(200);
  });
});

describe("missing or corrupt model files", () => {
  // Runs on a model build this isolate has never loaded, so R2 is really consulted.
  it("answers 503 with Retry-After for a missing file, 503 for a corrupt one, and recovers once fixed", async () => {
    const real = getModel("mobilenet-v2");
    const { manifest } = real;
    // A registered copy whose file is under a key nobody seeded.
    const { fetchModelBytes } = await import("../../src/models/registry");
    const { getSession } = await import("../../src/inference/sessions");
    const ghost = {
      ...real,
      manifest: { ...manifest, id: "ghost", file: { ...manifest.file, r2Key: "models/ghost/none.onnx" } },
      versionKey: "ghost@test",
    };
    await expect(fetchModelBytes(env.MODELS, ghost.manifest)).rejects.toMatchObject({
      status: 503,
      code: "model_unavailable",
      headers: { "Retry-After": expect.any(String) },
    });
    await expect(getSession(env.MODELS, ghost)).rejects.toMatchObject({ status: 503 });
    // Inside the back-off window the failure is answered from memory, without R2.
    await expect(getSession(env.MODELS, ghost)).rejects.toMatchObject({ message: /next retry in/ });

    // Corrupt: right key, wrong bytes.
    const good = await env.MODELS.get(manifest.file.r2Key);
    const bytes = new Uint8Array(await (good as R2ObjectBody).arrayBuffer());
    const flipped = bytes.slice();
    const mid = flipped.length >> 1;
    flipped[mid] = (flipped[mid] ?? 0) ^ 0xff;
    await env.MODELS.put(ghost.manifest.file.r2Key, flipped);
    await expect(fetchModelBytes(env.MODELS, ghost.manifest)).rejects.toMatchObject({
      status: 503,
      message: /corrupt.*sha256/,
    });
    // Fixed: after the back-off expires the next request loads it.
    await env.MODELS.put(ghost.manifest.file.r2Key, bytes);
    await new Promise((r) => setTimeout(r, 2100));
    // Concurrent cold requests share one load: one session, one set of load timings.
    const [a, b] = await Promise.all([getSession(env.MODELS, ghost), getSession(env.MODELS, ghost)]);
    expect(a.session).toBe(b.session);
    expect([a.loadTimings, b.loadTimings].filter(Boolean)).toHaveLength(1);
    expect(a.session.inputNames).toContain("input");
    expect((await getSession(env.MODELS, ghost)).session).toBe(a.session);
  });
});

describe("the trained model on real photos", () => {
  it("mobilenet-v2-nsfw over HTTP matches onnxruntime-node on every photo (nsfwjs parity is in test/node)", async () => {
    const photos = JSON.parse(new TextDecoder().decode(await repoFile("test/fixtures/photos/index.json"))) as Array<{
      file: string;
      format: string;
      width: number;
      height: number;
    }>;
    expect(photos.length).toBeGreaterThanOrEqual(8);
    await ensureCodecs();
    for (const p of photos) {
      const bytes = await repoFile(`test/fixtures/photos/${p.file}`);
      const res = await post("/v1/classify?model=mobilenet-v2-nsfw", bytes, MIME[p.format]);
      expect(res.status, p.file).toBe(200);
      const body = (await res.json()) as ClassifyBody;
      expect(body.model).toMatchObject({ id: "mobilenet-v2-nsfw", trained: true });
      expect(body.image).toMatchObject({ width: p.width, height: p.height });
      expect(body.predictions.map((x) => x.label).sort()).toEqual(["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]);
      expect(body.predictions.reduce((a, x) => a + x.score, 0)).toBeCloseTo(1, 4);

      const decoded = await decodeImage(bytes, { maxPixels: 1 << 26 });
      const q = `model=mobilenet-v2-nsfw&width=${decoded.width}&height=${decoded.height}&orientation=${decoded.orientation}`;
      const ref = await env.REFERENCE.fetch(`http://reference/reference?${q}`, { method: "POST", body: decoded.data });
      const { probs } = (await ref.json()) as { probs: number[] };
      // The served file computes in int8: see support/tolerance.ts.
      const tolerance = probabilityTolerance(getModel("mobilenet-v2-nsfw").manifest);
      expect(body.predictions[0]?.index, p.file).toBe(probs.indexOf(Math.max(...probs)));
      for (const x of body.predictions)
        expect(Math.abs(x.score - (probs[x.index] as number)), p.file).toBeLessThan(tolerance);
    }
  });
});

describe("concurrency", () => {
  it("concurrent requests in one isolate each get their own correct answer", async () => {
    // Inference is serialised per isolate; interleaving would mix up outputs.
    const names = ["jpeg_restart", "png_adam7", "png_palette_4bit", "jpeg_rgb_adobe", "png_1x1", "jpeg_exif_orient3"];
    const results = await Promise.all(names.map((n) => classifyFixture(n, "model=densenet-121&top_k=5")));
    for (const [i, name] of names.entries()) {
      const { status, body } = results[i] as { status: number; body: ClassifyBody };
      expect(status, name).toBe(200);
      expect(body.cached, name).toBe(false);
      const ref = await env.REFERENCE.fetch(`http://reference/reference?model=densenet-121&fixture=${name}`);
      const { probs } = (await ref.json()) as { probs: number[] };
      // The model's own bound (2e-5 in fp32 compute, its int8 band with int8 activations): another
      // image's answer would miss it by far more.
      const bound = probabilityTolerance(getModel("densenet-121").manifest);
      for (const p of body.predictions)
        expect(Math.abs(p.score - (probs[p.index] as number)), name).toBeLessThan(bound);
    }
  });
});

describe("parity with an independent reference (literal torchvision preprocessing + onnxruntime-node, native)", () => {
  // Two comparisons per fixture, both asserted:
  //  - pipeline parity: the worker's answer vs the reference run on the pixels
  //    the worker's own decoder produced, isolating preprocessing (separable
  //    vs direct resampling) and inference (WASM vs native kernels);
  //  - end-to-end parity: the reference run on PIL's decode of the file
  //    (libjpeg-turbo, libpng, libwebp). The worker's JPEG decoder is
  //    bit-exact with libjpeg-turbo and PNG/WebP are lossless or the same
  //    libwebp, so the same bound holds for every format.
  // Measured max |Δp| is ~3e-6 (MobileNetV2) and ~4e-7 (DenseNet-121).
  const FIXTURES = [
    "png_rgb8",
    "png_rgba8",
    "png_palette_trns",
    "png_gray16",
    "png_rgb16",
    "png_exif_orient6",
    "webp_lossless_alpha",
    "jpeg_baseline_420",
    "jpeg_progressive",
    "jpeg_gray",
    "jpeg_cmyk",
    "jpeg_exif_orient6",
    "jpeg_thin_4x300",
    "webp_lossy",
  ];

  const top5 = (probs: number[]) =>
    probs
      .map((p, i) => [p, i] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, 5)
      .map(([, i]) => i);

  function compare(body: ClassifyBody, probs: number[]) {
    const ref = top5(probs);
    const mine = body.predictions.map((p) => p.index);
    return {
      top1: mine[0] === ref[0],
      overlap: mine.filter((i) => ref.includes(i)).length,
      maxDelta: Math.max(...body.predictions.map((p) => Math.abs(p.score - (probs[p.index] as number)))),
    };
  }

  for (const modelId of ["mobilenet-v2", "densenet-121", "mobilenet-v2-nsfw"]) {
    it(`${modelId}: top-5 and scores match onnxruntime-node`, async () => {
      await ensureCodecs();
      const MAX_DELTA = probabilityTolerance(getModel(modelId).manifest);
      const report: string[] = [];
      const checks: Array<{ what: string; r: ReturnType<typeof compare> }> = [];
      for (const name of FIXTURES) {
        const { bytes } = await fixture(name);
        const { status, body } = await classifyFixture(name, `model=${modelId}&top_k=5`);
        expect(status).toBe(200);

        const decoded = await decodeImage(bytes, { maxPixels: 1 << 26 });
        const q = `model=${modelId}&width=${decoded.width}&height=${decoded.height}&orientation=${decoded.orientation}`;
        const onPixels = await env.REFERENCE.fetch(`http://reference/reference?${q}`, {
          method: "POST",
          body: decoded.data,
        });
        expect(onPixels.status, await onPixels.clone().text()).toBe(200);
        const pipeline = compare(body, ((await onPixels.json()) as { probs: number[] }).probs);
        checks.push({ what: `${name} pipeline`, r: pipeline });

        const onPil = await env.REFERENCE.fetch(`http://reference/reference?model=${modelId}&fixture=${name}`);
        expect(onPil.status, await onPil.clone().text()).toBe(200);
        const endToEnd = compare(body, ((await onPil.json()) as { probs: number[] }).probs);
        checks.push({ what: `${name} end-to-end`, r: endToEnd });

        const fmt = (r: ReturnType<typeof compare>) =>
          `top-1 ${r.top1 ? "same" : "differs"}, top-5 ${r.overlap}/5, max |Δp| ${r.maxDelta.toExponential(1)}`;
        report.push(`${name.padEnd(20)} pipeline: ${fmt(pipeline)} | vs PIL decode: ${fmt(endToEnd)}`);
      }
      console.log(`parity ${modelId}\n  ${report.join("\n  ")}`);
      // fp32 compute: the same five classes. Int8 activations round in steps, so a near-tied 5th and
      // 6th class (these models are untrained: 1000 nearly uniform scores) may trade places; the
      // issue's bound, as on the photo set (parity.test.ts): >= 4 of 5.
      const minOverlap = int8Activations(getModel(modelId).manifest) ? 4 : 5;
      for (const { what, r } of checks) {
        expect(r.top1, `${modelId} ${what} top-1`).toBe(true);
        expect(r.overlap, `${modelId} ${what} top-5`).toBeGreaterThanOrEqual(minOverlap);
        expect(r.maxDelta, `${modelId} ${what} max |Δp|`).toBeLessThanOrEqual(MAX_DELTA);
      }
    });
  }
});
