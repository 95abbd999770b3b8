/**
 * Seeded mutational fuzzer for the decode -> preprocess path, in plain Node.
 *
 *   npm run fuzz -- --iterations 50000 --seed 1
 *   npm run fuzz -- --replay 1234 --seed 1     # rebuild one case, write it out, run it
 *
 * Every case is a seed file (test/fixtures/corpus, images, bad, photos) with
 * 1-4 mutations: bit flips, byte sets, interesting 16/32-bit values, chunk
 * splice/duplication/deletion/truncation, and format-aware edits that reach
 * past the checksums — JPEG segment lengths, SOF size/components/sampling,
 * DHT counts, SOS parameters, restart markers; PNG IHDR fields, PLTE/tRNS,
 * re-deflated IDAT data and duplicated/dropped chunks with CRCs fixed up; WebP
 * RIFF/VP8/VP8L/VP8X sizes and flags — plus PNG decompression bombs (IDAT or
 * iCCP inflating to 192 MiB). Each case runs through the worker's own
 * entry: `decodeImageWithInfo(bytes, decodeOptionsFor(model))` then
 * `preprocess(...)`, for each served model in turn.
 *
 * Allowed outcomes: success (a well-formed tensor) or an ApiError with a 4xx
 * status. Failures: any other exception, a 5xx ApiError, a malformed
 * output, a case that hangs (no progress for --hang-ms) or is slow
 * (--slow-ms), a single allocation over --alloc-mib (decompression bombs),
 * the fuzz process dying, or a known-good canary image failing afterwards
 * (the "isolate" must keep serving). Case i is a pure function of
 * (--seed, i), so any failure is reproducible with --replay i.
 *
 * The CLI runs cases in a child process it can kill and restart (a hang or a
 * crash cannot be caught in-process); test/node/fuzz.test.ts calls `fuzz()`
 * in-process for a short run.
 */
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createDeflate, deflateSync, inflateSync } from "node:zlib";
import { crc32 } from "../src/pipeline/codecs/probe";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SEED_DIRS = ["test/fixtures/corpus", "test/fixtures/images", "test/fixtures/bad", "test/fixtures/photos"];
const SEED_EXT = /\.(jpe?g|png|webp|gif|bin|heic|avif|svg|pdf|bmp|tiff|json)$/i;
const MAX_SEED_BYTES = 300 * 1024;

// ------------------------------------------------------------------ rng ----

/** mulberry32: small, fast, and the same sequence on every platform. */
export function rngFor(seed: number, iteration: number): Rng {
  let a = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(iteration + 1, 0xc2b2ae35)) >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < 4; i++) next();
  return {
    float: next,
    int: (n) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T,
    chance: (p) => next() < p,
  };
}

export interface Rng {
  float(): number;
  /** 0..n-1 */
  int(n: number): number;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

// ---------------------------------------------------------------- seeds ----

export interface Seed {
  name: string;
  bytes: Uint8Array;
  format: "jpeg" | "png" | "webp" | "other";
}

export function sniff(b: Uint8Array): Seed["format"] {
  if (b[0] === 0xff && b[1] === 0xd8) return "jpeg";
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "png";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return "webp";
  return "other";
}

export function loadSeeds(dirs = SEED_DIRS): Seed[] {
  const seeds: Seed[] = [];
  for (const dir of dirs) {
    const abs = join(ROOT, dir);
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      continue; // e.g. the corpus before gen-corpus has run
    }
    for (const name of names) {
      if (!SEED_EXT.test(name) || name === "index.json") continue;
      const path = join(abs, name);
      if (statSync(path).size > MAX_SEED_BYTES) continue;
      const bytes = new Uint8Array(readFileSync(path));
      seeds.push({ name: `${dir.split("/").pop()}/${name}`, bytes, format: sniff(bytes) });
    }
  }
  if (seeds.length === 0) throw new Error("no fuzz seeds found");
  return seeds;
}

// ------------------------------------------------------------ mutations ----

const INTERESTING8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x40];
const INTERESTING16 = [0, 1, 2, 7, 8, 9, 15, 16, 17, 255, 256, 4095, 4096, 4097, 16383, 16384, 32767, 32768, 65535];
const INTERESTING32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0xffff, 0x10000, 50000, 46341, 65536 * 4096];

const ascii = (b: Uint8Array, o: number, n: number): string => String.fromCharCode(...Array.from(b.subarray(o, o + n)));
const be16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);
const be32 = (b: Uint8Array, o: number): number => (be16(b, o) * 0x10000 + be16(b, o + 2)) >>> 0;
const le32 = (b: Uint8Array, o: number): number =>
  ((b[o] ?? 0) | ((b[o + 1] ?? 0) << 8) | ((b[o + 2] ?? 0) << 16) | ((b[o + 3] ?? 0) << 24)) >>> 0;
