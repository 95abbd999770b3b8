import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { PreprocessSpec } from "../../src/models/manifest";
import { decodeImage, decodeOptionsFor } from "../../src/pipeline/decode";
import {
  centerCropOffset,
  orientedSize,
  preprocess,
  preprocessGeometry,
  preprocessRegion,
  resizedSize,
} from "../../src/pipeline/preprocess";
import type { DecodedImage } from "../../src/pipeline/types";
import { type RefSpec, referenceGeometry, referencePreprocess } from "../reference/preprocess";

/**
 * Tolerances (absolute, on normalised values of magnitude ≲ 2.7):
 *  - TOL, src vs torchvision: src reproduces torch's float32 weight
 *    computation, so what remains is torch's float32 summation order. The
 *    worst case over all golden cases is printed by the last golden test
 *    (measured 7e-7 bilinear, 2e-6 bicubic); 1e-5 leaves headroom while a
 *    one-pixel crop shift, a missing antialias or the wrong bicubic
 *    coefficient produce errors > 1e-2.
 *  - TOL_REF, anything vs the reference: the reference computes the weights
 *    in float64 like PIL, whose sample centres differ from torch's float32 ones
 *    by ~i * 2^-24 pixels; measured 6.9e-5 on the golden cases. 2e-4 is
 *    still two orders of magnitude below what any geometric bug produces.
 */
const TOL = 1e-5;
const TOL_REF = 2e-4;

const FIXTURES = new URL("../fixtures/preprocess/", import.meta.url);

interface GoldenCase {
  name: string;
  image: { width: number; height: number; seed: number; orientation: number; fnv1a: number };
  variant: string;
  spec: PreprocessSpec;
  output: { width: number; height: number };
  sampleFile: string;
  fullFile: string | null;
  stats: { sum: number[]; sumSq: number[]; min: number[]; max: number[] };
}
interface GoldenIndex {
  stride: number;
  cases: GoldenCase[];
}

const index = JSON.parse(readFileSync(new URL("index.json", FIXTURES), "utf8")) as GoldenIndex;

function readF32(file: string): Float32Array {
  const buf = readFileSync(new URL(file, FIXTURES));
  // Copy into an aligned buffer; the fixtures are little-endian like every JS host we run on.
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  return new Float32Array(bytes.buffer);
}

// ---- deterministic test images, mirroring make_image() in scripts/make_preprocess_golden.py ----

function hash32(v: number): number {
  let x = v >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

function makeImage(width: number, height: number, seed: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  const s = Math.imul(seed, 0x9e3779b9) >>> 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const idx = (y * width + x) * 3 + c;
        const noise = hash32((idx ^ s) >>> 0) & 255;
        const ramp = (x * 5 + y * 3 + c * 85 + 17 * seed) & 255;
        out[idx] = (ramp * 3 + noise) >> 2;
      }
    }
  }
  return out;
}

function fnv1a(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** Uniform random bytes from a seeded generator (for src-vs-reference tests). */
function randomImage(width: number, height: number, seed: number, orientation = 1): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  let state = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    data[i] = hash32(state) & 255;
  }
  return { format: "png", width, height, orientation, data };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? Number.NaN) - (b[i] ?? Number.NaN));
    // NaN must fail, so compare with !(d <= m) rather than d > m.
    if (!(d <= m)) m = d;
  }
  return m;
}

