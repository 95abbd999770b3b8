/**
 * Decode stage vs. independent reference decodes (PIL: libjpeg-turbo, libpng,
 * libwebp) produced by scripts/make_fixtures.py.
 *
 * Run: npx vitest run --project node test/node/decode.test.ts
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors";
import { readExifOrientation } from "../../src/pipeline/codecs/exif";
import { type decodeWebp, initWebpDecoder, WebpDecoderNotInitialisedError } from "../../src/pipeline/codecs/webp";
import { decodeImage, probeImage } from "../../src/pipeline/decode";
import type { DecodedImage } from "../../src/pipeline/types";

/**
 * Node may compile wasm from bytes (workerd may not, so the Workers types
 * this project compiles against leave WebAssembly.compile out).
 */
const compileWasm = (bytes: Uint8Array): Promise<WebAssembly.Module> =>
  (WebAssembly as unknown as { compile(b: Uint8Array): Promise<WebAssembly.Module> }).compile(bytes);

const IMAGES = fileURLToPath(new URL("../fixtures/images/", import.meta.url));
const BAD = fileURLToPath(new URL("../fixtures/bad/", import.meta.url));
const MAX_PIXELS = 4096 * 4096; // 16.8 MP, the production default

interface Fixture {
  name: string;
  file: string;
  format: "jpeg" | "png" | "webp";
  width: number;
  height: number;
  orientation: number;
  lossy: boolean;
}
interface BadFixture {
  file: string;
  status: number;
  code: string;
  notes: string;
  message_includes?: string;
}

const images: Fixture[] = JSON.parse(readFileSync(`${IMAGES}index.json`, "utf8")).images;
const bad: BadFixture[] = JSON.parse(readFileSync(`${BAD}index.json`, "utf8")).files;
const load = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

/**
 * Tolerances vs libjpeg-turbo (ISLOW IDCT, fancy upsampling). Our JPEG path
 * re-does libjpeg's chroma upsampling and colour conversion exactly; what is
 * left is jpeg-js's different IDCT rounding. Measured on these fixtures:
 * mean 0.07..0.18, max 3. Bounds leave headroom without hiding a real bug
 * (plain jpeg-js nearest-neighbour chroma measured mean 1.0..3.7, max 64).
 */
const JPEG_MAX_MEAN = 0.35;
const JPEG_MAX_ABS = 4;
/** Lossless formats and lossy WebP (same libwebp, bit-exact VP8) must match exactly. */
const EXACT_MAX_ABS = 0;

beforeAll(async () => {
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(require.resolve("@jsquash/webp/codec/dec/webp_dec.wasm"));
  await initWebpDecoder(await compileWasm(wasm));
});

function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] ?? 0) - (b[i] ?? 0));
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

async function expectApiError(p: Promise<unknown>, status: number, code: string): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected the call to fail").toBeInstanceOf(ApiError);
  const api = err as ApiError;
  expect({ status: api.status, code: api.code }).toEqual({ status, code });
  return api;
}