function put16be(b: Uint8Array, o: number, v: number): void {
  if (o + 2 > b.length) return;
  b[o] = (v >>> 8) & 255;
  b[o + 1] = v & 255;
}
function put32be(b: Uint8Array, o: number, v: number): void {
  if (o + 4 > b.length) return;
  b[o] = (v >>> 24) & 255;
  b[o + 1] = (v >>> 16) & 255;
  b[o + 2] = (v >>> 8) & 255;
  b[o + 3] = v & 255;
}
function put32le(b: Uint8Array, o: number, v: number): void {
  if (o + 4 > b.length) return;
  b[o] = v & 255;
  b[o + 1] = (v >>> 8) & 255;
  b[o + 2] = (v >>> 16) & 255;
  b[o + 3] = (v >>> 24) & 255;
}
export const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
/** A random position, biased towards the start where headers live. */
const pos = (r: Rng, len: number): number => (len === 0 ? 0 : r.chance(0.5) ? r.int(Math.min(len, 256)) : r.int(len));

type Mutator = (r: Rng, b: Uint8Array, others: readonly Seed[]) => Uint8Array;

const generic: Record<string, Mutator> = {
  flipBits(r, b) {
    const out = b.slice();
    for (let n = 1 + r.int(8); n > 0 && out.length; n--) {
      const p = pos(r, out.length);
      out[p] = (out[p] ?? 0) ^ (1 << r.int(8));
    }
    return out;
  },
  setBytes(r, b) {
    const out = b.slice();
    for (let n = 1 + r.int(4); n > 0 && out.length; n--) {
      out[pos(r, out.length)] = r.chance(0.6) ? r.pick(INTERESTING8) : r.int(256);
    }
    return out;
  },
  setInt(r, b) {
    const out = b.slice();
    const p = pos(r, out.length);
    const width = r.int(3);
    if (width === 0) put16be(out, p, r.pick(INTERESTING16));
    else if (width === 1) put32be(out, p, r.pick(INTERESTING32));
    else put32le(out, p, r.pick(INTERESTING32));
    return out;
  },
  truncate(r, b) {
    return b.slice(0, r.chance(0.3) ? pos(r, b.length) : Math.floor(b.length * r.float()));
  },
  deleteRange(r, b) {
    const p = pos(r, b.length);
    const n = 1 + r.int(r.chance(0.7) ? 16 : 1024);
    return concat(b.subarray(0, p), b.subarray(p + n));
  },
  duplicateRange(r, b) {
    const p = r.int(b.length + 1);
    const n = 1 + r.int(r.chance(0.7) ? 32 : 4096);
    const at = r.int(b.length + 1);
    return concat(b.subarray(0, at), b.subarray(p, p + n), b.subarray(at));
  },
  splice(r, b, others) {
    const o = r.pick(others).bytes;
    const p = r.int(o.length + 1);
    const n = 1 + r.int(r.chance(0.5) ? 64 : 8192);
    const at = r.int(b.length + 1);
    const piece = o.subarray(p, p + n);
    if (r.chance(0.5)) return concat(b.subarray(0, at), piece, b.subarray(at)); // insert
    return concat(b.subarray(0, at), piece, b.subarray(at + piece.length)); // overwrite
  },
  insertRandom(r, b) {
    const junk = new Uint8Array(1 + r.int(32));
    for (let i = 0; i < junk.length; i++) junk[i] = r.chance(0.3) ? r.pick(INTERESTING8) : r.int(256);
    const at = pos(r, b.length + 1);
    return concat(b.subarray(0, at), junk, b.subarray(at));
  },
};

// JPEG: segment-level edits.
interface JpegSegment {
  marker: number;
  /** Offset of the 0xFF. */
  at: number;
  /** Offset of the payload (after the length field). */
  payload: number;
  length: number;
}

function jpegSegments(b: Uint8Array): JpegSegment[] {
  const segs: JpegSegment[] = [];
  let off = 2;
  while (off + 4 <= b.length && b[off] === 0xff) {
    const marker = b[off + 1] ?? 0;
    if (marker === 0xd9) break;
    if (marker >= 0xd0 && marker <= 0xd7) {
      off += 2;
      continue;
    }
    const length = be16(b, off + 2);
    segs.push({ marker, at: off, payload: off + 4, length });
    if (marker === 0xda) {
      // skip entropy-coded data to the next non-RST marker
      let p = off + 2 + length;
      while (
        p + 1 < b.length &&
        !(b[p] === 0xff && b[p + 1] !== 0 && !((b[p + 1] ?? 0) >= 0xd0 && (b[p + 1] ?? 0) <= 0xd7))
      )
        p++;
      off = p;
      continue;
    }
    off += 2 + length;
  }
  return segs;
}

