/**
 * Header probe: identifies the format by magic bytes (the client's
 * Content-Type is never trusted) and reads dimensions + EXIF orientation
 * without decoding pixels, so the pixel budget can be enforced before any
 * large allocation.
 *
 * Error policy:
 *  - not JPEG/PNG/WebP (or a variant we cannot decode, e.g. animated WebP,
 *    arithmetic-coded JPEG)          -> 415 unsupported_media_type, naming the
 *                                       format when it is recognisable
 *  - a supported format whose header is truncated or malformed
 *                                    -> 422 invalid_image
 * Every read is bounds-checked and every loop advances by at least one byte,
 * so arbitrary input terminates and can only ever throw an ApiError.
 */
import { ApiError } from "../../errors";
import type { ImageInfo } from "../types";
import { readExifOrientation } from "./exif";

const SUPPORTED = "send JPEG, PNG or WebP";

const invalid = (message: string): ApiError => new ApiError("invalid_image", message);
const unsupported = (message: string): ApiError => new ApiError("unsupported_media_type", message);

/** Throws 422 if `end` bytes are not available: the header was cut short. */
function need(bytes: Uint8Array, end: number, what: string): void {
  if (end > bytes.length) throw invalid(`${what} is truncated`);
}

// Readers assume the caller checked bounds with `need`.
const be16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);
const be32 = (b: Uint8Array, o: number): number => be16(b, o) * 0x10000 + be16(b, o + 2);
const le16 = (b: Uint8Array, o: number): number => (b[o] ?? 0) | ((b[o + 1] ?? 0) << 8);
const le24 = (b: Uint8Array, o: number): number => le16(b, o) | ((b[o + 2] ?? 0) << 16);
const le32 = (b: Uint8Array, o: number): number => le24(b, o) + (b[o + 3] ?? 0) * 0x1000000;

function startsWith(b: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}
const ascii = (s: string): number[] => Array.from(s, (c) => c.charCodeAt(0));
const fourcc = (b: Uint8Array, o: number): string =>
  String.fromCharCode(b[o] ?? 0, b[o + 1] ?? 0, b[o + 2] ?? 0, b[o + 3] ?? 0);

export function probeImage(bytes: Uint8Array): ImageInfo {
  if (bytes.length === 0) throw unsupported(`empty input is not an image; ${SUPPORTED}`);
  if (bytes[0] === 0xff && (bytes.length === 1 || bytes[1] === 0xd8)) return probeJpeg(bytes);
  if (startsWith(bytes, PNG_SIGNATURE.slice(0, Math.min(4, bytes.length)))) return probePng(bytes);
  if (startsWith(bytes, ascii("RIFF").slice(0, Math.min(4, bytes.length)))) {
    if (bytes.length < 12) throw invalid("RIFF/WebP header is truncated");
    if (fourcc(bytes, 8) === "WEBP") return probeWebp(bytes);
    throw unsupported(`RIFF "${fourcc(bytes, 8).trim()}" files are not images we support; ${SUPPORTED}`);
  }
  const other = identifyOther(bytes);
  if (other) throw unsupported(`${other} are not supported; ${SUPPORTED}`);
  throw unsupported(`unrecognised image format; ${SUPPORTED}`);
}

// ---------------------------------------------------------------- JPEG ----

/** SOFn markers that jpeg-js can decode: baseline, extended sequential, progressive. */
const DECODABLE_SOF = new Set([0xc0, 0xc1, 0xc2]);
const SOF_NAMES: Record<number, string> = {
  195: "lossless JPEG (SOF3)",
  197: "differential JPEG (SOF5)",
  198: "differential progressive JPEG (SOF6)",
  199: "differential lossless JPEG (SOF7)",
  201: "arithmetic-coded JPEG (SOF9)",
  202: "arithmetic-coded progressive JPEG (SOF10)",
  203: "arithmetic-coded lossless JPEG (SOF11)",
  205: "arithmetic-coded differential JPEG (SOF13)",
  206: "arithmetic-coded differential progressive JPEG (SOF14)",
  207: "arithmetic-coded differential lossless JPEG (SOF15)",
};
const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/**
 * Walks the marker segments from SOI up to the first SOS. Exif (APP1) and
 * Adobe (APP14) segments may come before or after the frame header, so the
 * walk only stops at the start of entropy-coded data.
 */