describe("fixtures decode like PIL", () => {
  it("has a varied fixture set", () => {
    expect(images.length).toBeGreaterThanOrEqual(30);
    for (const f of ["jpeg", "png", "webp"]) expect(images.some((i) => i.format === f)).toBe(true);
    expect(new Set(images.map((i) => i.orientation))).toEqual(new Set([1, 2, 3, 4, 5, 6, 7, 8]));
  });

  for (const fx of images) {
    it(`${fx.name}: dimensions, orientation and pixels`, async () => {
      const bytes = load(IMAGES + fx.file);
      const info = probeImage(bytes);
      expect(info).toEqual({ format: fx.format, width: fx.width, height: fx.height, orientation: fx.orientation });

      const img = await decodeImage(bytes, { maxPixels: MAX_PIXELS });
      expect({ format: img.format, width: img.width, height: img.height, orientation: img.orientation }).toEqual(info);
      expect(img.data).toBeInstanceOf(Uint8Array);
      expect(img.data.length).toBe(fx.width * fx.height * 3);

      const ref = load(`${IMAGES}${fx.name}.rgb`);
      expect(ref.length).toBe(img.data.length);
      const { mean, max } = diff(img.data, ref);
      if (fx.format === "jpeg") {
        expect(mean, "mean abs error vs libjpeg").toBeLessThanOrEqual(JPEG_MAX_MEAN);
        expect(max, "max abs error vs libjpeg").toBeLessThanOrEqual(JPEG_MAX_ABS);
      } else {
        expect(max, "max abs error vs PIL").toBeLessThanOrEqual(EXACT_MAX_ABS);
      }
    });
  }

  it("reference comparison is sensitive: a transposed decode fails the JPEG bound", async () => {
    // Guards against tolerances so loose that orientation mix-ups would pass.
    const fx = images.find((i) => i.name === "jpeg_baseline_420");
    if (!fx) throw new Error("fixture missing");
    const img = await decodeImage(load(IMAGES + fx.file), { maxPixels: MAX_PIXELS });
    const ref = load(`${IMAGES}${fx.name}.rgb`);
    const flipped = new Uint8Array(img.data.length);
    for (let y = 0; y < fx.height; y++) {
      flipped.set(img.data.subarray(y * fx.width * 3, (y + 1) * fx.width * 3), (fx.height - 1 - y) * fx.width * 3);
    }
    expect(diff(flipped, ref).mean).toBeGreaterThan(JPEG_MAX_MEAN * 10);
  });
});

describe("bad inputs map to documented API errors", () => {
  for (const b of bad) {
    it(`${b.file} -> ${b.status} ${b.code} (${b.notes})`, async () => {
      const err = await expectApiError(decodeImage(load(BAD + b.file), { maxPixels: MAX_PIXELS }), b.status, b.code);
      if (b.message_includes) expect(err.message).toContain(b.message_includes);
    });
  }

  it("refuses the 50000x50000 header with 413 from the probe alone", async () => {
    const bytes = load(`${BAD}huge_50000x50000.png`);
    const start = performance.now();
    const err = await expectApiError(decodeImage(bytes, { maxPixels: MAX_PIXELS }), 413, "image_too_large");
    expect(err.message).toBe("image is 50000x50000 = 2500.0 MP; the limit is 16.8 MP");
    // A 7.5 GB RGB buffer would either throw RangeError or take far longer.
    expect(performance.now() - start).toBeLessThan(50);
  });

  it("applies the pixel budget exactly at the boundary", async () => {
    const bytes = load(`${IMAGES}jpeg_baseline_420.jpg`); // 320x240 = 76800 px
    await expect(decodeImage(bytes, { maxPixels: 76_800 })).resolves.toMatchObject({ width: 320 });
    await expectApiError(decodeImage(bytes, { maxPixels: 76_799 }), 413, "image_too_large");
  });

  it("a header that lies about its size is rejected (422), not mis-decoded", async () => {
    const bytes = load(`${IMAGES}png_rgb8.png`).slice();
    // Patch IHDR width 128 -> 127 and fix the CRC so only the data disagrees.
    bytes[19] = 127;
    const crc = crc32(bytes.subarray(12, 29));
    new DataView(bytes.buffer).setUint32(29, crc);
    await expectApiError(decodeImage(bytes, { maxPixels: MAX_PIXELS }), 422, "invalid_image");
  });
});

describe("probe", () => {
  it.each([
    ["jpeg_progressive.jpg", "jpeg", 120, 160],
    ["png_palette_4bit.png", "png", 50, 40],
    ["webp_lossy.webp", "webp", 160, 120], // VP8
    ["webp_lossless_alpha.webp", "webp", 128, 128], // VP8L
    ["webp_lossy_alpha.webp", "webp", 150, 100], // VP8X
  ])("%s is %s %dx%d", (file, format, width, height) => {
    expect(probeImage(load(IMAGES + file))).toMatchObject({ format, width, height });
  });

  it("ignores Content-Type style hints: only magic bytes count", () => {
    const svgWithJpegName = load(`${BAD}image.svg`);
    expect(() => probeImage(svgWithJpegName)).toThrow(/SVG/);
  });

  it("every prefix of a valid file is either a clean probe or a 4xx ApiError", () => {
    for (const file of ["jpeg_exif_orient6.jpg", "png_exif_orient6.png", "webp_exif_orient3.webp"]) {
      const bytes = load(IMAGES + file);
      for (let n = 0; n <= Math.min(bytes.length, 400); n++) {
        try {
          probeImage(bytes.subarray(0, n));
        } catch (e) {
          expect(e).toBeInstanceOf(ApiError);
          expect((e as ApiError).status).toBeGreaterThanOrEqual(400);
          expect((e as ApiError).status).toBeLessThan(500);
        }
      }
    }
  });

  it("stops on a zero-length JPEG segment instead of looping", () => {
    const bytes = Uint8Array.of(0xff, 0xd8, 0xff, 0xe1, 0x00, 0x00, 0xff, 0xd9);
    expect(() => probeImage(bytes)).toThrow(ApiError);
  });
});