const IMAGENET = { rescale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;

function spec(partial: Pick<PreprocessSpec, "resize"> & Partial<PreprocessSpec>): PreprocessSpec {
  return {
    filter: "bilinear",
    rescale: IMAGENET.rescale,
    mean: [...IMAGENET.mean],
    std: [...IMAGENET.std],
    ...partial,
  };
}

function nchw(s: PreprocessSpec, img: DecodedImage) {
  const g = preprocessGeometry(img.width, img.height, img.orientation, s);
  return { layout: "NCHW" as const, width: g.crop.width, height: g.crop.height };
}

// ---------------------------------------------------------------------------

describe("golden: torchvision 0.14 ToTensor→Resize(antialias)→CenterCrop→Normalize", () => {
  const worst = new Map<string, number>();
  let worstReference = 0;

  it("fixture images regenerate byte-identically from their seeds", () => {
    expect(index.cases.length).toBeGreaterThan(30);
    for (const c of index.cases) {
      expect(fnv1a(makeImage(c.image.width, c.image.height, c.image.seed)), c.name).toBe(c.image.fnv1a);
    }
  });

  for (const c of index.cases) {
    it(`src matches ${c.name}`, () => {
      const img: DecodedImage = {
        format: "png",
        width: c.image.width,
        height: c.image.height,
        orientation: c.image.orientation,
        data: makeImage(c.image.width, c.image.height, c.image.seed),
      };
      const input = { layout: "NCHW" as const, width: c.output.width, height: c.output.height };
      const out = preprocess(img, c.spec, input);
      expect(out.length).toBe(3 * c.output.width * c.output.height);

      const sample = readF32(c.sampleFile);
      const picked = new Float32Array(sample.length);
      for (let i = 0; i < sample.length; i++) picked[i] = out[i * index.stride] ?? Number.NaN;
      expect(Math.ceil(out.length / index.stride)).toBe(sample.length);
      let err = maxAbsDiff(picked, sample);
      if (c.fullFile) err = Math.max(err, maxAbsDiff(out, readF32(c.fullFile)));

      // Whole-output statistics catch errors in values the sampling skipped.
      const plane = c.output.width * c.output.height;
      for (let ch = 0; ch < 3; ch++) {
        let sum = 0;
        let sumSq = 0;
        let min = Number.POSITIVE_INFINITY;
        let max = Number.NEGATIVE_INFINITY;
        for (let i = ch * plane; i < (ch + 1) * plane; i++) {
          const v = out[i] ?? Number.NaN;
          sum += v;
          sumSq += v * v;
          min = Math.min(min, v);
          max = Math.max(max, v);
        }
        // Per-value error ≤ TOL bounds the sum's error by plane * TOL; the
        // measured differences are far smaller, so use a tenth of that.
        expect(Math.abs(sum - (c.stats.sum[ch] ?? Number.NaN)), `${c.name} sum[${ch}]`).toBeLessThan(plane * TOL * 0.1);
        expect(Math.abs(sumSq - (c.stats.sumSq[ch] ?? Number.NaN)), `${c.name} sumSq[${ch}]`).toBeLessThan(
          plane * TOL * 0.5,
        );
        expect(Math.abs(min - (c.stats.min[ch] ?? Number.NaN))).toBeLessThan(TOL);
        expect(Math.abs(max - (c.stats.max[ch] ?? Number.NaN))).toBeLessThan(TOL);
      }
      expect(err, c.name).toBeLessThan(TOL);
      const key = c.image.orientation === 1 ? c.variant : `${c.variant} (EXIF-rotated)`;
      worst.set(key, Math.max(worst.get(key) ?? 0, err));
    });
  }

  // The reference is what the onnxruntime golden tests trust, so pin it to
  // torchvision as well (a subset: it is slow on the large downscales).
  for (const c of index.cases.filter((k) => k.image.width * k.image.height <= 640 * 480)) {
    it(`reference matches ${c.name}`, () => {
      const img = {
        width: c.image.width,
        height: c.image.height,
        orientation: c.image.orientation,
        data: makeImage(c.image.width, c.image.height, c.image.seed),
      };
      const out = referencePreprocess(img, c.spec as RefSpec, {
        layout: "NCHW",
        width: c.output.width,
        height: c.output.height,
      });
      const sample = readF32(c.sampleFile);
      const picked = new Float32Array(sample.length);
      for (let i = 0; i < sample.length; i++) picked[i] = out[i * index.stride] ?? Number.NaN;
      const err = maxAbsDiff(picked, sample);
      expect(err, c.name).toBeLessThan(TOL_REF);
      worstReference = Math.max(worstReference, err);
    });
  }

  it("reports the worst error per variant", () => {
    // Runs after the per-case tests (vitest runs a file's tests in order).
    expect(worst.size).toBeGreaterThanOrEqual(5);
    console.log(
      "max |src - torchvision| per variant:",
      Object.fromEntries([...worst].map(([k, v]) => [k, v.toExponential(2)])),
      `; max |reference - torchvision| (sampled): ${worstReference.toExponential(2)}`,
    );
  });
});

describe("src vs independent reference", () => {
  const sizes: Array<[number, number]> = [
    [64, 48],
    [37, 91],
    [200, 13],
    [5, 7],
  ];
  for (const filter of ["bilinear", "bicubic"] as const) {
    for (const [w, h] of sizes) {
      for (let orientation = 1; orientation <= 8; orientation++) {
        it(`${w}x${h} orientation ${orientation} ${filter}`, () => {
          const img = randomImage(w, h, w * 1000 + h * 10 + orientation, orientation);
          // Odd crop sizes and a crop larger than one resized axis (padding) on purpose.
          const s = spec({ resize: { mode: "shortest-edge", size: 40 }, filter, crop: { width: 33, height: 45 } });
          const input = { layout: "NCHW" as const, width: 33, height: 45 };
          const got = preprocess(img, s, input);
          const want = referencePreprocess(img, s, input);
          expect(maxAbsDiff(got, want)).toBeLessThan(TOL_REF);
        });
      }
    }
  }

  it("orientation actually changes the output (so the loop above can fail)", () => {
    const s = spec({ resize: { mode: "exact", width: 20, height: 20 } });
    const input = { layout: "NCHW" as const, width: 20, height: 20 };
    const base = preprocess(randomImage(30, 30, 7, 1), s, input);
    for (let o = 2; o <= 8; o++) {
      expect(maxAbsDiff(base, preprocess(randomImage(30, 30, 7, o), s, input))).toBeGreaterThan(0.1);
    }
  });

  it("exact mode ignoring aspect ratio, upscaling one axis and downscaling the other", () => {
    const img = randomImage(150, 20, 99, 6);
    const s = spec({ resize: { mode: "exact", width: 31, height: 57 }, filter: "bicubic" });
    const input = { layout: "NCHW" as const, width: 31, height: 57 };
    expect(maxAbsDiff(preprocess(img, s, input), referencePreprocess(img, s, input))).toBeLessThan(TOL_REF);
  });

  it("tiny and extreme images: 1x1, 4x3000, 3000x4, 2x1 upscaled, 2x20000", () => {
    const s = spec({ resize: { mode: "shortest-edge", size: 256 }, crop: { width: 224, height: 224 } });
    const input = { layout: "NCHW" as const, width: 224, height: 224 };
    for (const [w, h, o] of [
      [1, 1, 1],
      [4, 3000, 1],
      [3000, 4, 1],
      [4, 3000, 6],
      [2, 1, 1],
      // Resized to 256x2560000 (7.8 GB as float32 RGB): only works because
      // just the 224x224 kept pixels are computed.
      [2, 20000, 8],
    ] as const) {
      const img = randomImage(w, h, w + h, o);
      const got = preprocess(img, s, input);
      expect(maxAbsDiff(got, referencePreprocess(img, s, input)), `${w}x${h}`).toBeLessThan(TOL_REF);
    }
    // A single pixel resizes to a constant image of exactly that pixel.
    const one: DecodedImage = { format: "png", width: 1, height: 1, orientation: 1, data: Uint8Array.of(255, 0, 128) };
    const out = preprocess(one, s, input);
    const plane = 224 * 224;
    for (const [c, v] of [255, 0, 128].entries()) {
      const want = (v / 255 - (IMAGENET.mean[c] ?? 0)) / (IMAGENET.std[c] ?? 1);
      for (const i of [0, 1234, plane - 1]) expect(out[c * plane + i]).toBeCloseTo(want, 6);
    }
  });

  it("zero padding when the resized image is smaller than the crop", () => {
    const img = randomImage(50, 30, 5);
    const s = spec({ resize: { mode: "exact", width: 40, height: 20 }, crop: { width: 45, height: 27 } });
    const input = { layout: "NCHW" as const, width: 45, height: 27 };
    const got = preprocess(img, s, input);
    expect(maxAbsDiff(got, referencePreprocess(img, s, input))).toBeLessThan(TOL_REF);
    // (45-40)//2 = 2 columns of padding on the left (x 0..1), 3 on the right (x 42..44);
    // (27-20)//2 = 3 rows on top (y 0..2), 4 below (y 23..26).
    const padR = (0 - IMAGENET.mean[0]) / IMAGENET.std[0];
    const at = (x: number, y: number) => got[y * 45 + x] ?? Number.NaN;
    expect(at(0, 10)).toBeCloseTo(padR, 6);
    expect(at(1, 10)).toBeCloseTo(padR, 6);
    expect(at(2, 10)).not.toBeCloseTo(padR, 3);
    expect(at(41, 10)).not.toBeCloseTo(padR, 3);
    expect(at(42, 10)).toBeCloseTo(padR, 6);
    expect(at(10, 2)).toBeCloseTo(padR, 6);
    expect(at(10, 3)).not.toBeCloseTo(padR, 3);
    expect(at(10, 22)).not.toBeCloseTo(padR, 3);
    expect(at(10, 23)).toBeCloseTo(padR, 6);
  });
});

describe("layout", () => {
  it("NHWC is exactly the interleaved permutation of NCHW", () => {
    for (const o of [1, 6]) {
      const img = randomImage(81, 64, 3, o);
      const s = spec({ resize: { mode: "shortest-edge", size: 70 }, crop: { width: 64, height: 48 } });
      const a = preprocess(img, s, { layout: "NCHW", width: 64, height: 48 });
      const b = preprocess(img, s, { layout: "NHWC", width: 64, height: 48 });
      const plane = 64 * 48;
      let mismatches = 0;
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) if (a[c * plane + p] !== b[p * 3 + c]) mismatches++;
      }
      expect(mismatches).toBe(0);
      // Not trivially equal: the layouts really differ.
      expect(maxAbsDiff(a, b)).toBeGreaterThan(0.1);
      // And the reference agrees on NHWC too.
      expect(maxAbsDiff(b, referencePreprocess(img, s, { layout: "NHWC", width: 64, height: 48 }))).toBeLessThan(
        TOL_REF,
      );
    }
  });
});

