/**
 * Lean JPEG decoder with DCT-domain downscaling (src/pipeline/codecs/jpeg-lean.ts).
 *  - 1/1 output vs the PIL (libjpeg-turbo) references in test/fixtures/images;
 *  - 1/2, 1/4, 1/8 output vs libjpeg-turbo's own scaled decoder
 *    (`djpeg -scale 1/d`), committed as small files by
 *    scripts/make_jpeg_scale_refs.sh (tests never call djpeg);
 *  - scale choice, error mapping and a seeded mutation fuzz.
 *
 * Run: npx vitest run --project node test/node/jpeg-lean.test.ts
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import {
  chooseScaleDenom,
  decodeJpegAtScale,
  decodeJpegScaled,
  type ScaleDenom,
} from "../../src/pipeline/codecs/jpeg-lean";
import type { PixelRegion } from "../../src/pipeline/types";

const IMAGES = fileURLToPath(new URL("../fixtures/images/", import.meta.url));
const SCALED = fileURLToPath(new URL("../fixtures/jpeg-scaled/", import.meta.url));
const BAD = fileURLToPath(new URL("../fixtures/bad/", import.meta.url));
const load = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

interface Fixture {
  name: string;
  file: string;
  format: string;
  width: number;
  height: number;
  orientation: number;
}
const jpegs: Fixture[] = (JSON.parse(readFileSync(`${IMAGES}index.json`, "utf8")).images as Fixture[]).filter(
  (f) => f.format === "jpeg",
);
const bad: { file: string; status: number; code: string; notes: string }[] = JSON.parse(
  readFileSync(`${BAD}index.json`, "utf8"),
).files;

/** Same bounds as test/node/decode.test.ts uses for jpeg-js (we measure exact matches). */
const JPEG_MAX_MEAN = 0.35;
const JPEG_MAX_ABS = 4;

function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  expect(a.length).toBe(b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? 0) - (b[i] ?? 0));
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

/** Minimal binary PPM/PGM (P6/P5, maxval 255) reader; P5 is expanded to RGB. */
function readPnm(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const tokens: string[] = [];
  let i = 0;
  while (tokens.length < 4) {
    while (i < bytes.length && /\s/.test(String.fromCharCode(bytes[i] ?? 0))) i++;
    if (bytes[i] === 0x23) {
      while (i < bytes.length && bytes[i] !== 0x0a) i++;
      continue;
    }
    let t = "";
    while (i < bytes.length && !/\s/.test(String.fromCharCode(bytes[i] ?? 0)))
      t += String.fromCharCode(bytes[i++] ?? 0);
    tokens.push(t);
  }
  i++;
  const [magic, w, h] = tokens;
  const width = Number(w);
  const height = Number(h);
  const raw = bytes.subarray(i);
  if (magic === "P6") return { width, height, data: raw.subarray(0, width * height * 3) };
  const data = new Uint8Array(width * height * 3);
  for (let k = 0; k < width * height; k++) data.fill(raw[k] ?? 0, 3 * k, 3 * k + 3);
  return { width, height, data };
}

function expectApiError(fn: () => unknown, status: number, code?: string): ApiError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected an ApiError").toBeInstanceOf(ApiError);
  const err = caught as ApiError;
  expect(err.status).toBe(status);
  if (code) expect(err.code).toBe(code);
  return err;
}

/** Offset of the first segment with this marker (walks segments up to SOS). */
function findSegment(bytes: Uint8Array, marker: number): number {
  let off = 2;
  while (off + 4 <= bytes.length) {
    const m = bytes[off + 1] ?? 0;
    if (m === marker) return off;
    if (m === 0xda) break;
    off += 2 + (((bytes[off + 2] ?? 0) << 8) | (bytes[off + 3] ?? 0));
  }
  throw new Error(`marker ${marker.toString(16)} not found`);
}

