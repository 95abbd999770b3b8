/**
 * Writes N varied, distinct PNG test images into a folder, with no Python and
 * no image library: a minimal PNG encoder over node:zlib.
 *
 *   npx tsx scripts/gen-images.ts <folder> [count=200] [seed=1]
 *
 * Variety is the point (the bulk path should see what real folders hold):
 * sizes 64..640 px per side, RGB, RGBA and grayscale, gradients, shapes, noise,
 * stripes and checkers, and a few files in sub-folders to exercise the
 * recursive walk. Every image stamps its own index into its first row, so no
 * two files are byte-identical (the cache and sha256 checks rely on that).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

// --- PNG encoding ------------------------------------------------------------

// Node 20 has no zlib.crc32 (added in 22), so a table-driven CRC-32 it is.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = crc ^ 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  // The CRC covers the type and the data, not the length.
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

export type ColorType = "gray" | "rgb" | "rgba";
const CHANNELS: Record<ColorType, number> = { gray: 1, rgb: 3, rgba: 4 };
const PNG_COLOR_TYPE: Record<ColorType, number> = { gray: 0, rgb: 2, rgba: 6 };

/** 8-bit PNG from interleaved pixels. Filter "Sub" on every row: smaller files for gradients, trivial to write. */
export function encodePng(width: number, height: number, color: ColorType, pixels: Uint8Array): Buffer {
  const ch = CHANNELS[color];
  if (pixels.length !== width * height * ch)
    throw new Error(`expected ${width * height * ch} bytes, got ${pixels.length}`);
  const stride = width * ch;
  const raw = Buffer.alloc((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = 1; // filter type 1 (Sub): each byte minus the same channel of the pixel to its left
    for (let x = 0; x < stride; x++) {
      const cur = pixels[y * stride + x] as number;
      const left = x >= ch ? (pixels[y * stride + x - ch] as number) : 0;
      raw[o + 1 + x] = (cur - left) & 0xff;
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = PNG_COLOR_TYPE[color];
  // compression, filter method and interlace stay 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(raw)),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

// --- image content -----------------------------------------------------------

/** mulberry32: tiny, seedable, good enough for test pictures; Math.random would make runs unrepeatable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rgb = [number, number, number];
const PATTERNS = ["linear", "radial", "shapes", "noise", "stripes", "checker"] as const;
export type Pattern = (typeof PATTERNS)[number];

export interface GeneratedImage {
  rel: string;
  width: number;
  height: number;
  color: ColorType;
  pattern: Pattern;
  png: Buffer;
}

export function generateImage(index: number, seed = 1): GeneratedImage {
  const r = rng(seed * 1_000_003 + index * 7919);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const color = (): Rgb => [int(0, 255), int(0, 255), int(0, 255)];
  const width = int(64, 640);
  const height = int(64, 640);
  const pattern = PATTERNS[index % PATTERNS.length] as Pattern;
  const colorType: ColorType = index % 7 === 3 ? "gray" : index % 5 === 4 ? "rgba" : "rgb";
  const c1 = color();
  const c2 = color();
  const rgb = new Uint8Array(width * height * 3);
  const put = (x: number, y: number, c: Rgb) => {
    const o = (y * width + x) * 3;
    rgb[o] = c[0];
    rgb[o + 1] = c[1];
    rgb[o + 2] = c[2];
  };
  const mix = (t: number): Rgb => [
    Math.round(c1[0] + (c2[0] - c1[0]) * t),
    Math.round(c1[1] + (c2[1] - c1[1]) * t),
    Math.round(c1[2] + (c2[2] - c1[2]) * t),
  ];

  if (pattern === "linear") {
    const angle = r() * Math.PI * 2;
    const dx = Math.cos(angle);
    const dy = Math.sin(angle);
    const span = Math.abs(dx) * width + Math.abs(dy) * height || 1;
    const base = Math.min(0, dx * width) + Math.min(0, dy * height);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) put(x, y, mix((x * dx + y * dy - base) / span));
  } else if (pattern === "radial") {
    const cx = r() * width;
    const cy = r() * height;
    const rad = Math.hypot(width, height) * (0.3 + r() * 0.7);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) put(x, y, mix(Math.min(1, Math.hypot(x - cx, y - cy) / rad)));
  } else if (pattern === "shapes") {
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) put(x, y, mix(y / height));
    for (let s = int(3, 12); s > 0; s--) {
      const c = color();
      const x0 = int(0, width - 1);
      const y0 = int(0, height - 1);
      const size = int(8, Math.max(9, Math.floor(Math.min(width, height) / 2)));
      const circle = r() < 0.5;
      for (let y = Math.max(0, y0 - size); y < Math.min(height, y0 + size); y++)
        for (let x = Math.max(0, x0 - size); x < Math.min(width, x0 + size); x++)
          if (!circle || Math.hypot(x - x0, y - y0) < size) put(x, y, c);
    }
  } else if (pattern === "noise") {
    const amount = int(20, 255);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const [a, b, c] = mix(x / width);
        const n = () => Math.round((r() - 0.5) * amount);
        put(x, y, [clamp(a + n()), clamp(b + n()), clamp(c + n())]);
      }
  } else {
    const period = int(4, 64);
    const stripes = pattern === "stripes";
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const on = stripes
          ? Math.floor((x + y * (index % 3)) / period) % 2
          : (Math.floor(x / period) + Math.floor(y / period)) % 2;
        put(x, y, on ? c1 : c2);
      }
  }

  // Stamp the index into the first pixels (24 bits, one bit per pixel, black or white) so every file differs.
  for (let bit = 0; bit < 24 && bit < width; bit++) put(bit, 0, (index >> bit) & 1 ? [255, 255, 255] : [0, 0, 0]);

  const pixels = convert(rgb, width, height, colorType, r);
  const name = `img-${String(index).padStart(4, "0")}-${pattern}-${width}x${height}.png`;
  // Every 4th file goes one or two folders down, so the upload keys carry relative paths.
  const rel = index % 4 === 1 ? `sub/${name}` : index % 8 === 3 ? `sub/deeper/${name}` : name;
  return { rel, width, height, color: colorType, pattern, png: encodePng(width, height, colorType, pixels) };
}

const clamp = (v: number) => Math.min(255, Math.max(0, v));

function convert(rgb: Uint8Array, width: number, height: number, to: ColorType, r: () => number): Uint8Array {
  if (to === "rgb") return rgb;
  const n = width * height;
  if (to === "gray") {
    const g = new Uint8Array(n);
    for (let i = 0; i < n; i++)
      g[i] = Math.round(
        0.299 * (rgb[i * 3] as number) + 0.587 * (rgb[i * 3 + 1] as number) + 0.114 * (rgb[i * 3 + 2] as number),
      );
    return g;
  }
  // RGBA: a horizontal alpha ramp whose floor varies, so compositing over white actually matters.
  const floor = Math.floor(r() * 200);
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[i * 4] = rgb[i * 3] as number;
    out[i * 4 + 1] = rgb[i * 3 + 1] as number;
    out[i * 4 + 2] = rgb[i * 3 + 2] as number;
    out[i * 4 + 3] = floor + Math.round(((255 - floor) * (i % width)) / Math.max(1, width - 1));
  }
  return out;
}

/** Writes `count` images below `dir`; returns their relative paths. */
export function generateImages(dir: string, count: number, seed = 1): GeneratedImage[] {
  const out: GeneratedImage[] = [];
  for (let i = 0; i < count; i++) {
    const img = generateImage(i, seed);
    const path = join(dir, img.rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, img.png);
    out.push(img);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [dir, countArg = "200", seedArg = "1"] = process.argv.slice(2);
  const count = Number(countArg);
  const seed = Number(seedArg);
  if (!dir || !Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
    process.stderr.write("usage: npx tsx scripts/gen-images.ts <folder> [count=200] [seed=1]\n");
    process.exit(2);
  }
  const t0 = Date.now();
  const imgs = generateImages(dir, count, seed);
  const bytes = imgs.reduce((s, i) => s + i.png.length, 0);
  process.stderr.write(
    `wrote ${imgs.length} PNGs (${(bytes / 1e6).toFixed(1)} MB) to ${dir} in ${Date.now() - t0} ms\n`,
  );
}