describe("geometry", () => {
  it("centre crop uses Python's round-half-to-even", () => {
    expect(centerCropOffset(341, 224)).toBe(58); // 58.5 → 58
    expect(centerCropOffset(343, 224)).toBe(60); // 59.5 → 60
    expect(centerCropOffset(225, 224)).toBe(0); // 0.5 → 0
    expect(centerCropOffset(227, 224)).toBe(2); // 1.5 → 2
    expect(centerCropOffset(229, 224)).toBe(2); // 2.5 → 2
    expect(centerCropOffset(224, 224)).toBe(0);
    expect(centerCropOffset(384, 224)).toBe(80);
    for (let n = 224; n < 400; n++) expect(centerCropOffset(n, 224)).toBe(refLeft(n));
  });

  it("crop larger than the image pads (crop - size) // 2 before", () => {
    expect(centerCropOffset(200, 224)).toBe(-12);
    expect(centerCropOffset(201, 224)).toBe(-11);
    expect(centerCropOffset(1, 224)).toBe(-111);
    for (let n = 1; n < 224; n++) expect(centerCropOffset(n, 224)).toBe(refLeft(n));
  });

  it("shortest-edge truncates the long side like int(size * long / short)", () => {
    expect(resizedSize({ width: 640, height: 427 }, { mode: "shortest-edge", size: 256 })).toEqual({
      width: 383, // 383.70 → 383, not 384
      height: 256,
    });
    expect(resizedSize({ width: 333, height: 500 }, { mode: "shortest-edge", size: 256 })).toEqual({
      width: 256,
      height: 384,
    });
    expect(resizedSize({ width: 3, height: 1000 }, { mode: "shortest-edge", size: 256 })).toEqual({
      width: 256,
      height: 85333,
    });
    expect(resizedSize({ width: 300, height: 300 }, { mode: "shortest-edge", size: 256 })).toEqual({
      width: 256,
      height: 256,
    });
    expect(resizedSize({ width: 10, height: 20 }, { mode: "exact", width: 7, height: 9 })).toEqual({
      width: 7,
      height: 9,
    });
  });

  it("uses the displayed (oriented) size", () => {
    expect(orientedSize(4032, 3024, 1)).toEqual({ width: 4032, height: 3024 });
    expect(orientedSize(4032, 3024, 4)).toEqual({ width: 4032, height: 3024 });
    for (const o of [5, 6, 7, 8]) expect(orientedSize(4032, 3024, o)).toEqual({ width: 3024, height: 4032 });
    const g = preprocessGeometry(4032, 3024, 6, {
      resize: { mode: "shortest-edge", size: 256 },
      crop: { width: 224, height: 224 },
    });
    expect(g).toEqual({
      oriented: { width: 3024, height: 4032 },
      resized: { width: 256, height: 341 },
      crop: { left: 16, top: 58, width: 224, height: 224 },
    });
  });
});

