/**
 * The bad-input corpus (test/fixtures/corpus, made by scripts/gen-corpus.ts)
 * through the real worker: every entry of index.json is POSTed to
 * /v1/classify the way it says and must get exactly its documented answer —
 * the status, the JSON error envelope with the code (and message text where
 * documented), never a 5xx — and after every refusal the same isolate must
 * still decode and classify a fresh valid image. Odd but valid images must
 * classify, and agree with the independent reference (onnxruntime-node on
 * PIL's or the generator's exact pixels, see test/reference/service.ts).
 */
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { getModel, listModels } from "../../src/models/registry";
import { authedSelf as SELF } from "./support/auth";
import { mayFlipTop1, probabilityTolerance } from "./support/tolerance";

const BASE = "http://edgetag.test";

interface Entry {
  file: string;
  send:
    | { type: "raw"; content_type: string }
    | { type: "multipart"; field: string; as_text?: boolean; content_type: string };
  status: number;
  code?: string;
  answer?: "classifies";
  image?: { format: string; width: number; height: number };
  reference?: string;
  message_includes?: string;
  notes: string;
}

interface ClassifyBody {
  model: { id: string; trained: boolean };
  predictions: Array<{ label: string; index: number; score: number }>;
  image: { format: string; width: number; height: number };
}