describe("1/1 output vs PIL (libjpeg-turbo)", () => {
  for (const f of jpegs) {
    it(f.name, () => {
      const img = decodeJpegAtScale(load(IMAGES + f.file), 1);
      expect([img.width, img.height, img.orientation, img.scaleDenom]).toEqual([f.width, f.height, f.orientation, 1]);
      const { mean, max } = diff(img.data, load(`${IMAGES}${f.name}.rgb`));
      expect(mean).toBeLessThanOrEqual(JPEG_MAX_MEAN);
      expect(max).toBeLessThanOrEqual(JPEG_MAX_ABS);
    });
  }
});

const SCALED_NAMES = [
  "jpeg_baseline_420",
  "jpeg_420_odd",
  "jpeg_baseline_444_odd",
  "jpeg_440",
  "jpeg_progressive",
  "jpeg_progressive_422",
  "jpeg_gray",
  "jpeg_cmyk",
  "jpeg_restart",
  "jpeg_rgb_adobe",
  "jpeg_adobe_ycc",
  "jpeg_thin_4x300",
];

describe("scaled output vs djpeg -scale 1/d (committed references)", () => {
  for (const name of SCALED_NAMES) {
    for (const d of [2, 4, 8] as const) {
      it(`${name} at 1/${d}`, () => {
        const img = decodeJpegAtScale(load(`${IMAGES}${name}.jpg`), d);
        const ref = readPnm(load(`${SCALED}${name}_1_${d}.ppm`));
        expect([img.width, img.height, img.scaleDenom]).toEqual([ref.width, ref.height, d]);
        const { mean, max } = diff(img.data, ref.data);
        // Measured: bit-exact (mean 0, max 0) on every file; small headroom only.
        expect(mean).toBeLessThanOrEqual(0.05);
        expect(max).toBeLessThanOrEqual(2);
      });
    }
  }
});

describe("blocks too large for the 32-bit IDCT (crafted quantisation tables)", () => {
  // Real blocks take the int32 IDCTs; a block whose coefficient magnitudes
  // could overflow them takes the float64 ones. Quant values of 255 on real
  // coefficients push many blocks of these files over that limit (and some
  // stay under it). The hashes were taken from the decoder before the int32
  // path existed (every block in float64), so they pin both paths and the
  // limit between them, at every scale.
  function boostQuant(src: Uint8Array): Uint8Array {
    const b = src.slice();
    let off = 2;
    while (off + 4 <= b.length) {
      const m = b[off + 1] ?? 0;
      const len = ((b[off + 2] ?? 0) << 8) | (b[off + 3] ?? 0);
      if (m === 0xdb) {
        for (let p = off + 4; p < off + 2 + len; ) {
          const pq = (b[p] ?? 0) >> 4;
          p++;
          if (!pq) for (let k = 0; k < 64; k++) b[p + k] = k % 3 === 0 ? 255 : 1;
          p += pq ? 128 : 64;
        }
      }
      if (m === 0xda) break;
      off += 2 + len;
    }
    return b;
  }
  const fnv1a = (d: Uint8Array): number => {
    let h = 0x811c9dc5;
    for (const x of d) h = Math.imul(h ^ x, 0x01000193) >>> 0;
    return h;
  };
  const expected: Record<string, [number, number, number, number]> = {
    jpeg_baseline_420: [0x9228282, 0xff958a76, 0xfc524a8f, 0x5884fa57],
    jpeg_progressive: [0xccd441e9, 0x9e8133ef, 0xaa0ae2cd, 0x26d81f75],
    jpeg_baseline_444_odd: [0xd1fc3cc0, 0x19d5b375, 0x49dce8e2, 0xf1cef39f],
  };
  for (const [name, hashes] of Object.entries(expected)) {
    it(name, () => {
      const bytes = boostQuant(load(`${IMAGES}${name}.jpg`));
      const got = ([1, 2, 4, 8] as const).map((d) => fnv1a(decodeJpegAtScale(bytes, d).data));
      expect(got).toEqual(hashes);
    });
  }
});