const jpeg: Record<string, Mutator> = {
  segmentLength(r, b) {
    const segs = jpegSegments(b);
    if (!segs.length) return generic.flipBits?.(r, b, []) ?? b;
    const s = r.pick(segs);
    const out = b.slice();
    put16be(out, s.at + 2, r.chance(0.5) ? s.length + r.int(9) - 4 : r.pick(INTERESTING16));
    return out;
  },
  frame(r, b) {
    const sof = jpegSegments(b).find((s) => s.marker >= 0xc0 && s.marker <= 0xc2);
    if (!sof) return b;
    const out = b.slice();
    const p = sof.payload;
    switch (r.int(6)) {
      case 0:
        put16be(out, p + 1, r.pick(INTERESTING16)); // height
        break;
      case 1:
        put16be(out, p + 3, r.pick(INTERESTING16)); // width
        break;
      case 2:
        out[p + 5] = r.pick([0, 1, 2, 3, 4, 5, 255]); // component count
        break;
      case 3:
        out[p + 7 + 3 * r.int(Math.max(1, out[p + 5] ?? 1))] = r.int(256); // sampling factors
        break;
      case 4:
        out[p + 8 + 3 * r.int(Math.max(1, out[p + 5] ?? 1))] = r.int(6); // quant table selector
        break;
      default:
        out[sof.at + 1] = r.pick([0xc0, 0xc1, 0xc2, 0xc3, 0xc9, 0xcb]); // coding process
    }
    return out;
  },
  huffman(r, b) {
    const dhts = jpegSegments(b).filter((s) => s.marker === 0xc4);
    if (!dhts.length) return b;
    const s = r.pick(dhts);
    const out = b.slice();
    if (r.chance(0.5))
      out[s.payload + 1 + r.int(16)] = r.chance(0.5) ? r.int(256) : (out[s.payload + 1 + r.int(16)] ?? 0) + 1;
    else out[s.payload + 17 + r.int(Math.max(1, s.length - 19))] = r.int(256); // a symbol
    if (r.chance(0.2)) out[s.payload] = r.int(256); // class/id
    return out;
  },
  quant(r, b) {
    const dqts = jpegSegments(b).filter((s) => s.marker === 0xdb);
    if (!dqts.length) return b;
    const s = r.pick(dqts);
    const out = b.slice();
    if (r.chance(0.3)) out[s.payload] = r.int(256);
    else for (let n = 1 + r.int(8); n > 0; n--) out[s.payload + 1 + r.int(64)] = r.pick([0, 1, 255, r.int(256)]);
    return out;
  },
  scan(r, b) {
    const sos = jpegSegments(b).filter((s) => s.marker === 0xda);
    if (!sos.length) return b;
    const s = r.pick(sos);
    const out = b.slice();
    const ns = out[s.payload] ?? 1;
    const tail = s.payload + 1 + 2 * ns;
    switch (r.int(5)) {
      case 0:
        out[s.payload] = r.pick([0, 1, 2, 3, 4, 5]);
        break;
      case 1:
        out[s.payload + 1 + 2 * r.int(ns)] = r.int(256); // component id
        break;
      case 2:
        out[s.payload + 2 + 2 * r.int(ns)] = r.int(256); // table selectors
        break;
      case 3:
        out[tail + r.int(2)] = r.pick([0, 1, 5, 63, 64, 255]); // Ss / Se
        break;
      default:
        out[tail + 2] = r.int(256); // Ah/Al
    }
    return out;
  },
  restart(r, b) {
    const out = b.slice();
    const segs = jpegSegments(b);
    if (r.chance(0.5)) {
      // add or change a DRI
      const dri = new Uint8Array([0xff, 0xdd, 0, 4, 0, 0]);
      put16be(dri, 4, r.pick([0, 1, 2, 3, 65535, r.int(100)]));
      const at = segs.find((s) => s.marker === 0xda)?.at ?? 2;
      return concat(out.subarray(0, at), dri, out.subarray(at));
    }
    // drop a marker into the entropy-coded data
    const sos = segs.find((s) => s.marker === 0xda);
    if (!sos) return out;
    const start = sos.payload + sos.length - 2;
    const at = start + r.int(Math.max(1, out.length - start));
    const m = new Uint8Array([0xff, r.pick([0xd0, 0xd1, 0xd7, 0xd8, 0xd9, 0xda, 0xc4, 0x00, 0xff])]);
    return concat(out.subarray(0, at), m, out.subarray(at));
  },
  dropEoi(_r, b) {
    return b.length >= 2 && b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9 ? b.slice(0, -2) : b;
  },
};

// PNG: chunk-level edits with CRCs fixed so the change reaches the decoder.
interface PngChunk {
  at: number;
  length: number;
  type: string;
}

function pngChunks(b: Uint8Array): PngChunk[] {
  const chunks: PngChunk[] = [];
  let off = 8;
  while (off + 12 <= b.length) {
    const length = be32(b, off);
    const type = ascii(b, off + 4, 4);
    chunks.push({ at: off, length, type });
    if (off + 12 + length > b.length || type === "IEND") break;
    off += 12 + length;
  }
  return chunks;
}

// PNG chunk CRCs: the decoder's own CRC-32 (probe.ts checks IHDR with it).
export { crc32 };