describe("exif", () => {
  const tiff = (big: boolean, value: number, type = 3): Uint8Array => {
    const b = new Uint8Array(26);
    const v = new DataView(b.buffer);
    b.set(big ? [0x4d, 0x4d] : [0x49, 0x49]);
    v.setUint16(2, 42, !big);
    v.setUint32(4, 8, !big);
    v.setUint16(8, 1, !big);
    v.setUint16(10, 0x0112, !big);
    v.setUint16(12, type, !big);
    v.setUint32(14, 1, !big);
    if (type === 3) v.setUint16(18, value, !big);
    else v.setUint32(18, value, !big);
    return b;
  };

  it.each([1, 2, 3, 4, 5, 6, 7, 8])("reads orientation %d in both byte orders", (n) => {
    expect(readExifOrientation(tiff(false, n))).toBe(n);
    expect(readExifOrientation(tiff(true, n))).toBe(n);
  });

  it("accepts an 'Exif\\0\\0' prefix and LONG-typed values", () => {
    const prefixed = new Uint8Array([0x45, 0x78, 0x69, 0x66, 0, 0, ...tiff(true, 6)]);
    expect(readExifOrientation(prefixed)).toBe(6);
    expect(readExifOrientation(tiff(false, 8, 4))).toBe(8);
  });

  it("falls back to 1 for malformed Exif instead of failing", () => {
    expect(readExifOrientation(new Uint8Array())).toBe(1);
    expect(readExifOrientation(tiff(false, 9))).toBe(1); // out of range
    expect(readExifOrientation(tiff(false, 6).subarray(0, 19))).toBe(1); // value cut off
    const hugeCount = tiff(false, 6);
    new DataView(hugeCount.buffer).setUint16(8, 0xffff, true);
    expect(readExifOrientation(hugeCount)).toBe(6); // first entry still readable
    const badOffset = tiff(true, 6);
    new DataView(badOffset.buffer).setUint32(4, 0xfffffff0, false);
    expect(readExifOrientation(badOffset)).toBe(1);
  });
});

describe("webp decoder lifecycle", () => {
  it("initWebpDecoder is memoised", async () => {
    const require = createRequire(import.meta.url);
    const module = await compileWasm(readFileSync(require.resolve("@jsquash/webp/codec/dec/webp_dec.wasm")));
    const a = initWebpDecoder(module);
    const b = initWebpDecoder(module);
    expect(a).toBe(b);
    await a;
    const img = await decodeImage(load(`${IMAGES}webp_lossy.webp`), { maxPixels: MAX_PIXELS });
    expect(img.width).toBe(160);
  });

  it("prepareWebp runs only for WebP, before its decode, and its failure is not a client error", async () => {
    const calls: string[] = [];
    const prepareWebp = async () => {
      calls.push("prepare");
    };
    await decodeImage(load(`${IMAGES}jpeg_baseline_420.jpg`), { maxPixels: MAX_PIXELS, prepareWebp });
    await decodeImage(load(`${IMAGES}png_rgb8.png`), { maxPixels: MAX_PIXELS, prepareWebp });
    expect(calls).toEqual([]);
    const img = await decodeImage(load(`${IMAGES}webp_lossy.webp`), { maxPixels: MAX_PIXELS, prepareWebp });
    expect(calls).toEqual(["prepare"]);
    expect(img.width).toBe(160);

    const broken = new Error("codec instantiation failed");
    const err = await decodeImage(load(`${IMAGES}webp_lossy.webp`), {
      maxPixels: MAX_PIXELS,
      prepareWebp: () => Promise.reject(broken),
    }).catch((e: unknown) => e);
    expect(err).toBe(broken); // propagates as-is (500), never turned into a 422 invalid_image
  });

  it("decode before init is a clear (non-API, i.e. 500) error", async () => {
    // Fresh module instance so the memoised state of the suite is untouched.
    const { vi } = await import("vitest");
    vi.resetModules();
    const fresh = (await import("../../src/pipeline/codecs/webp")) as { decodeWebp: typeof decodeWebp };
    const info = { format: "webp" as const, width: 1, height: 1, orientation: 1 };
    const err = await fresh.decodeWebp(load(`${IMAGES}webp_lossless_1x1.webp`), info).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ApiError);
    expect((err as Error).name).toBe(WebpDecoderNotInitialisedError.name);
    expect((err as Error).message).toMatch(/initWebpDecoder/);
  });
});