function probeJpeg(bytes: Uint8Array): ImageInfo {
  need(bytes, 4, "JPEG header");
  let off = 2;
  let orientation = 1;
  let exifSeen = false;
  let adobe = false;
  let frame: { width: number; height: number; components: number } | undefined;

  for (;;) {
    need(bytes, off + 2, "JPEG header");
    if (bytes[off] !== 0xff) throw invalid(`JPEG marker expected at offset ${off}`);
    while (off < bytes.length && bytes[off] === 0xff) off++; // fill bytes
    need(bytes, off + 1, "JPEG header");
    const marker = bytes[off] ?? 0;
    off++;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no payload
    if (marker === 0xd8 || marker === 0xd9 || marker === 0x00) {
      throw invalid(`unexpected JPEG marker 0xFF${hex(marker)} before the image data`);
    }
    need(bytes, off + 2, "JPEG header");
    const segLen = be16(bytes, off);
    if (segLen < 2) throw invalid(`JPEG segment 0xFF${hex(marker)} has invalid length ${segLen}`);
    if (marker === 0xda) {
      if (!frame) throw invalid("JPEG has scan data but no frame header (SOF)");
      need(bytes, off + segLen, "JPEG scan header");
      if (frame.components === 4 && !adobe) {
        // Without the Adobe marker the CMYK polarity/transform is unknown and
        // jpeg-js refuses it; say so honestly instead of decoding wrong colours.
        throw unsupported(`CMYK JPEG without an Adobe APP14 marker is not supported; ${SUPPORTED}`);
      }
      return { format: "jpeg", width: frame.width, height: frame.height, orientation };
    }
    need(bytes, off + segLen, `JPEG segment 0xFF${hex(marker)}`);
    const payload = bytes.subarray(off + 2, off + segLen);

    if (marker === 0xe1 && !exifSeen && startsWith(payload, EXIF_APP1)) {
      exifSeen = true; // like libjpeg-based readers, only the first Exif block counts
      orientation = readExifOrientation(payload);
    } else if (marker === 0xee && startsWith(payload, ascii("Adobe"))) {
      adobe = true;
    } else if (isSof(marker)) {
      if (frame) throw invalid("JPEG has more than one frame header");
      const name = SOF_NAMES[marker];
      if (name || !DECODABLE_SOF.has(marker))
        throw unsupported(`${name ?? "this JPEG variant"} is not supported; ${SUPPORTED}`);
      if (payload.length < 6) throw invalid("JPEG frame header is truncated");
      const precision = payload[0] ?? 0;
      const components = payload[5] ?? 0;
      if (payload.length < 6 + 3 * components) throw invalid("JPEG frame header is truncated");
      if (precision !== 8) throw unsupported(`${precision}-bit JPEG is not supported; ${SUPPORTED}`);
      if (components !== 1 && components !== 3 && components !== 4) {
        throw unsupported(`JPEG with ${components} colour components is not supported; ${SUPPORTED}`);
      }
      frame = { height: be16(payload, 1), width: be16(payload, 3), components };
    }
    off += segLen;
  }
}

const EXIF_APP1 = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00]; // "Exif\0\0"
const hex = (n: number): string => n.toString(16).toUpperCase().padStart(2, "0");

// ----------------------------------------------------------------- PNG ----

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Allowed bit depths per colour type (PNG spec table 11.1). */
const PNG_DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16], // greyscale
  2: [8, 16], // truecolour
  3: [1, 2, 4, 8], // indexed
  4: [8, 16], // greyscale + alpha
  6: [8, 16], // truecolour + alpha
};

function probePng(bytes: Uint8Array): ImageInfo {
  need(bytes, 8, "PNG signature");
  // The first 4 bytes matched; a damaged tail usually means a text-mode
  // transfer mangled line endings, which is corruption, not another format.
  if (!startsWith(bytes, PNG_SIGNATURE)) throw invalid("PNG signature is corrupted");
  need(bytes, 33, "PNG header");
  if (be32(bytes, 8) !== 13 || fourcc(bytes, 12) !== "IHDR")
    throw invalid("PNG does not start with a valid IHDR chunk");
  if (crc32(bytes.subarray(12, 29)) !== be32(bytes, 29)) throw invalid("PNG IHDR chunk has a bad CRC");
  const width = be32(bytes, 16);
  const height = be32(bytes, 20);
  const depth = bytes[24] ?? 0;
  const colourType = bytes[25] ?? 0;
  if (width > 0x7fffffff || height > 0x7fffffff) throw invalid("PNG dimensions exceed the format's limit");
  if (!PNG_DEPTHS[colourType]?.includes(depth))
    throw invalid(`PNG has invalid colour type ${colourType} / bit depth ${depth}`);
  if (bytes[26] !== 0 || bytes[27] !== 0 || (bytes[28] ?? 0) > 1) {
    throw invalid("PNG has an unknown compression, filter or interlace method");
  }
  return { format: "png", width, height, orientation: pngOrientation(bytes) };
}

/**
 * Looks for an eXIf chunk. Chunk-level damage is left for the decoder to
 * report; here it just ends the search. Each step advances >= 12 bytes.
 */
function pngOrientation(bytes: Uint8Array): number {
  let off = 33;
  while (off + 12 <= bytes.length) {
    const length = be32(bytes, off);
    const type = fourcc(bytes, off + 4);
    const dataEnd = off + 8 + length;
    if (dataEnd + 4 > bytes.length) return 1;
    if (type === "eXIf") return readExifOrientation(bytes.subarray(off + 8, dataEnd));
    if (type === "IEND") return 1;
    off = dataEnd + 4;
  }
  return 1;
}