export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  put32be(out, 0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  put32be(out, 8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Recomputes every CRC whose chunk fits in the file. */
function fixPngCrcs(b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (const c of pngChunks(out)) {
    const end = c.at + 8 + c.length;
    if (end + 4 <= out.length) put32be(out, end, crc32(out.subarray(c.at + 4, end)));
  }
  return out;
}

const png: Record<string, Mutator> = {
  header(r, b) {
    if (b.length < 33) return b;
    const out = b.slice();
    switch (r.int(5)) {
      case 0:
        put32be(out, 16, r.chance(0.7) ? r.pick(INTERESTING16) : r.pick(INTERESTING32)); // width
        break;
      case 1:
        put32be(out, 20, r.chance(0.7) ? r.pick(INTERESTING16) : r.pick(INTERESTING32)); // height
        break;
      case 2:
        out[24] = r.pick([1, 2, 4, 8, 16, 0, 3, 32]); // bit depth
        break;
      case 3:
        out[25] = r.pick([0, 2, 3, 4, 6, 1, 7]); // colour type
        break;
      default:
        out[28] = r.pick([0, 1, 2]); // interlace
    }
    return fixPngCrcs(out);
  },
  imageData(r, b) {
    // Inflate all IDATs, damage the filtered scanlines, re-deflate as one IDAT.
    const chunks = pngChunks(b);
    const idats = chunks.filter((c) => c.type === "IDAT");
    if (!idats.length) return b;
    let raw: Uint8Array;
    try {
      // Capped: after png.bomb the data may inflate to 192 MiB, and this is the harness, not the decoder.
      const data = concat(...idats.map((c) => b.subarray(c.at + 8, c.at + 8 + c.length)));
      raw = new Uint8Array(inflateSync(data, { maxOutputLength: 16 << 20 }));
    } catch {
      return b;
    }
    switch (r.int(5)) {
      case 0: // filter-type bytes (valid 0..4) to anything
        for (let n = 1 + r.int(4); n > 0 && raw.length; n--) raw[r.int(raw.length)] = r.pick([0, 1, 2, 3, 4, 5, 255]);
        break;
      case 1:
        raw = raw.slice(0, r.int(raw.length + 1)); // too little data
        break;
      case 2:
        raw = concat(raw, new Uint8Array(1 + r.int(r.chance(0.5) ? 64 : 65536))); // too much
        break;
      case 3:
        for (let n = 1 + r.int(16); n > 0 && raw.length; n--) raw[r.int(raw.length)] = r.int(256);
        break;
      default:
        raw = new Uint8Array(0);
    }
    const first = idats[0] as PngChunk;
    const last = idats[idats.length - 1] as PngChunk;
    const idat = pngChunk("IDAT", new Uint8Array(deflateSync(raw)));
    return concat(b.subarray(0, first.at), idat, b.subarray(last.at + 12 + last.length));
  },
  palette(r, b) {
    const out = b.slice();
    const plte = pngChunks(b).find((c) => c.type === "PLTE");
    if (r.chance(0.5) || !plte) {
      // a tRNS of random length after IHDR
      const t = new Uint8Array(r.pick([0, 1, 2, 6, 255, 256, 300]));
      for (let i = 0; i < t.length; i++) t[i] = r.int(256);
      return concat(out.subarray(0, 33), pngChunk("tRNS", t), out.subarray(33));
    }
    const entries = r.pick([0, 1, 2, 255, 256, 257]);
    const p = new Uint8Array(entries * 3 + (r.chance(0.2) ? 1 : 0));
    for (let i = 0; i < p.length; i++) p[i] = r.int(256);
    return concat(out.subarray(0, plte.at), pngChunk("PLTE", p), out.subarray(plte.at + 12 + plte.length));
  },
  chunks(r, b) {
    const chunks = pngChunks(b);
    if (!chunks.length) return b;
    const c = r.pick(chunks);
    const whole = b.subarray(c.at, c.at + 12 + c.length);
    switch (r.int(4)) {
      case 0: // duplicate (a second IHDR, IEND, PLTE...)
        return concat(b.subarray(0, c.at), whole, whole, b.subarray(c.at + whole.length));
      case 1: // drop
        return concat(b.subarray(0, c.at), b.subarray(c.at + whole.length));
      case 2: {
        const out = b.slice();
        put32be(out, c.at, r.chance(0.5) ? c.length + r.int(9) - 4 : r.pick(INTERESTING32));
        return out;
      }
      default: {
        // move the chunk to the front (right after the signature or IHDR)
        const rest = concat(b.subarray(0, c.at), b.subarray(c.at + whole.length));
        const at = r.chance(0.5) ? 8 : 33;
        return concat(rest.subarray(0, at), whole, rest.subarray(at));
      }
    }
  },
};

/**
 * A zlib stream that inflates to 192 MiB of zeros (~190 KB), made once by
 * `prepareBombs` with streaming deflate (never holding 192 MiB itself), for
 * the decompression-bomb mutations below. Until then they are no-ops.
 */
let zlibBomb: Uint8Array | undefined;

export async function prepareBombs(): Promise<void> {
  if (zlibBomb) return;
  const deflate = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  deflate.on("data", (c: Buffer) => chunks.push(c));
  const ended = once(deflate, "end");
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < 192; i++) {
    if (!deflate.write(zeros)) await once(deflate, "drain");
  }
  deflate.end();
  await ended;
  zlibBomb = new Uint8Array(Buffer.concat(chunks));
}

png.bomb = (r, b) => {
  const chunks = pngChunks(b);
  if (!zlibBomb || chunks.length === 0) return b;
  if (r.chance(0.5)) {
    // The image data itself inflates far past what IHDR needs.
    const idats = chunks.filter((c) => c.type === "IDAT");
    const first = idats[0];
    const last = idats[idats.length - 1];
    if (!first || !last) return b;
    return concat(b.subarray(0, first.at), pngChunk("IDAT", zlibBomb), b.subarray(last.at + 12 + last.length));
  }
  // An ICC profile that inflates to 192 MiB, right after IHDR.
  return concat(
    b.subarray(0, 33),
    pngChunk("iCCP", concat(new Uint8Array([0x69, 0x63, 0x63, 0, 0]), zlibBomb)),
    b.subarray(33),
  );
};

const webp: Record<string, Mutator> = {
  riffSize(r, b) {
    const out = b.slice();
    put32le(out, 4, r.chance(0.5) ? out.length - 8 + r.int(9) - 4 : r.pick(INTERESTING32));
    return out;
  },
  dimensions(r, b) {
    const out = b.slice();
    const kind = ascii(b, 12, 4);
    if (kind === "VP8 " && out.length >= 30) {
      const o = 26 + 2 * r.int(2);
      out[o] = r.int(256);
      out[o + 1] = r.int(256);
    } else if (kind === "VP8L" && out.length >= 25) {
      put32le(out, 21, r.chance(0.5) ? r.int(0x100000000) : le32(out, 21) ^ (1 << r.int(32)));
    } else if (kind === "VP8X" && out.length >= 30) {
      if (r.chance(0.3))
        out[20] = r.int(256); // flags
      else {
        const o = 24 + 3 * r.int(2);
        const v = r.pick([0, 1, 16383, 16384, 0xffffff, r.int(0x1000000)]);
        out[o] = v & 255;
        out[o + 1] = (v >>> 8) & 255;
        out[o + 2] = (v >>> 16) & 255;
      }
    }
    return out;
  },
  chunkSize(r, b) {
    const out = b.slice();
    // chunk headers after the RIFF header, walked loosely
    const offs: number[] = [];
    for (let o = 12; o + 8 <= out.length && offs.length < 16; ) {
      offs.push(o);
      const n = le32(out, o + 4);
      o += 8 + n + (n & 1);
    }
    if (!offs.length) return out;
    const o = r.pick(offs);
    put32le(out, o + 4, r.chance(0.5) ? le32(out, o + 4) + r.int(9) - 4 : r.pick(INTERESTING32));
    return out;
  },
};

/** Applies 1-4 mutations, format-aware ones where the current bytes allow. */
export function mutate(r: Rng, seed: Seed, others: readonly Seed[]): { bytes: Uint8Array; steps: string[] } {
  let bytes = seed.bytes;
  const steps: string[] = [];
  for (let n = 1 + (r.chance(0.5) ? 0 : r.int(4)); n > 0; n--) {
    const format = sniff(bytes);
    const specific = format === "jpeg" ? jpeg : format === "png" ? png : format === "webp" ? webp : undefined;
    const table = specific && r.chance(0.6) ? specific : generic;
    const name = r.pick(Object.keys(table));
    bytes = (table[name] as Mutator)(r, bytes, others);
    steps.push(`${table === generic ? "" : `${format}.`}${name}`);
  }
  if (sniff(bytes) === "png" && r.chance(0.6)) {
    bytes = fixPngCrcs(bytes);
    steps.push("png.fixCrcs");
  }
  if (sniff(bytes) === "webp" && r.chance(0.4)) {
    bytes = bytes.slice();
    put32le(bytes, 4, bytes.length - 8);
    steps.push("webp.fixRiffSize");
  }
  return { bytes, steps };
}

/** Picks a seed (valid images weighted 3:1) and mutates it: case `i` of run `seed`. */
const weightedSeeds = new WeakMap<readonly Seed[], Seed[]>();

export function makeCase(seeds: readonly Seed[], seed: number, i: number) {
  const r = rngFor(seed, i);
  let weighted = weightedSeeds.get(seeds);
  if (!weighted) {
    weighted = seeds.flatMap((s) => (s.format === "other" ? [s] : [s, s, s]));
    weightedSeeds.set(seeds, weighted);
  }
  const from = r.pick(weighted);
  const { bytes, steps } = mutate(r, from, seeds);
  return { from: from.name, bytes, steps };
}

// ------------------------------------------------------------- running ----

type Pipeline = Awaited<ReturnType<typeof loadPipeline>>;

/**
 * Imports the worker's own modules. Dynamic so the CLI child can install its
 * allocation tracker first (fflate captures `Uint8Array` at import time).
 */
export async function loadPipeline() {
  const { decodeImageWithInfo, decodeOptionsFor } = await import("../src/pipeline/decode");
  const { preprocess } = await import("../src/pipeline/preprocess");
  const { initWebpDecoder } = await import("../src/pipeline/codecs/webp");
  const { isApiError } = await import("../src/errors");
  const { listModels } = await import("../src/models/registry");
  const require = createRequire(import.meta.url);
  const wasm = readFileSync(require.resolve("@jsquash/webp/codec/dec/webp_dec.wasm"));
  // Node may compile wasm from bytes (workerd may not; its types leave compile out).
  const compile = (WebAssembly as unknown as { compile(b: Uint8Array): Promise<WebAssembly.Module> }).compile;
  await initWebpDecoder(await compile(new Uint8Array(wasm)));
  const models = listModels().map((m) => m.manifest);
  return { decodeImageWithInfo, decodeOptionsFor, preprocess, isApiError, models };
}

export type Outcome = { ok: true; class: string } | { ok: false; class: string; detail: string };

/** One case through decode -> preprocess for one model, exactly as the service does it. */
export async function runCase(p: Pipeline, bytes: Uint8Array, modelIndex: number): Promise<Outcome> {
  const manifest = p.models[modelIndex % p.models.length] as Pipeline["models"][number];
  try {
    const { image } = await p.decodeImageWithInfo(bytes, p.decodeOptionsFor(manifest.preprocess));
    const tensor = p.preprocess(image, manifest.preprocess, manifest.input);
    const { width, height, data } = image;
    if (!(width > 0 && height > 0) || data.length !== width * height * 3)
      return { ok: false, class: "bad-output", detail: `decoded ${width}x${height} with ${data.length} bytes` };
    if (tensor.length !== 3 * manifest.input.width * manifest.input.height)
      return { ok: false, class: "bad-output", detail: `tensor length ${tensor.length}` };
    for (let i = 0; i < tensor.length; i++) {
      if (!Number.isFinite(tensor[i] as number))
        return { ok: false, class: "bad-output", detail: `tensor[${i}] not finite` };
    }
    return { ok: true, class: "ok" };
  } catch (e) {
    if (p.isApiError(e)) {
      if (e.status >= 400 && e.status < 500) return { ok: true, class: `${e.status} ${e.code}` };
      return { ok: false, class: `${e.status} ${e.code}`, detail: e.message };
    }
    const err = e instanceof Error ? e : new Error(String(e));
    return {
      ok: false,
      class: `exception ${err.name}`,
      detail: `${err.message}\n${(err.stack ?? "").split("\n").slice(1, 6).join("\n")}`,
    };
  }
}

/** Known-good files of each format: after a bad case the decoder must still serve these. */
const CANARIES = ["images/jpeg_baseline_420.jpg", "images/png_rgb8.png", "images/webp_lossy.webp"];

export async function checkCanaries(p: Pipeline): Promise<string | undefined> {
  for (const name of CANARIES) {
    const bytes = new Uint8Array(readFileSync(join(ROOT, "test/fixtures", name)));
    const o = await runCase(p, bytes, 0);
    if (o.class !== "ok") return `${name}: ${o.class}${o.ok ? "" : `: ${o.detail}`}`;
  }
  return undefined;
}

export interface Failure {
  iteration: number;
  class: string;
  detail: string;
  from: string;
  steps: string[];
  model: string;
}

export interface FuzzReport {
  iterations: number;
  seed: number;
  seconds: number;
  counts: Record<string, number>;
  failures: Failure[];
  slowest: Array<{ iteration: number; ms: number; from: string; class: string }>;
}

export interface FuzzOptions {
  iterations: number;
  seed: number;
  start?: number;
  seeds?: Seed[];
  /** Check the canary images every this many cases (and after every failure). */
  canaryEvery?: number;
  /** A case slower than this is a failure ("slow"); default: not checked. */
  slowMs?: number;
  pipeline?: Pipeline;
  /** Called before each case (the CLI child reports progress for its watchdog). */
  onCase?: (i: number) => void;
  /** Called with each case's outcome class (failures included, as "FAIL <class>"). */
  onResult?: (i: number, outcome: string) => void;
  onFailure?: (f: Failure, bytes: Uint8Array) => void;
  /** Extra check after each case, e.g. the CLI's allocation tracker; returns a failure detail. */
  afterCase?: () => { class: string; detail: string } | undefined;
}

/** Runs cases start..start+iterations-1 in this process. */
export async function fuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const p = opts.pipeline ?? (await loadPipeline());
  const seeds = opts.seeds ?? loadSeeds();
  await prepareBombs();
  const start = opts.start ?? 0;
  const canaryEvery = opts.canaryEvery ?? 250;
  const counts: Record<string, number> = {};
  const failures: Failure[] = [];
  const slowest: FuzzReport["slowest"] = [];
  const t0 = performance.now();
  const fail = (f: Failure, bytes: Uint8Array) => {
    failures.push(f);
    counts[`FAIL ${f.class}`] = (counts[`FAIL ${f.class}`] ?? 0) + 1;
    opts.onResult?.(f.iteration, `FAIL ${f.class}`);
    opts.onFailure?.(f, bytes);
  };

  for (let i = start; i < start + opts.iterations; i++) {
    opts.onCase?.(i);
    const c = makeCase(seeds, opts.seed, i);
    const model = p.models[i % p.models.length]?.id ?? "?";
    const t = performance.now();
    const o = await runCase(p, c.bytes, i);
    const ms = performance.now() - t;
    const base = { iteration: i, from: c.from, steps: c.steps, model };
    if (o.ok) {
      counts[o.class] = (counts[o.class] ?? 0) + 1;
      opts.onResult?.(i, o.class);
    } else fail({ ...base, class: o.class, detail: o.detail }, c.bytes);
    if (opts.slowMs !== undefined && ms > opts.slowMs)
      fail({ ...base, class: "slow", detail: `${ms.toFixed(0)} ms (${o.class})` }, c.bytes);
    const extra = opts.afterCase?.();
    if (extra) fail({ ...base, ...extra }, c.bytes);
    slowest.push({ iteration: i, ms: Math.round(ms), from: c.from, class: o.class });
    slowest.sort((a, b) => b.ms - a.ms);
    slowest.length = Math.min(slowest.length, 5);
    if (!o.ok || (i - start + 1) % canaryEvery === 0) {
      const broken = await checkCanaries(p);
      if (broken) fail({ ...base, class: "canary", detail: `after case ${i}: ${broken}` }, c.bytes);
    }
  }
  return {
    iterations: opts.iterations,
    seed: opts.seed,
    seconds: (performance.now() - t0) / 1000,
    counts,
    failures,
    slowest,
  };
}

