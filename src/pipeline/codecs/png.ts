/**
 * PNG -> packed RGB8 via fast-png (pure JS; inflate by fflate).
 *
 * fast-png returns raw samples: packed 1/2/4-bit rows for low bit depths,
 * palette indices for indexed images and a Uint16Array for 16-bit images, so
 * all expansion happens here in a single pass per pixel:
 *  - 16-bit samples -> round(v * 255 / 65535), alpha included, before compositing
 *  - 1/2/4-bit greyscale -> scaled to 0..255 (v * 255 / (2^depth - 1))
 *  - palette -> RGB, tRNS alpha per entry; out-of-range indices become black
 *    (libpng's behaviour) rather than failing the image
 *  - tRNS colour key (greyscale/truecolour) -> alpha 0 for matching pixels,
 *    compared on the raw samples as the spec requires
 *  - alpha composited over white: out = round((a*c + (255-a)*255) / 255)
 * CRCs are checked, so bit rot is a 422 rather than silently wrong pixels.
 * APNG files decode to their default (still) image.
 *
 * fast-png inflates whatever it is given, without a size limit, and its cost
 * grows with the number of chunks: a 260 KB PNG declaring 64x64 whose IDAT
 * inflates to 256 MiB took 26 s and 270 MB in fast-png alone; an iCCP
 * profile is inflated the same way; 2 MB of one-byte IDAT chunks took 2.3 s.
 * So `preflightPng` walks the chunks first (one IHDR, one PLTE, valid chunk
 * types, an IEND), inflates the image data natively only to count it (in
 * small slices, refused past what the header's dimensions need), and, when
 * the file has many chunks or an iCCP profile, hands fast-png a rebuilt file
 * of just IHDR, PLTE, tRNS, one IDAT (CRCs checked here first) and IEND.
 */
import { decode as pngDecode } from "fast-png";
import { ApiError } from "../../errors";
import type { DecodedImage, ImageInfo } from "../types";
import { crc32 } from "./probe";

type Png = ReturnType<typeof pngDecode>;

export async function decodePng(bytes: Uint8Array, info: ImageInfo): Promise<DecodedImage> {
  const checked = await preflightPng(bytes);
  const png = pngDecode(checked, { checkCrc: true });
  const { width, height } = png;
  return { ...info, width, height, data: toRgb(png) };
}

const invalid = (message: string): ApiError => new ApiError("invalid_image", message);
const be32 = (b: Uint8Array, o: number): number =>
  (((b[o] ?? 0) << 24) | ((b[o + 1] ?? 0) << 16) | ((b[o + 2] ?? 0) << 8) | (b[o + 3] ?? 0)) >>> 0;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;
/**
 * Inflated image data may exceed the exact size by this much before it is
 * refused: the spec forbids any excess, but libpng only warns about a little.
 */
const IDAT_SLACK = 64 * 1024;
/** Compressed bytes fed to the inflater per write; bounds its output per step (deflate expands <= ~1032x). */
const INFLATE_SLICE = 4 * 1024;
/** Files with more chunks than this are rebuilt before fast-png sees them (its cost is per chunk). */
const MAX_CHUNKS_AS_IS = 64;

/** Bytes of filtered scanlines (filter byte + packed samples per row) an image of this header needs. */
export function pngRawSize(
  width: number,
  height: number,
  depth: number,
  colourType: number,
  interlaced: boolean,
): number {
  const bits = (CHANNELS[colourType] ?? 4) * depth;
  const row = (w: number): number => 1 + Math.ceil((w * bits) / 8);
  if (!interlaced) return height * row(width);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = width > x0 ? Math.ceil((width - x0) / dx) : 0;
    const h = height > y0 ? Math.ceil((height - y0) / dy) : 0;
    if (w > 0 && h > 0) total += h * row(w);
  }
  return total;
}

const chunkType = (b: Uint8Array, at: number): number => be32(b, at + 4);
const TYPE = (s: string): number =>
  ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>> 0;
const IHDR = TYPE("IHDR");
const PLTE = TYPE("PLTE");
const TRNS = TYPE("tRNS");
const IDAT = TYPE("IDAT");
const IEND = TYPE("IEND");
const ICCP = TYPE("iCCP");
const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/**
 * Validates the chunk layout and the inflated size of the image data, and
 * returns the bytes fast-png should decode. Throws 422 for a malformed
 * layout, a bad CRC in a rebuilt chunk, or image data of the wrong size.
 * Assumes probeImage already accepted the signature and IHDR. The walk is
 * a few byte reads per chunk (a 20 MB body can hold 1.7 million chunks).
 */