let crcTable: Uint32Array | undefined;
/** CRC-32 (PNG's) of data[start, end). */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const table = crcTable;
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = (table[(crc ^ (data[i] ?? 0)) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- WebP ----

function probeWebp(bytes: Uint8Array): ImageInfo {
  // libwebp rejects a file shorter than its RIFF size; do the same up front.
  const riffEnd = 8 + le32(bytes, 4);
  if (riffEnd > bytes.length) throw invalid(`WebP is truncated: RIFF declares ${riffEnd} bytes, got ${bytes.length}`);
  const data = bytes.subarray(0, riffEnd);
  need(data, 20, "WebP header");
  const chunk = fourcc(data, 12);

  if (chunk === "VP8 ") {
    need(data, 30, "WebP VP8 header");
    if ((data[20] ?? 0) & 1) throw invalid("WebP VP8 data does not start with a key frame");
    if (!startsWith(data, [0x9d, 0x01, 0x2a], 23)) throw invalid("WebP VP8 start code is missing");
    // The top two bits of each dimension are an upscaling hint, not size.
    return { format: "webp", width: le16(data, 26) & 0x3fff, height: le16(data, 28) & 0x3fff, orientation: 1 };
  }
  if (chunk === "VP8L") {
    need(data, 25, "WebP VP8L header");
    if (data[20] !== 0x2f) throw invalid("WebP VP8L signature is missing");
    const bits = le32(data, 21);
    if (bits >>> 29 !== 0) throw invalid("WebP VP8L has an unknown version");
    return { format: "webp", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, orientation: 1 };
  }
  if (chunk === "VP8X") {
    need(data, 30, "WebP VP8X header");
    if (le32(data, 16) < 10) throw invalid("WebP VP8X chunk is too short");
    const flags = data[20] ?? 0;
    if (flags & 0x02) throw unsupported(`animated WebP images are not supported; ${SUPPORTED} (a still image)`);
    const width = le24(data, 24) + 1;
    const height = le24(data, 27) + 1;
    return { format: "webp", width, height, orientation: webpExtendedChunks(data) };
  }
  throw invalid(`WebP has an unknown first chunk "${chunk}"`);
}

/**
 * Walks the chunks after VP8X for EXIF and for animation chunks (refused even
 * when the ANIM flag lies). Chunk payloads are padded to even length.
 */
function webpExtendedChunks(data: Uint8Array): number {
  let orientation = 1;
  let off = 12;
  while (off + 8 <= data.length) {
    const type = fourcc(data, off);
    const size = le32(data, off + 4);
    const end = off + 8 + size;
    if (type === "ANIM" || type === "ANMF")
      throw unsupported(`animated WebP images are not supported; ${SUPPORTED} (a still image)`);
    if (end > data.length) break; // let libwebp judge damaged chunks
    if (type === "EXIF") orientation = readExifOrientation(data.subarray(off + 8, end));
    off = end + (size & 1);
  }
  return orientation;
}

// -------------------------------------------------------- other formats ----

/** Names common non-supported formats so a 415 tells the client what it sent. */
function identifyOther(b: Uint8Array): string | undefined {
  if (startsWith(b, ascii("GIF8"))) return "GIF images";
  if (startsWith(b, ascii("%PDF-"))) return "PDF documents";
  if (startsWith(b, ascii("II*\0")) || startsWith(b, ascii("MM\0*"))) return "TIFF images";
  if (startsWith(b, ascii("BM")) && b.length >= 14) return "BMP images";
  if (startsWith(b, ascii("8BPS"))) return "Photoshop (PSD) files";
  if (startsWith(b, ascii("qoif"))) return "QOI images";
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00]) && b.length >= 6) return "ICO images";
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, ascii("\0\0\0\x0cJXL \r\n\x87\n"))) return "JPEG XL images";
  if (startsWith(b, ascii("\0\0\0\x0cjP  \r\n\x87\n")) || startsWith(b, [0xff, 0x4f, 0xff, 0x51]))
    return "JPEG 2000 images";
  if (startsWith(b, [0x1f, 0x8b])) return "gzip-compressed files (e.g. SVGZ)";
  if (fourcc(b, 4) === "ftyp" && b.length >= 12) {
    const brand = fourcc(b, 8);
    if (brand === "avif" || brand === "avis") return "AVIF images";
    if (["heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs"].includes(brand)) return "HEIC images";
    if (brand === "mif1" || brand === "msf1") return "HEIF images";
    return `ISO media files (brand "${brand.replace(/[^\x20-\x7e]/g, "?")}")`;
  }
  const text = leadingText(b);
  if (text.startsWith("<svg") || (text.startsWith("<?xml") && text.includes("<svg"))) return "SVG images";
  if (text.startsWith("<!doctype html") || text.startsWith("<html")) return "HTML documents";
  return undefined;
}

/** First bytes as lower-case text, skipping a UTF-8 BOM and leading whitespace. */
function leadingText(b: Uint8Array): string {
  let i = startsWith(b, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  return String.fromCharCode(...b.subarray(i, i + 1024)).toLowerCase();
}