export function formatReport(r: FuzzReport): string {
  const lines = [
    `fuzz: ${r.iterations} iterations, seed ${r.seed}, ${r.seconds.toFixed(1)} s (${(r.iterations / r.seconds).toFixed(0)}/s)`,
    "outcomes:",
  ];
  for (const [k, v] of Object.entries(r.counts).sort((a, b) => b[1] - a[1])) lines.push(`  ${k.padEnd(40)} ${v}`);
  lines.push(`failures: ${r.failures.length}`);
  for (const f of r.failures.slice(0, 20)) {
    lines.push(
      `  #${f.iteration} ${f.class} [${f.from} via ${f.steps.join(",")}, ${f.model}]: ${f.detail.split("\n")[0]}`,
    );
  }
  lines.push(`slowest: ${r.slowest.map((s) => `#${s.iteration} ${s.ms} ms (${s.from}, ${s.class})`).join("; ")}`);
  return lines.join("\n");
}

// ----------------------------------------------------------------- CLI ----

interface Args {
  iterations: number;
  seed: number;
  replay?: number;
  hangMs: number;
  slowMs: number;
  allocMib: number;
  save: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    iterations: 2000,
    seed: 1,
    hangMs: 30_000,
    slowMs: 10_000,
    allocMib: 160,
    save: join(ROOT, ".edgetag/fuzz"),
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`${k} needs a number`);
      i++;
      return n;
    };
    if (k === "--iterations") args.iterations = num();
    else if (k === "--seed") args.seed = num();
    else if (k === "--replay") args.replay = num();
    else if (k === "--hang-ms") args.hangMs = num();
    else if (k === "--slow-ms") args.slowMs = num();
    else if (k === "--alloc-mib") args.allocMib = num();
    else if (k === "--save") {
      args.save = resolve(v ?? ".");
      i++;
    } else if (k !== "--child") throw new Error(`unknown argument ${k}`);
  }
  return args;
}