export async function preflightPng(bytes: Uint8Array): Promise<Uint8Array> {
  const width = be32(bytes, 16);
  const height = be32(bytes, 20);
  const expected = pngRawSize(width, height, bytes[24] ?? 0, bytes[25] ?? 0, bytes[28] === 1);
  const idat: number[] = []; // offsets of IDAT chunks
  const kept: number[] = []; // offsets of PLTE and the first tRNS
  let chunks = 0;
  let iccp = false;
  let plte = false;
  let trns = false;
  for (let off = 8; ; ) {
    if (off + 12 > bytes.length) throw invalid("PNG is truncated: no IEND chunk");
    const length = be32(bytes, off);
    if (length > 0x7fffffff) throw invalid(`PNG chunk at offset ${off} has an invalid length`);
    if (off + 12 + length > bytes.length) throw invalid(`PNG is truncated inside a chunk at offset ${off}`);
    if (
      !(
        isLetter(bytes[off + 4] ?? 0) &&
        isLetter(bytes[off + 5] ?? 0) &&
        isLetter(bytes[off + 6] ?? 0) &&
        isLetter(bytes[off + 7] ?? 0)
      )
    ) {
      throw invalid(`PNG chunk at offset ${off} has an invalid type`);
    }
    const type = chunkType(bytes, off);
    chunks++;
    if (type === IDAT) idat.push(off);
    else if (type === IHDR && off !== 8) throw invalid("PNG has more than one IHDR chunk");
    else if (type === PLTE) {
      if (plte) throw invalid("PNG has more than one PLTE chunk");
      plte = true;
      kept.push(off);
    } else if (type === TRNS && !trns) {
      trns = true; // libpng ignores a repeated tRNS; so does a rebuilt file
      kept.push(off);
    } else if (type === ICCP) iccp = true;
    off += 12 + length;
    if (type === IEND) break;
  }
  if (idat.length === 0) throw invalid("PNG has no image data (IDAT)");

  const { size, overflow, error } = await inflatedSize(bytes, idat, expected + IDAT_SLACK);
  if (overflow) {
    throw invalid(
      `PNG image data inflates to more than the ${expected} bytes a ${width}x${height} image needs (decompression bomb?)`,
    );
  }
  if (size < expected) {
    throw invalid(
      error
        ? `PNG image data is corrupt (${error})`
        : `PNG image data is truncated: ${size} of the ${expected} bytes a ${width}x${height} image needs`,
    );
  }

  if (chunks <= MAX_CHUNKS_AS_IS && !iccp) return bytes;
  return rebuild(bytes, kept, idat);
}

/** Signature + IHDR + PLTE + tRNS + one IDAT + IEND, with the source CRCs verified first. */
function rebuild(bytes: Uint8Array, kept: number[], idat: number[]): Uint8Array {
  for (const at of [...kept, ...idat]) {
    const length = be32(bytes, at);
    if (crc32(bytes, at + 4, at + 8 + length) !== be32(bytes, at + 8 + length)) {
      throw invalid(`PNG chunk at offset ${at} has a bad CRC`);
    }
  }
  const dataLength = idat.reduce((n, at) => n + be32(bytes, at), 0);
  const keptLength = kept.reduce((n, at) => n + 12 + be32(bytes, at), 0);
  const out = new Uint8Array(33 + keptLength + 12 + dataLength + 12);
  out.set(bytes.subarray(0, 33)); // signature + IHDR (checked by the probe)
  let o = 33;
  for (const at of kept) {
    const whole = bytes.subarray(at, at + 12 + be32(bytes, at));
    out.set(whole, o);
    o += whole.length;
  }
  const idatAt = o;
  out.set(
    [dataLength >>> 24, (dataLength >>> 16) & 255, (dataLength >>> 8) & 255, dataLength & 255, 73, 68, 65, 84],
    o,
  );
  o += 8;
  for (const at of idat) {
    const length = be32(bytes, at);
    out.set(bytes.subarray(at + 8, at + 8 + length), o);
    o += length;
  }
  const crc = crc32(out, idatAt + 4, o);
  out.set([crc >>> 24, (crc >>> 16) & 255, (crc >>> 8) & 255, crc & 255], o);
  out.set([0, 0, 0, 0, 73, 69, 78, 68, 0xae, 0x42, 0x60, 0x82], o + 4);
  return out;
}

/**
 * Inflates a zlib stream only to measure it, stopping as soon as it passes
 * `cap`. Native zlib (DecompressionStream, in Workers and Node) fed in slices
 * of at most INFLATE_SLICE bytes (many tiny IDATs are coalesced into one
 * slice), with the output counted and discarded, so memory stays O(slice).
 * A stream error is reported, not thrown: trailing junk after a complete
 * image is tolerated (as libpng does); a short stream is refused by the caller.
 */
async function inflatedSize(
  bytes: Uint8Array,
  idat: number[],
  cap: number,
): Promise<{ size: number; overflow: boolean; error?: string }> {
  const stream = new DecompressionStream("deflate");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  let size = 0;
  let overflow = false;
  const reading = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      size += value.byteLength;
      if (size > cap) {
        overflow = true;
        await reader.cancel();
        return;
      }
    }
  })();
  let error: unknown;
  try {
    const slice = new Uint8Array(INFLATE_SLICE);
    let filled = 0;
    for (const at of idat) {
      const end = at + 8 + be32(bytes, at);
      for (let o = at + 8; o < end && !overflow; ) {
        const n = Math.min(end - o, INFLATE_SLICE - filled);
        slice.set(bytes.subarray(o, o + n), filled);
        filled += n;
        o += n;
        if (filled === INFLATE_SLICE) {
          await writer.write(slice.slice());
          filled = 0;
        }
      }
      if (overflow) break;
    }
    if (!overflow && filled > 0) await writer.write(slice.slice(0, filled));
    if (!overflow) await writer.close();
  } catch (e) {
    error = e;
  }
  try {
    await reading;
  } catch (e) {
    error ??= e;
  }
  if (overflow || error === undefined) return { size, overflow };
  const text = error instanceof Error ? error.message : String(error);
  return { size, overflow, error: text.replace(/[^\x20-\x7e]/g, "?").slice(0, 100) };
}