/** The reference's crop offset for a resized length n (identity "exact" resize to n x n). */
function refLeft(n: number): number {
  const s: RefSpec = { ...spec({ resize: { mode: "exact", width: n, height: n } }), crop: { width: 224, height: 224 } };
  return referenceGeometry(n, n, s).left;
}

describe("decoding only the pixels preprocessing reads (preprocessRegion)", () => {
  const fixtures = (dir: string) => {
    const root = fileURLToPath(new URL(`../fixtures/${dir}/`, import.meta.url));
    return readdirSync(root)
      .filter((f) => f.endsWith(".jpg"))
      .map((f) => ({ name: `${dir}/${f}`, bytes: new Uint8Array(readFileSync(root + f)) }));
  };
  // Every orientation, 4:2:0 / 4:2:2 / 4:4:0 / 4:4:4 / grey / CMYK, progressive, restart markers,
  // photos, and 40 of the held-out photo set.
  const files = [...fixtures("images"), ...fixtures("photos"), ...fixtures("photoset").slice(0, 40)];
  const models = ["mobilenet-v2", "densenet-121", "mobilenet-v2-nsfw"].map(
    (id) =>
      JSON.parse(readFileSync(new URL(`../../models/${id}/manifest.json`, import.meta.url), "utf8")) as {
        id: string;
        preprocess: PreprocessSpec;
        input: { layout: "NCHW" | "NHWC"; width: number; height: number };
      },
  );
  const specs: Array<{ name: string; spec: PreprocessSpec }> = [
    ...models.map((m) => ({ name: m.id, spec: m.preprocess })),
    {
      name: "bicubic 100/90",
      spec: spec({ resize: { mode: "shortest-edge", size: 100 }, crop: { width: 90, height: 90 }, filter: "bicubic" }),
    },
    {
      name: "exact 50x70, crop 40",
      spec: spec({ resize: { mode: "exact", width: 50, height: 70 }, crop: { width: 40, height: 40 } }),
    },
    {
      name: "crop wider than the resize (padding)",
      spec: spec({ resize: { mode: "shortest-edge", size: 32 }, crop: { width: 60, height: 20 } }),
    },
    {
      name: "upscale 500/400",
      spec: spec({ resize: { mode: "shortest-edge", size: 500 }, crop: { width: 400, height: 400 } }),
    },
    {
      name: "off-centre aspect 120/30x110",
      spec: spec({ resize: { mode: "shortest-edge", size: 120 }, crop: { width: 30, height: 110 } }),
    },
  ];

  it("gives bit-identical tensors to decoding the whole image, for every fixture, spec and orientation", async () => {
    let partial = 0;
    let saved = 0;
    for (const { name: sname, spec: s } of specs) {
      const opts = decodeOptionsFor(s);
      const { region: _, ...wholeOpts } = opts;
      for (const f of files) {
        const whole = await decodeImage(f.bytes, wholeOpts);
        const part = await decodeImage(f.bytes, opts);
        expect(whole.region).toBeUndefined();
        const g = preprocessGeometry(whole.width, whole.height, whole.orientation, s);
        const input = { layout: "NCHW" as const, width: g.crop.width, height: g.crop.height };
        const a = preprocess(whole, s, input);
        const b = preprocess(part, s, input);
        if (!Buffer.from(a.buffer).equals(Buffer.from(b.buffer))) {
          throw new Error(`${sname} on ${f.name}: tensors differ (region ${JSON.stringify(part.region)})`);
        }
        if (part.region) {
          partial++;
          const r = part.region;
          saved += 1 - ((r.x1 - r.x0) * (r.y1 - r.y0)) / (part.width * part.height);
        }
      }
    }
    // Not vacuous: most decodes of a centre-cropping spec were partial.
    expect(partial).toBeGreaterThan(files.length * 3);
    console.log(
      `${partial} partial decodes, skipping ${((100 * saved) / partial).toFixed(0)} % of their pixels on average`,
    );
  });

  it("the point-sampling TF resize (nsfwjs) reads the whole image, so it decodes it whole", () => {
    const tf = models.find((m) => m.id === "mobilenet-v2-nsfw")?.preprocess as PreprocessSpec;
    expect(preprocessRegion(640, 480, 6, tf)).toEqual({ x0: 0, y0: 0, x1: 640, y1: 480 });
  });

  it("matches the geometry: a 640x480 photo for a 256/224 centre crop reads its middle 66 % x 88 %", () => {
    const s = models.find((m) => m.id === "mobilenet-v2")?.preprocess as PreprocessSpec;
    const r = preprocessRegion(640, 480, 1, s);
    // 480 -> 256 scales by 8/15: the 224 crop is 420 source pixels, centred, plus the filter's reach.
    expect(r.x0).toBeGreaterThanOrEqual(105);
    expect(r.x0).toBeLessThanOrEqual(110);
    expect(r.x1).toBeGreaterThanOrEqual(530);
    expect(r.x1).toBeLessThanOrEqual(535);
    expect(r.y0).toBeGreaterThanOrEqual(25);
    expect(r.y1).toBeLessThanOrEqual(455);
    // EXIF 5 (a transpose) swaps the axes; 6 (a rotation) also mirrors the stored rows.
    const t = preprocessRegion(480, 640, 5, s);
    expect([t.x0, t.x1, t.y0, t.y1]).toEqual([r.y0, r.y1, r.x0, r.x1]);
    const u = preprocessRegion(480, 640, 6, s);
    expect([u.x0, u.x1, u.y0, u.y1]).toEqual([r.y0, r.y1, 640 - r.x1, 640 - r.x0]);
  });

  it("refuses (as a bug, not a client error) an image whose decoded region misses pixels it must read", () => {
    const s = spec({ resize: { mode: "shortest-edge", size: 256 }, crop: { width: 224, height: 224 } });
    const img = { ...randomImage(640, 480, 3), region: { x0: 200, x1: 640, y0: 0, y1: 480 } };
    expect(() => preprocess(img, s, nchw(s, img))).toThrow(/only \[200,640\)/);
  });
});