describe("scale choice", () => {
  it.each([
    [4032, 3024, 512, 4],
    [3024, 4032, 512, 4],
    [4096, 4096, 512, 8],
    [4095, 4095, 512, 8], // ceil(4095/8) = 512, libjpeg's output size
    [4088, 4088, 512, 4],
    [2000, 1500, 512, 2],
    [2048, 1024, 512, 2],
    [2046, 1022, 512, 1],
    [1024, 1023, 512, 2], // ceil(1023/2) = 512
    [1022, 1022, 512, 1],
    [1024, 768, 512, 1],
    [640, 480, 512, 1],
    [1, 1, 512, 1],
    [8000, 600, 512, 1],
    [320, 240, 100, 2],
    [320, 240, 30, 8],
  ])("%ix%i, minShortSide %i -> 1/%i", (w, h, m, d) => {
    expect(chooseScaleDenom(w, h, m)).toBe(d);
    // The chosen scale keeps the shorter side >= minShortSide (unless 1/1).
    if (d > 1) expect(Math.min(Math.ceil(w / d), Math.ceil(h / d))).toBeGreaterThanOrEqual(m);
    if (d < 8) expect(Math.min(Math.ceil(w / (d * 2)), Math.ceil(h / (d * 2)))).toBeLessThan(m);
  });

  it("decodeJpegScaled picks the scale and returns scaled dims, probe orientation unchanged", () => {
    const img = decodeJpegScaled(load(`${IMAGES}jpeg_baseline_420.jpg`), { minShortSide: 100 });
    expect([img.width, img.height, img.scaleDenom, img.data.length]).toEqual([160, 120, 2, 160 * 120 * 3]);
    const ref = readPnm(load(`${SCALED}jpeg_baseline_420_1_2.ppm`));
    expect(diff(img.data, ref.data).max).toBeLessThanOrEqual(2);
    const o6 = decodeJpegScaled(load(`${IMAGES}jpeg_exif_orient6.jpg`), { minShortSide: 1 });
    expect(o6.orientation).toBe(6);
    expect(o6.scaleDenom).toBe(8);
    const small = decodeJpegScaled(load(`${IMAGES}jpeg_baseline_420.jpg`), { minShortSide: 512 });
    expect([small.width, small.height, small.scaleDenom]).toEqual([320, 240, 1]);
  });
});

