/**
 * Fidelity of the converted nsfwjs model (models/mobilenet-v2-nsfw) against
 * nsfwjs itself, on real photos and drawings (test/fixtures/photos).
 *
 * Both sides get the very same decoded pixels (this project's decoder):
 *  (a) nsfwjs@4.4.0's own path: `nsfwjs.load("MobileNetV2")` (the model bundled
 *      in the package, no network), `classify(tensor3d(pixels), 5)` on the TF.js
 *      CPU backend — its `infer` does toFloat().div(255) → resizeBilinear(224, alignCorners)
 *      → the layers model;
 *  (b) ours: src/pipeline/preprocess.ts with the manifest's spec → onnxruntime-node
 *      on the fp32 export (build/models/…, gitignored: produced by
 *      `python3 scripts/convert_nsfwjs.py`; those checks are skipped without it)
 *      and on the shipped 8-bit model.
 *
 * Bounds (measured, see the printed table): fp32 vs nsfwjs ≤ 0.01 required
 * (measured ~1e-6: same float32 weights, same preprocessing bit for bit).
 * The shipped model stores nsfwjs's own uint8 weight codes unchanged, so its
 * fp32 network (the file with its activation Q/DQ pairs removed and every
 * DequantizeLinear folded: scripts/onnx/quant.ts dequantizeModel, the
 * benchmark's fp32 baseline) is nsfwjs up to the int32 rounding of the
 * biases: measured 6.6e-5, bound 1e-3. As served (int8 QDQ: uint8
 * activations around 27 int8 convolutions, what the worker runs) each of
 * those layers adds an 8-bit rounding of its input: measured 7.0e-3 on these
 * photos (the quantize report has 0.060 over 400 held-out images), bound
 * 0.05; the top class must still be nsfwjs's on every photo.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import * as nsfwjs from "nsfwjs";
import ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { dequantizeModel, loadModel, saveModel } from "../../scripts/onnx/quant";
import { ModelManifest } from "../../src/models/manifest";
import { decodeImage } from "../../src/pipeline/decode";
import { minDecodeShortSide, preprocess } from "../../src/pipeline/preprocess";
import type { DecodedImage } from "../../src/pipeline/types";
import { referencePreprocess } from "../reference/preprocess";

const ROOT = new URL("../../", import.meta.url);
const PHOTOS = new URL("test/fixtures/photos/", ROOT);
const MODEL_DIR = new URL("models/mobilenet-v2-nsfw/", ROOT);
const FP32 = fileURLToPath(new URL("build/models/mobilenet-v2-nsfw/model.fp32.onnx", ROOT));
const INT8 = fileURLToPath(new URL("model.int8.onnx", MODEL_DIR));
const QDQ = fileURLToPath(new URL("test/fixtures/models/mobilenet-v2-nsfw.qdq.onnx", ROOT));

const manifest = ModelManifest.parse(JSON.parse(readFileSync(new URL("manifest.json", MODEL_DIR), "utf8")));
const labels = JSON.parse(readFileSync(new URL(`models/labels/${manifest.labels}.json`, ROOT), "utf8")) as string[];
const photos = JSON.parse(readFileSync(new URL("index.json", PHOTOS), "utf8")) as { file: string }[];
const hasFp32 = existsSync(FP32);

const TOL_FP32 = 0.01;
const TOL_FP32_NETWORK = 1e-3;
const TOL_SERVED = 0.05;

interface Row {
  file: string;
  nsfwjs: Float32Array;
  fp32?: Float32Array;
  int8: Float32Array;
  fp32Network: Float32Array;
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
};
const argmax = (a: ArrayLike<number>): number => {
  let k = 0;
  for (let i = 1; i < a.length; i++) if ((a[i] ?? 0) > (a[k] ?? 0)) k = i;
  return k;
};

let model: nsfwjs.NSFWJS;
let sessions: { fp32?: ort.InferenceSession; int8: ort.InferenceSession; fp32Network: ort.InferenceSession };
const decoded = new Map<string, DecodedImage>();
const rows: Row[] = [];

async function decode(file: string): Promise<DecodedImage> {
  const bytes = new Uint8Array(readFileSync(new URL(file, PHOTOS)));
  return decodeImage(bytes, { maxPixels: 4096 * 4096, minShortSide: minDecodeShortSide(manifest.preprocess) });
}

async function runOrt(s: ort.InferenceSession, x: Float32Array): Promise<Float32Array> {
  const { width, height } = manifest.input;
  const out = await s.run({ [manifest.input.name]: new ort.Tensor("float32", x, [1, height, width, 3]) });
  return new Float32Array(out[manifest.output.name]?.data as Float32Array);
}

/** nsfwjs's own classify(), turned back into a probability vector in class order. */
async function runNsfwjs(img: DecodedImage): Promise<Float32Array> {
  const t = tf.tensor3d(Int32Array.from(img.data), [img.height, img.width, 3], "int32");
  const top = await model.classify(t, labels.length);
  t.dispose();
  const p = new Float32Array(labels.length);
  for (const { className, probability } of top) p[labels.indexOf(className)] = probability;
  return p;
}