async function repoFile(path: string): Promise<Uint8Array> {
  const res = await env.REFERENCE.fetch(`http://reference/files/${path}`);
  if (!res.ok) throw new Error(`reference service: ${path}: ${res.status} ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

let entries: Entry[] = [];
const files = new Map<string, Uint8Array>();

beforeAll(async () => {
  for (const m of listModels()) {
    const { manifest } = getModel(m.manifest.id);
    const bytes = await repoFile(`models/${manifest.id}/${manifest.file.r2Key.split("/").pop()}`);
    await env.MODELS.put(manifest.file.r2Key, bytes);
  }
  entries = JSON.parse(new TextDecoder().decode(await repoFile("test/fixtures/corpus/index.json"))).files;
  for (const e of entries) {
    if (!files.has(e.file)) files.set(e.file, await repoFile(`test/fixtures/corpus/${e.file}`));
  }
  probeJpeg = await repoFile("test/fixtures/images/jpeg_420_odd.jpg");
});

function send(e: Entry, query = ""): Promise<Response> {
  const bytes = files.get(e.file) as Uint8Array;
  const url = `${BASE}/v1/classify${query}`;
  if (e.send.type === "raw") {
    return SELF.fetch(url, { method: "POST", body: bytes, headers: { "content-type": e.send.content_type } });
  }
  const form = new FormData();
  if (e.send.as_text) form.append(e.send.field, new TextDecoder().decode(bytes.subarray(0, 64)));
  else form.append(e.send.field, new File([bytes], e.file, { type: e.send.content_type }));
  return SELF.fetch(url, { method: "POST", body: form });
}

const label = (e: Entry) => `${e.file} (${e.send.type} ${"field" in e.send ? e.send.field : e.send.content_type})`;

/**
 * A small valid JPEG with a counter appended after its EOI: decoders stop at
 * EOI, but the bytes (and so the cache key) differ, so every probe runs a real
 * decode and inference instead of a cache hit.
 */
let probes = 0;
let probeJpeg: Uint8Array = new Uint8Array(0);
async function stillServes(after: string): Promise<void> {
  const jpeg = probeJpeg;
  const tag = new TextEncoder().encode(`probe-${++probes}`);
  const body = new Uint8Array(jpeg.length + tag.length);
  body.set(jpeg);
  body.set(tag, jpeg.length);
  const res = await SELF.fetch(`${BASE}/v1/classify?top_k=1`, {
    method: "POST",
    body,
    headers: { "content-type": "image/jpeg" },
  });
  const text = await res.text();
  expect(res.status, `valid image after ${after}: ${text}`).toBe(200);
  const out = JSON.parse(text) as ClassifyBody & { cached: boolean };
  expect(out.cached, `after ${after}`).toBe(false);
  expect(out.image).toMatchObject({ format: "jpeg", width: 83, height: 57 });
}

describe("bad-input corpus", () => {
  it("covers what issue 6 lists", () => {
    const names = new Set(entries.map((e) => e.file));
    for (const f of [
      "empty.bin",
      "random.bin",
      "truncated_baseline.jpg",
      "truncated.png",
      "huffman_oversubscribed.jpg",
      "bad_crc_idat.png",
      "bomb_50000x50000.jpg",
      "bomb_50000x50000.png",
      "bomb_50000x50000.webp",
      "bomb_50000x50000.gif",
      "png16_rgb.png",
      "palette.png",
      "cmyk.jpg",
      "gray.jpg",
      "1x1.png",
      "thin_4x3000.png",
      "wide_3000x4.png",
      "animated.gif",
      "animated.webp",
      "image.heic",
      "image.svg",
      "document.pdf",
      "not_an_image.json",
    ])
      expect(names.has(f), f).toBe(true);
    expect(entries.some((e) => e.send.type === "multipart" && e.send.field !== "image")).toBe(true);
    expect(entries.some((e) => e.send.type === "raw" && e.send.content_type === "text/plain")).toBe(true);
    expect(entries.length).toBeGreaterThan(55);
  });

  it("every entry gets its documented answer, and the isolate keeps serving after each refusal", async () => {
    const tally: Record<string, number> = {};
    for (const e of entries) {
      const res = await send(e, "?top_k=5");
      const text = await res.text();
      tally[String(res.status)] = (tally[String(res.status)] ?? 0) + 1;
      expect(res.status, `${label(e)}: ${text.slice(0, 300)}`).toBeLessThan(500);
      expect(res.status, `${label(e)}: ${text.slice(0, 300)}`).toBe(e.status);
      expect(res.headers.get("content-type"), label(e)).toMatch(/^application\/json/);
      const body = JSON.parse(text);
      if (e.answer === "classifies") {
        const out = body as ClassifyBody;
        expect(out.image, label(e)).toMatchObject(e.image as object);
        expect(out.predictions.length, label(e)).toBe(5);
        expect(
          out.predictions.every((p) => Number.isFinite(p.score) && p.score >= 0 && p.score <= 1),
          label(e),
        ).toBe(true);
      } else {
        expect(Object.keys(body), label(e)).toEqual(["error"]);
        expect(body.error.code, label(e)).toBe(e.code);
        expect(typeof body.error.message, label(e)).toBe("string");
        expect(body.error.message.length, label(e)).toBeGreaterThan(10);
        if (e.message_includes) expect(body.error.message, label(e)).toContain(e.message_includes);
        await stillServes(label(e));
      }
    }
    console.log(
      `corpus: ${entries.length} entries, answers by status ${JSON.stringify(tally)}, ${probes} recovery probes`,
    );
  });

  it("odd but valid images classify like the independent reference (onnxruntime-node on reference pixels)", async () => {
    const withReference = entries.filter((e) => e.answer === "classifies" && e.reference);
    expect(withReference.length).toBeGreaterThanOrEqual(15);
    const lines: string[] = [];
    let worst = 0;
    for (const modelId of ["mobilenet-v2-nsfw", "mobilenet-v2"]) {
      for (const e of withReference) {
        const res = await send(e, `?model=${modelId}&top_k=5`);
        expect(res.status, label(e)).toBe(200);
        const out = (await res.json()) as ClassifyBody;
        const pixels = await repoFile(`test/fixtures/corpus/reference/${e.reference}`);
        const { width, height } = e.image as { width: number; height: number };
        expect(pixels.length, e.reference).toBe(width * height * 3);
        const ref = await env.REFERENCE.fetch(
          `http://reference/reference?model=${modelId}&width=${width}&height=${height}&orientation=1`,
          { method: "POST", body: pixels },
        );
        expect(ref.status, await ref.clone().text()).toBe(200);
        const { probs } = (await ref.json()) as { probs: number[] };
        const refTop = probs
          .map((p, i) => [p, i] as const)
          .sort((a, b) => b[0] - a[0])
          .slice(0, 5)
          .map(([, i]) => i);
        const mine = out.predictions.map((p) => p.index);
        const delta = Math.max(...out.predictions.map((p) => Math.abs(p.score - (probs[p.index] as number))));
        worst = Math.max(worst, delta);
        lines.push(
          `${modelId.padEnd(18)} ${e.file.padEnd(22)} top-1 ${out.predictions[0]?.label} (${mine[0] === refTop[0] ? "same" : `reference: ${refTop[0]}`}), top-5 overlap ${mine.filter((i) => refTop.includes(i)).length}/5, max |dp| ${delta.toExponential(1)}`,
        );
        // An int8-activation model may flip only a near-tie of the reference's (support/tolerance.ts).
        const { manifest } = getModel(modelId);
        const refMargin = (probs[refTop[0] as number] as number) - (probs[mine[0] as number] as number);
        if (!mayFlipTop1(manifest, refMargin)) expect(mine[0], `${modelId} ${e.file} top-1`).toBe(refTop[0]);
        expect(mine.filter((i) => refTop.includes(i)).length, `${modelId} ${e.file} top-5`).toBeGreaterThanOrEqual(4);
        expect(delta, `${modelId} ${e.file} max |dp|`).toBeLessThan(probabilityTolerance(manifest));
      }
    }
    console.log(`corpus reference parity (worst max |dp| ${worst.toExponential(1)}):\n  ${lines.join("\n  ")}`);
  });
});