describe("decoding only a region (PixelRegion)", () => {
  const PHOTOS = fileURLToPath(new URL("../fixtures/photos/", import.meta.url));
  const files = [
    ...jpegs.map((f) => `${IMAGES}${f.file}`),
    ...["astronaut.jpg", "coffee.jpg", "hubble.jpg", "retina.jpg"].map((f) => `${PHOTOS}${f}`),
  ];
  /** Deterministic LCG in [0, 1). */
  const rng = (seed: number) => () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };

  it("produces exactly the full decode's pixels inside the region and 0 outside, for every fixture, scale and many regions", () => {
    const rand = rng(7);
    let partial = 0;
    for (const file of files) {
      const bytes = load(file);
      for (const d of [1, 2, 4, 8] as ScaleDenom[]) {
        const full = decodeJpegAtScale(bytes, d);
        expect(full.region, file).toBeUndefined();
        const { width: W, height: H } = full;
        const regions = [
          // One pixel, a single row / column, the corners, and random rectangles.
          { x0: W >> 1, x1: (W >> 1) + 1, y0: H >> 1, y1: (H >> 1) + 1 },
          { x0: 0, x1: W, y0: H - 1, y1: H },
          { x0: W - 1, x1: W, y0: 0, y1: H },
          { x0: 0, x1: Math.ceil(W / 3), y0: 0, y1: Math.ceil(H / 3) },
          ...Array.from({ length: 6 }, () => {
            const a = Math.floor(rand() * W);
            const b = Math.floor(rand() * H);
            return { x0: a, x1: a + 1 + Math.floor(rand() * (W - a)), y0: b, y1: b + 1 + Math.floor(rand() * (H - b)) };
          }),
        ];
        for (let r of regions) {
          const got = decodeJpegAtScale(bytes, d, undefined, undefined, undefined, (w, h) => {
            expect([w, h]).toEqual([W, H]);
            return r;
          });
          const whole = r.x0 === 0 && r.y0 === 0 && r.x1 === W && r.y1 === H;
          if (whole) expect(got.region).toBeUndefined();
          else {
            partial++;
            // What was produced: the region asked for, widened to even columns at most (4:2:0's fused path).
            const g = got.region as PixelRegion;
            expect([g.y0, g.y1], file).toEqual([r.y0, r.y1]);
            expect(r.x0 - g.x0, file).toBeGreaterThanOrEqual(0);
            expect(r.x0 - g.x0, file).toBeLessThanOrEqual(1);
            expect(g.x1 - r.x1, file).toBeGreaterThanOrEqual(0);
            expect(g.x1 - r.x1, file).toBeLessThanOrEqual(1);
            r = g;
          }
          let inside = 0;
          let outsideNonZero = 0;
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              const o = (y * W + x) * 3;
              const isIn = x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1;
              for (let c = 0; c < 3; c++) {
                if (isIn) {
                  if (got.data[o + c] !== full.data[o + c]) {
                    throw new Error(`${file} 1/${d} region ${JSON.stringify(r)}: pixel ${x},${y} differs`);
                  }
                  inside++;
                } else if (got.data[o + c] !== 0) outsideNonZero++;
              }
            }
          }
          expect(inside).toBe((r.x1 - r.x0) * (r.y1 - r.y0) * 3);
          expect(outsideNonZero, `${file} 1/${d} ${JSON.stringify(r)}`).toBe(0);
        }
      }
    }
    expect(partial).toBeGreaterThan(files.length * 4 * 8);
  });

  it("an empty or out-of-bounds region means the whole image", () => {
    const bytes = load(`${IMAGES}jpeg_baseline_420.jpg`);
    const full = decodeJpegAtScale(bytes, 1);
    for (const r of [
      { x0: 5, x1: 5, y0: 0, y1: 10 },
      { x0: 400, x1: 500, y0: 0, y1: 10 },
    ]) {
      const got = decodeJpegAtScale(bytes, 1, undefined, undefined, undefined, () => r);
      expect(got.region).toBeUndefined();
      expect(Buffer.from(got.data).equals(Buffer.from(full.data))).toBe(true);
    }
    const clamped = decodeJpegAtScale(bytes, 1, undefined, undefined, undefined, () => ({
      x0: -5,
      x1: 1e6,
      y0: 100,
      y1: 1e6,
    }));
    expect(clamped.region).toEqual({ x0: 0, x1: full.width, y0: 100, y1: full.height });
  });
});