/**
 * Reports any single typed-array/ArrayBuffer allocation above `limit` bytes:
 * the signature of a decompression bomb, which in a 128 MB isolate is a crash.
 * (WebAssembly memory growth inside libwebp is not seen here.)
 */
function trackAllocations(limit: number, report: (bytes: number, type: string) => void): void {
  const g = globalThis as unknown as Record<string, unknown>;
  for (const name of [
    "ArrayBuffer",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int8Array",
    "Uint16Array",
    "Int16Array",
    "Uint32Array",
    "Int32Array",
    "Float32Array",
    "Float64Array",
  ]) {
    const original = g[name] as { new (...a: unknown[]): unknown; BYTES_PER_ELEMENT?: number };
    const size = original.BYTES_PER_ELEMENT ?? 1;
    g[name] = new Proxy(original, {
      construct(target, args, newTarget) {
        const n = args[0];
        if (typeof n === "number" && n * size > limit) report(n * size, name);
        return Reflect.construct(target, args, newTarget);
      },
    });
  }
}

type ChildMessage =
  | { type: "case"; i: number }
  | { type: "result"; i: number; outcome: string }
  | { type: "failure"; failure: Failure; bytes: number[] }
  | { type: "done"; report: FuzzReport };

async function childMain(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const start = Number(process.env.FUZZ_START ?? 0);
  const count = Number(process.env.FUZZ_COUNT ?? args.iterations);
  let big: string | undefined;
  trackAllocations(args.allocMib * 1024 * 1024, (bytes, type) => {
    big ??= `new ${type} of ${(bytes / 1048576).toFixed(0)} MiB (limit ${args.allocMib} MiB)`;
  });
  const pipeline = await loadPipeline();
  const send = (m: ChildMessage) => process.send?.(m);
  const report = await fuzz({
    iterations: count,
    seed: args.seed,
    start,
    slowMs: args.slowMs,
    pipeline,
    onCase: (i) => send({ type: "case", i }),
    onResult: (i, outcome) => send({ type: "result", i, outcome }),
    onFailure: (failure, bytes) => send({ type: "failure", failure, bytes: Array.from(bytes) }),
    afterCase: () => {
      const detail = big;
      big = undefined;
      return detail === undefined ? undefined : { class: "oversize-alloc", detail };
    },
  });
  send({ type: "done", report: { ...report, failures: [] } });
}