/** Composites one channel value over white. Exact integer form of the float formula. */
const over = (c: number, a: number): number => Math.round((a * c + (255 - a) * 255) / 255);
const to8 = (v: number): number => Math.round((v * 255) / 65535);

function toRgb(png: Png): Uint8Array {
  const { width, height, depth, channels } = png;
  const src = png.data;
  const pixels = width * height;

  if (png.palette) return expandPalette(png);

  if (channels === 1 || channels === 2 || channels === 3 || channels === 4) {
    const key = colourKey(png);
    // 8-bit RGBA/RGB input is compacted in place: no second full-size buffer.
    const out = depth === 8 && src instanceof Uint8Array && channels >= 3 ? src : new Uint8Array(pixels * 3);
    if (depth < 8) {
      unpackGrey(src, width, height, depth, key, out);
      return out;
    }
    const wide = depth === 16;
    const hasAlpha = channels === 2 || channels === 4;
    const colours = hasAlpha ? channels - 1 : channels;
    for (let p = 0, i = 0, o = 0; p < pixels; p++, i += channels, o += 3) {
      const r = src[i] ?? 0;
      const g = colours === 3 ? (src[i + 1] ?? 0) : r;
      const b = colours === 3 ? (src[i + 2] ?? 0) : r;
      let a = hasAlpha ? (src[i + colours] ?? 0) : 255;
      if (key && r === key[0] && g === key[1] && b === key[2]) a = 0;
      let r8 = wide ? to8(r) : r;
      let g8 = wide ? to8(g) : g;
      let b8 = wide ? to8(b) : b;
      if (a !== 255 || wide) {
        const a8 = wide && hasAlpha ? to8(a) : a;
        if (a8 !== 255) {
          r8 = over(r8, a8);
          g8 = over(g8, a8);
          b8 = over(b8, a8);
        }
      }
      out[o] = r8;
      out[o + 1] = g8;
      out[o + 2] = b8;
    }
    return out === src ? out.subarray(0, pixels * 3) : out;
  }
  throw new Error(`PNG with ${channels} channels`);
}

/** tRNS for greyscale/truecolour is a single colour (raw sample values) that is fully transparent. */
function colourKey(png: Png): [number, number, number] | undefined {
  const t = png.transparency;
  if (!t || t.length === 0) return undefined;
  if (png.channels === 1) return [t[0] ?? 0, t[0] ?? 0, t[0] ?? 0];
  if (png.channels === 3 && t.length >= 3) return [t[0] ?? 0, t[1] ?? 0, t[2] ?? 0];
  return undefined;
}

/** 1/2/4-bit greyscale: rows are byte-aligned, samples MSB first. */
function unpackGrey(
  src: ArrayLike<number>,
  width: number,
  height: number,
  depth: number,
  key: [number, number, number] | undefined,
  out: Uint8Array,
): void {
  const rowBytes = Math.ceil((width * depth) / 8);
  const max = (1 << depth) - 1;
  const scale = 255 / max;
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = src[y * rowBytes + (bit >> 3)] ?? 0;
      const v = (byte >> (8 - depth - (bit & 7))) & max;
      const g = key && v === key[0] ? 255 : Math.round(v * scale);
      out[o++] = g;
      out[o++] = g;
      out[o++] = g;
    }
  }
}

function expandPalette(png: Png): Uint8Array {
  const { width, height, depth } = png;
  const palette = png.palette ?? [];
  // Pre-composite each entry once, then pixels are a table lookup.
  const lut = new Uint8Array(256 * 3); // zero-filled: out-of-range indices are black
  palette.forEach((entry, i) => {
    if (i > 255) return;
    const a = entry[3] ?? 255;
    lut[i * 3] = over(entry[0] ?? 0, a);
    lut[i * 3 + 1] = over(entry[1] ?? 0, a);
    lut[i * 3 + 2] = over(entry[2] ?? 0, a);
  });
  const src = png.data;
  const out = new Uint8Array(width * height * 3);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = src[y * rowBytes + (bit >> 3)] ?? 0;
      const idx = depth === 8 ? byte : (byte >> (8 - depth - (bit & 7))) & mask;
      out[o++] = lut[idx * 3] ?? 0;
      out[o++] = lut[idx * 3 + 1] ?? 0;
      out[o++] = lut[idx * 3 + 2] ?? 0;
    }
  }
  return out;
}