describe("mini-fuzz: mutated fixtures never escape as non-ApiErrors", () => {
  /** mulberry32: tiny, seeded, reproducible. */
  function rng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  const sources = images.filter((i) => i.width * i.height <= 20_000).map((i) => load(IMAGES + i.file));

  function mutate(src: Uint8Array, rand: () => number): Uint8Array {
    const pick = (n: number): number => Math.floor(rand() * n);
    const kind = pick(5);
    const b = src.slice();
    // Bias positions towards headers, where parsers branch the most.
    const pos = (): number => (rand() < 0.6 ? pick(Math.min(b.length, 256)) : pick(b.length));
    switch (kind) {
      case 0: // byte flips
        for (let i = 0, n = 1 + pick(8); i < n; i++) {
          const p = pos();
          b[p] = (b[p] ?? 0) ^ (1 << pick(8));
        }
        return b;
      case 1: // truncation
        return b.subarray(0, pick(b.length));
      case 2: {
        // inserted junk
        const at = pos();
        const junk = Uint8Array.from({ length: 1 + pick(32) }, () => pick(256));
        const out = new Uint8Array(b.length + junk.length);
        out.set(b.subarray(0, at));
        out.set(junk, at);
        out.set(b.subarray(at), at + junk.length);
        return out;
      }
      case 3: {
        // random 16/32-bit values at header positions (lengths, dimensions)
        const p = pos();
        for (let i = 0; i < 4 && p + i < b.length; i++) b[p + i] = rand() < 0.5 ? 0xff : pick(256);
        return b;
      }
      default: {
        // deleted range
        const at = pos();
        const n = 1 + pick(64);
        const out = new Uint8Array(Math.max(0, b.length - n));
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + n).subarray(0, out.length - at), at);
        return out;
      }
    }
  }

  it("300 seeded mutations: DecodedImage or 4xx ApiError, nothing else", async () => {
    const rand = rng(0xed9e7a9);
    const outcomes = { decoded: 0, rejected: 0 };
    for (let i = 0; i < 300; i++) {
      const src = sources[Math.floor(rand() * sources.length)];
      if (!src) throw new Error("no fuzz sources");
      const input = mutate(src, rand);
      let result: DecodedImage | undefined;
      try {
        result = await decodeImage(input, { maxPixels: 1_000_000 });
      } catch (e) {
        if (!(e instanceof ApiError)) throw new Error(`mutation ${i} escaped as ${String(e)}`);
        expect(e.status).toBeGreaterThanOrEqual(400);
        expect(e.status).toBeLessThan(500);
        outcomes.rejected++;
        continue;
      }
      expect(result.data.length).toBe(result.width * result.height * 3);
      expect(result.orientation).toBeGreaterThanOrEqual(1);
      expect(result.orientation).toBeLessThanOrEqual(8);
      outcomes.decoded++;
    }
    // Both outcomes must occur, or the mutator is not exercising anything.
    expect(outcomes.decoded).toBeGreaterThan(10);
    expect(outcomes.rejected).toBeGreaterThan(50);
  });
});

function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