async function cliMain(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.replay !== undefined) {
    await prepareBombs();
    const seeds = loadSeeds();
    const c = makeCase(seeds, args.seed, args.replay);
    mkdirSync(args.save, { recursive: true });
    const file = join(args.save, `case-${args.seed}-${args.replay}.bin`);
    writeFileSync(file, c.bytes);
    const p = await loadPipeline();
    const t = performance.now();
    const o = await runCase(p, c.bytes, args.replay);
    console.log(
      `case ${args.replay}: ${c.from} via ${c.steps.join(",")} -> ${c.bytes.length} bytes, written to ${file}`,
    );
    console.log(`outcome: ${o.class} in ${(performance.now() - t).toFixed(0)} ms${o.ok ? "" : `\n${o.detail}`}`);
    return;
  }

  await prepareBombs(); // so a crashed case can be rebuilt here exactly as the child built it
  const total: FuzzReport = { iterations: 0, seed: args.seed, seconds: 0, counts: {}, failures: [], slowest: [] };
  const t0 = performance.now();
  let next = 0;
  const end = args.iterations;
  mkdirSync(args.save, { recursive: true });

  const record = (f: Failure, bytes: Uint8Array) => {
    total.failures.push(f);
    writeFileSync(join(args.save, `fail-${args.seed}-${f.iteration}.bin`), bytes);
  };

  while (next < end) {
    const from = next;
    const result = await new Promise<{ report?: FuzzReport; lastCase: number; reason?: string }>((done) => {
      const child: ChildProcess = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), "--child"], {
        execArgv: process.execArgv,
        env: { ...process.env, FUZZ_START: String(from), FUZZ_COUNT: String(end - from) },
      });
      let lastCase = from - 1;
      let report: FuzzReport | undefined;
      let timer = setTimeout(() => undefined, 0);
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          done({ lastCase, reason: `hang: no progress for ${args.hangMs} ms` });
        }, args.hangMs);
      };
      arm();
      child.on("message", (m: ChildMessage) => {
        if (m.type === "case") {
          lastCase = m.i;
          arm();
          if (m.i % 5000 === 0 && m.i > 0) process.stderr.write(`  ... ${m.i} cases\n`);
        } else if (m.type === "result") total.counts[m.outcome] = (total.counts[m.outcome] ?? 0) + 1;
        else if (m.type === "failure") record(m.failure, new Uint8Array(m.bytes));
        else if (m.type === "done") report = m.report;
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        if (report) done({ report, lastCase });
        else done({ lastCase, reason: `fuzz process died (${signal ?? `exit ${code}`})` });
      });
    });
    if (result.report) {
      total.slowest = [...total.slowest, ...result.report.slowest].sort((a, b) => b.ms - a.ms).slice(0, 5);
      next = end;
    } else {
      // The case in flight hung or killed the process: record it, go on after it.
      const i = Math.max(result.lastCase, from);
      const c = makeCase(loadSeeds(), args.seed, i);
      const cls = result.reason?.split(":")[0] ?? "died";
      total.counts[`FAIL ${cls}`] = (total.counts[`FAIL ${cls}`] ?? 0) + 1;
      record(
        { iteration: i, class: cls, detail: result.reason ?? "", from: c.from, steps: c.steps, model: "" },
        c.bytes,
      );
      next = i + 1;
    }
  }
  total.iterations = end;
  total.seconds = (performance.now() - t0) / 1000;
  console.log(formatReport(total));
  if (total.failures.length) {
    console.log(`failing inputs written to ${args.save}/fail-${args.seed}-<iteration>.bin`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const run = process.argv.includes("--child") ? childMain : cliMain;
  run().catch((e: unknown) => {
    console.error(e);
    process.exit(2);
  });
}