describe("errors", () => {
  const good = load(`${IMAGES}jpeg_baseline_420.jpg`);
  const prog = load(`${IMAGES}jpeg_progressive.jpg`);

  for (const b of bad.filter((x) => x.file.endsWith(".jpg"))) {
    it(`${b.file} -> ${b.status} ${b.code} (${b.notes})`, () => {
      for (const d of [1, 2, 4, 8] as const)
        expectApiError(() => decodeJpegAtScale(load(BAD + b.file), d), b.status, b.code);
    });
  }

  it("truncation anywhere -> 422 (baseline and progressive, all scales)", () => {
    for (const src of [good, prog]) {
      for (let k = 1; k <= 40; k++) {
        const cut = src.subarray(0, Math.floor((src.length * k) / 41));
        for (const d of [1, 8] as const) {
          const err = expectApiError(() => decodeJpegAtScale(cut, d), 422, "invalid_image");
          expect(err.message.length).toBeGreaterThan(0);
        }
      }
    }
  });

  it("missing EOI -> 422; cut scan with EOI appended -> 422", () => {
    expectApiError(() => decodeJpegAtScale(good.subarray(0, good.length - 2), 4), 422, "invalid_image");
    const cut = new Uint8Array(Math.floor(good.length * 0.7) + 2);
    cut.set(good.subarray(0, cut.length - 2));
    cut.set([0xff, 0xd9], cut.length - 2);
    expectApiError(() => decodeJpegAtScale(cut, 2), 422, "invalid_image");
  });

  it("over-subscribed Huffman table -> 422", () => {
    const bytes = good.slice();
    const dht = findSegment(bytes, 0xc4);
    const counts = dht + 5; // FF C4, length(2), Tc/Th, then 16 counts
    // Three 1-bit codes cannot exist; keep the total unchanged.
    let moved = 0;
    for (let l = 15; l >= 1 && moved < 3; l--) {
      const take = Math.min(bytes[counts + l] ?? 0, 3 - moved);
      bytes[counts + l] = (bytes[counts + l] ?? 0) - take;
      moved += take;
    }
    bytes[counts] = (bytes[counts] ?? 0) + moved;
    expectApiError(() => decodeJpegAtScale(bytes, 1), 422, "invalid_image");
  });

  it("12-bit -> 415; arithmetic coding (SOF9) -> 415; lossless (SOF3) -> 415", () => {
    const twelve = good.slice();
    twelve[findSegment(twelve, 0xc0) + 4] = 12;
    expectApiError(() => decodeJpegAtScale(twelve, 1), 415, "unsupported_media_type");
    for (const m of [0xc9, 0xc3]) {
      const other = good.slice();
      other[findSegment(other, 0xc0) + 1] = m;
      expectApiError(() => decodeJpegAtScale(other, 4), 415, "unsupported_media_type");
    }
  });

  it("pixel budget -> 413 before decoding", () => {
    expectApiError(() => decodeJpegAtScale(good, 8, 320 * 240 - 1), 413, "image_too_large");
  });

  it("non-JPEG input -> 415", () => {
    expectApiError(() => decodeJpegScaled(load(`${IMAGES}png_rgb8.png`), { minShortSide: 1 }), 415);
  });

  it("seeded mutation fuzz: 300 iterations, every outcome a valid image or a 4xx ApiError", () => {
    let seed = 0x2545f491;
    const rand = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 4294967296;
    };
    const sources = [
      "jpeg_baseline_420",
      "jpeg_progressive",
      "jpeg_progressive_422",
      "jpeg_restart",
      "jpeg_cmyk",
      "jpeg_gray",
    ].map((n) => load(`${IMAGES}${n}.jpg`));
    const outcomes = { ok: 0, rejected: 0 };
    for (let iter = 0; iter < 300; iter++) {
      const src = sources[Math.floor(rand() * sources.length)] as Uint8Array;
      const bytes = src.slice();
      const edits = 1 + Math.floor(rand() * 8);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * bytes.length);
        const kind = rand();
        if (kind < 0.5) bytes[at] = Math.floor(rand() * 256);
        else if (kind < 0.8) bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(rand() * 8));
        else bytes[at] = 0xff;
      }
      const d = ([1, 2, 4, 8] as const)[Math.floor(rand() * 4)] as ScaleDenom;
      try {
        const img = decodeJpegAtScale(bytes, d);
        expect(img.data.length).toBe(img.width * img.height * 3);
        expect(img.width).toBeGreaterThan(0);
        expect(img.height).toBeGreaterThan(0);
        outcomes.ok++;
      } catch (e) {
        if (!(e instanceof ApiError)) throw new Error(`iteration ${iter}: non-ApiError ${String(e)}`);
        expect(e.status).toBeGreaterThanOrEqual(400);
        expect(e.status).toBeLessThan(500);
        outcomes.rejected++;
      }
    }
    expect(outcomes.ok + outcomes.rejected).toBe(300);
  });
});
