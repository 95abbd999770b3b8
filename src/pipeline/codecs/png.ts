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
 */
import { decode as pngDecode } from "fast-png";
import type { DecodedImage, ImageInfo } from "../types";

type Png = ReturnType<typeof pngDecode>;

export function decodePng(bytes: Uint8Array, info: ImageInfo): DecodedImage {
  const png = pngDecode(bytes, { checkCrc: true });
  const { width, height } = png;
  return { ...info, width, height, data: toRgb(png) };
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