describe("errors", () => {
  it("rejects a model input size the spec does not produce", () => {
    const s = spec({ resize: { mode: "shortest-edge", size: 256 }, crop: { width: 224, height: 224 } });
    expect(() => preprocess(randomImage(10, 10, 1), s, { layout: "NCHW", width: 224, height: 225 })).toThrow(/224x224/);
  });

  it("rejects a buffer of the wrong length", () => {
    const img = { ...randomImage(10, 10, 1), data: new Uint8Array(299) };
    const s = spec({ resize: { mode: "exact", width: 4, height: 4 } });
    expect(() => preprocess(img, s, { layout: "NCHW", width: 4, height: 4 })).toThrow(/300/);
  });
});

describe("performance", () => {
  function time(w: number, h: number): number {
    const img = randomImage(w, h, 42);
    const s = spec({ resize: { mode: "shortest-edge", size: 256 }, crop: { width: 224, height: 224 } });
    const input = nchw(s, img);
    preprocess(img, s, input); // warm up the JIT
    const runs = 3;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) preprocess(img, s, input);
    return (performance.now() - t0) / runs;
  }

  it("12 MP → 224x224 stays well under a request budget", () => {
    const big = time(4032, 3024);
    const vga = time(640, 480);
    console.log(`preprocess 4032x3024→224: ${big.toFixed(1)} ms; 640x480→224: ${vga.toFixed(2)} ms`);
    // Only a guard against gross regressions (≈60 ms measured on an idle
    // machine, a few hundred under load): e.g. resizing the full image before
    // cropping, or a non-separable filter over a full-resolution float copy.
    expect(big).toBeLessThan(2000);
  });
});