beforeAll(async () => {
  await tf.setBackend("cpu");
  const info = console.info;
  console.info = () => undefined; // nsfwjs logs a hosting hint on every load
  try {
    model = await nsfwjs.load("MobileNetV2");
  } finally {
    console.info = info;
  }
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all", intraOpNumThreads: 1 };
  sessions = {
    fp32: hasFp32 ? await ort.InferenceSession.create(FP32, opts) : undefined,
    int8: await ort.InferenceSession.create(INT8, opts),
    // The served file is pre-optimised (Q/DQ groups already fused, so it cannot be dequantised):
    // its fp32 network comes from its QDQ source (manifest runtime.preoptimized).
    fp32Network: await ort.InferenceSession.create(saveModel(dequantizeModel(loadModel(QDQ)).model), opts),
  };
  for (const { file } of photos) decoded.set(file, await decode(file));
});

describe("mobilenet-v2-nsfw manifest and files", () => {
  it("manifest describes the shipped file, the labels and nsfwjs's preprocessing", () => {
    const bytes = readFileSync(INT8);
    expect(manifest.file.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(manifest.file.bytes).toBe(bytes.length);
    expect(manifest.file.r2Key).toBe(`models/${manifest.id}/${manifest.file.sha256.slice(0, 16)}/model.int8.onnx`);
    expect(manifest.trained).toBe(true);
    expect(labels).toEqual(["Drawing", "Hentai", "Neutral", "Porn", "Sexy"]);
    expect(manifest.numClasses).toBe(labels.length);
    expect(manifest.input).toEqual({ name: "input", layout: "NHWC", width: 224, height: 224 });
    expect(manifest.preprocess.filter).toBe("bilinear-tf-align-corners");
    expect(manifest.preprocess.resize).toEqual({ mode: "exact", width: 224, height: 224 });
    expect(manifest.preprocess.crop).toBeUndefined();
  });

  it("fixtures are small, varied, and decode", () => {
    expect(photos.length).toBeGreaterThanOrEqual(8);
    expect(photos.length).toBeLessThanOrEqual(12);
    for (const { file } of photos) {
      expect(readFileSync(new URL(file, PHOTOS)).length).toBeLessThanOrEqual(150 * 1024);
      expect(decoded.get(file)?.data.length).toBeGreaterThan(0);
    }
    expect(photos.some((p) => p.file.endsWith(".jpg"))).toBe(true);
    expect(photos.some((p) => p.file.endsWith(".png"))).toBe(true);
  });
});

describe("preprocessing = nsfwjs's", () => {
  it("src preprocess is bit-identical to TF.js div(255) → resizeBilinear(alignCorners=true)", () => {
    for (const { file } of photos) {
      const img = decoded.get(file) as DecodedImage;
      const ours = preprocess(img, manifest.preprocess, manifest.input);
      const theirs = tf.tidy(() =>
        tf.image
          .resizeBilinear(
            tf.tensor3d(Int32Array.from(img.data), [img.height, img.width, 3], "int32").toFloat().div<tf.Tensor3D>(255),
            [224, 224],
            true,
          )
          .dataSync(),
      );
      expect(maxAbs(ours, theirs), file).toBe(0);
    }
  });

  it("src preprocess matches the literal reference (float64) within 1e-6", () => {
    for (const { file } of photos) {
      const img = decoded.get(file) as DecodedImage;
      const ours = preprocess(img, manifest.preprocess, manifest.input);
      const ref = referencePreprocess(img, manifest.preprocess, manifest.input);
      expect(maxAbs(ours, ref), file).toBeLessThan(1e-6);
    }
  });

  it("EXIF orientation: a transposed + mirrored stored image (orientation 6..8, 2..4) gives the same tensor", () => {
    const img = decoded.get(photos[0]?.file ?? "") as DecodedImage;
    const want = preprocess(img, manifest.preprocess, manifest.input);
    const { width: W, height: H, data } = img;
    // Store the displayed image in each orientation o, so that applying o gives it back.
    const stored = (o: number): DecodedImage => {
      const swap = o >= 5;
      const sw = swap ? H : W;
      const sh = swap ? W : H;
      const out = new Uint8Array(data.length);
      for (let dy = 0; dy < H; dy++)
        for (let dx = 0; dx < W; dx++) {
          // displayed (dx, dy) -> stored (sx, sy), per the EXIF table in src/pipeline/preprocess.ts
          const [sx, sy] = [
            [dx, dy],
            [dx, dy],
            [sw - 1 - dx, dy],
            [sw - 1 - dx, sh - 1 - dy],
            [dx, sh - 1 - dy],
            [dy, dx],
            [dy, sh - 1 - dx],
            [sw - 1 - dy, sh - 1 - dx],
            [sw - 1 - dy, dx],
          ][o] as [number, number];
          for (let c = 0; c < 3; c++) out[(sy * sw + sx) * 3 + c] = data[(dy * W + dx) * 3 + c] ?? 0;
        }
      return { ...img, width: sw, height: sh, data: out, orientation: o };
    };
    for (let o = 2; o <= 8; o++)
      expect(maxAbs(preprocess(stored(o), manifest.preprocess, manifest.input), want), `orientation ${o}`).toBe(0);
  });
});

describe("model agreement with nsfwjs on the same pixels", () => {
  beforeAll(async () => {
    for (const { file } of photos) {
      const img = decoded.get(file) as DecodedImage;
      const x = preprocess(img, manifest.preprocess, manifest.input);
      rows.push({
        file,
        nsfwjs: await runNsfwjs(img),
        fp32: sessions.fp32 ? await runOrt(sessions.fp32, x) : undefined,
        int8: await runOrt(sessions.int8, x),
        fp32Network: await runOrt(sessions.fp32Network, x),
      });
    }
    const f = (p: Float32Array) => Array.from(p, (v) => v.toFixed(4)).join(" ");
    const lines = [
      `nsfwjs probabilities (${labels.join(" ")}) | max |Δp| vs nsfwjs: fp32 export, served int8, served file's fp32 network | top-1`,
      ...rows.map(
        (r) =>
          `${r.file.padEnd(14)} ${f(r.nsfwjs)} | ${r.fp32 ? maxAbs(r.fp32, r.nsfwjs).toExponential(2) : "   n/a  "} ${maxAbs(r.int8, r.nsfwjs).toExponential(2)} ${maxAbs(r.fp32Network, r.nsfwjs).toExponential(2)} | ${labels[argmax(r.nsfwjs)]}`,
      ),
    ];
    console.log(lines.join("\n"));
    // Kept for the manifest's fidelity figures (npm run models:fidelity).
    const worst = (pick: (r: (typeof rows)[number]) => Float32Array | undefined) =>
      rows.every((r) => pick(r)) ? Math.max(...rows.map((r) => maxAbs(pick(r) as Float32Array, r.nsfwjs))) : null;
    const sameTop = (pick: (r: (typeof rows)[number]) => Float32Array) =>
      rows.filter((r) => argmax(pick(r)) === argmax(r.nsfwjs)).length;
    const reports = new URL("test-results/parity/", ROOT);
    await mkdir(reports, { recursive: true });
    await writeFile(
      new URL("nsfwjs-mobilenet-v2-nsfw.json", reports),
      JSON.stringify(
        {
          reference: "nsfwjs@4.4.0 on TF.js (Node, cpu backend), same decoded pixels",
          images: rows.length,
          fp32_max_abs_dprob: worst((r) => r.fp32),
          served_max_abs_dprob: worst((r) => r.int8),
          served_fp32_network_max_abs_dprob: worst((r) => r.fp32Network),
          served_top1_same: `${sameTop((r) => r.int8)}/${rows.length}`,
        },
        null,
        1,
      ),
    );
  });

  it.skipIf(!hasFp32)(`fp32 ONNX within ${TOL_FP32} of nsfwjs, same top class, on every image`, () => {
    for (const r of rows) {
      expect(maxAbs(r.fp32 as Float32Array, r.nsfwjs), r.file).toBeLessThan(TOL_FP32);
      expect(argmax(r.fp32 as Float32Array), r.file).toBe(argmax(r.nsfwjs));
    }
  });

  it(`the shipped file's fp32 network is nsfwjs within ${TOL_FP32_NETWORK} (its weights are nsfwjs's codes)`, () => {
    for (const r of rows) {
      expect(maxAbs(r.fp32Network, r.nsfwjs), r.file).toBeLessThan(TOL_FP32_NETWORK);
      expect(argmax(r.fp32Network), r.file).toBe(argmax(r.nsfwjs));
    }
  });

  it(`the shipped int8 model as served is within ${TOL_SERVED} of nsfwjs, same top class on every photo`, () => {
    for (const r of rows) {
      expect(maxAbs(r.int8, r.nsfwjs), r.file).toBeLessThan(TOL_SERVED);
      expect(argmax(r.int8), r.file).toBe(argmax(r.nsfwjs));
    }
    // It does compute in int8 (not silently fp32): the activations' rounding shows.
    expect(Math.max(...rows.map((r) => maxAbs(r.int8, r.fp32Network)))).toBeGreaterThan(1e-3);
  });

  it("the set is not trivially confident (a runner-up class above 0.1 on some images)", () => {
    // nsfwjs calls every fixture Neutral (no permissively licensed Drawing/NSFW
    // photos are bundled here), so at least make sure Δp is measured where the
    // probability mass is actually split, not only on p ≈ 1 vs 0.
    const split = rows.filter((r) => ([...r.nsfwjs].sort((a, b) => b - a)[1] ?? 0) > 0.1);
    expect(split.length).toBeGreaterThanOrEqual(2);
  });
});
