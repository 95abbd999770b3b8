/**
 * Generates the bad-input corpus, test/fixtures/corpus/, and its index.json:
 * every file with the answer POST /v1/classify must give it (status + error
 * code, or "classifies" with the expected format and size), how to send it,
 * and where it came from. test/workerd/corpus.test.ts holds the worker to it.
 *
 *   npx tsx scripts/gen-corpus.ts           # (re)write the corpus
 *   npx tsx scripts/gen-corpus.ts --check   # regenerate into a temp dir and compare
 *
 * Most files are made here, in TypeScript, from committed fixtures
 * (test/fixtures/images, test/fixtures/bad, test/fixtures/photos/chelsea.png)
 * by deterministic byte surgery. A few need a real encoder (CMYK, greyscale
 * and extreme-aspect JPEGs, an animated GIF): those come from PIL via
 * /usr/bin/python3, at generation time only, together with PIL's own decode
 * of them (reference/*.rgb) for the reference check. Output is byte-identical
 * for the same Node (zlib) and PIL versions (PIL 9.4.0 here); --check proves it.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";
import { decode as pngDecode } from "fast-png";
import { concat, crc32, pngChunk, rngFor } from "./fuzz";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FIXTURES = join(ROOT, "test/fixtures");
const CORPUS = join(FIXTURES, "corpus");
const PYTHON = "/usr/bin/python3";

/** How the test sends a file. */
type Send =
  | { type: "raw"; content_type: string }
  | { type: "multipart"; field: string; as_text?: boolean; content_type: string };

interface Entry {
  file: string;
  send: Send;
  status: number;
  /** Error code for a 4xx; absent for "classifies". */
  code?: string;
  answer?: "classifies";
  /** For "classifies": what the response's `image` must say. */
  image?: { format: string; width: number; height: number };
  /** For "classifies": PIL's (or the generator's exact) RGB8 pixels, for the reference check. */
  reference?: string;
  message_includes?: string;
  notes: string;
  source: string;
}

const raw = (content_type = "application/octet-stream"): Send => ({ type: "raw", content_type });
const MIME: Record<string, string> = { jpeg: "image/jpeg", png: "image/png", webp: "image/webp" };

// ------------------------------------------------------------- helpers ----

const fixture = (rel: string): Uint8Array => new Uint8Array(readFileSync(join(FIXTURES, rel)));
const be16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);
const be32 = (b: Uint8Array, o: number): number => (be16(b, o) * 0x10000 + be16(b, o + 2)) >>> 0;
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 255;
  b[o + 1] = v & 255;
}
function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, v >>> 16);
  put16(b, o + 2, v & 0xffff);
}
const le = (v: number, n: number): number[] => Array.from({ length: n }, (_, i) => (v >>> (8 * i)) & 255);
const ascii = (s: string): Uint8Array => new Uint8Array(Array.from(s, (c) => c.charCodeAt(0)));

// PNG ---------------------------------------------------------------------

const PNG_SIG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function ihdr(width: number, height: number, depth: number, colourType: number): Uint8Array {
  const d = new Uint8Array(13);
  put32(d, 0, width);
  put32(d, 4, height);
  d[8] = depth;
  d[9] = colourType;
  return pngChunk("IHDR", d);
}

/** Scanlines (filter byte 0 + samples) from tightly packed big-endian sample bytes. */
function scanlines(height: number, rowBytes: number, samples: Uint8Array): Uint8Array {
  const out = new Uint8Array(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) out.set(samples.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  return out;
}

function png(
  width: number,
  height: number,
  depth: number,
  colourType: number,
  samples: Uint8Array,
  extra: Uint8Array[] = [],
) {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType] ?? 3;
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  return concat(
    PNG_SIG,
    ihdr(width, height, depth, colourType),
    ...extra,
    pngChunk("IDAT", new Uint8Array(deflateSync(scanlines(height, rowBytes, samples), { level: 9 }))),
    pngChunk("IEND", new Uint8Array(0)),
  );
}

interface PngChunkPos {
  at: number;
  length: number;
  type: string;
}
function pngChunks(b: Uint8Array): PngChunkPos[] {
  const out: PngChunkPos[] = [];
  for (let off = 8; off + 12 <= b.length; ) {
    const length = be32(b, off);
    out.push({ at: off, length, type: String.fromCharCode(...b.subarray(off + 4, off + 8)) });
    off += 12 + length;
  }
  return out;
}

// JPEG --------------------------------------------------------------------

interface Segment {
  marker: number;
  /** Payload after the length field. */
  data: Uint8Array;
}

/** Splits a JPEG into header segments (up to and including SOS) and the rest (scan data onwards). */
function jpegSplit(b: Uint8Array): { segments: Segment[]; tail: Uint8Array } {
  const segments: Segment[] = [];
  let off = 2;
  for (;;) {
    const marker = b[off + 1] ?? 0;
    const length = be16(b, off + 2);
    segments.push({ marker, data: b.slice(off + 4, off + 2 + length) });
    off += 2 + length;
    if (marker === 0xda) return { segments, tail: b.slice(off) };
  }
}

function jpegJoin(segments: Segment[], tail: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [new Uint8Array([0xff, 0xd8])];
  for (const s of segments) {
    const head = new Uint8Array([0xff, s.marker, 0, 0]);
    put16(head, 2, s.data.length + 2);
    parts.push(head, s.data);
  }
  return concat(...parts, tail);
}

/** Returns a copy with the frame header edited. */
function withSof(b: Uint8Array, edit: (sof: Segment) => void): Uint8Array {
  const { segments, tail } = jpegSplit(b);
  const sof = segments.find((s) => s.marker >= 0xc0 && s.marker <= 0xc2);
  if (!sof) throw new Error("no SOF");
  edit(sof);
  return jpegJoin(segments, tail);
}

interface HuffTable {
  tc: number;
  th: number;
  counts: number[];
  symbols: number[];
}
function parseDht(data: Uint8Array): HuffTable[] {
  const tables: HuffTable[] = [];
  for (let p = 0; p < data.length; ) {
    const counts = Array.from(data.subarray(p + 1, p + 17));
    const total = counts.reduce((a, b) => a + b, 0);
    tables.push({
      tc: (data[p] ?? 0) >> 4,
      th: (data[p] ?? 0) & 15,
      counts,
      symbols: Array.from(data.subarray(p + 17, p + 17 + total)),
    });
    p += 17 + total;
  }
  return tables;
}
function serialiseDht(tables: HuffTable[]): Uint8Array {
  return new Uint8Array(tables.flatMap((t) => [(t.tc << 4) | t.th, ...t.counts, ...t.symbols]));
}
function withHuffman(b: Uint8Array, edit: (tables: HuffTable[]) => void): Uint8Array {
  const { segments, tail } = jpegSplit(b);
  const dhts = segments.filter((s) => s.marker === 0xc4);
  const tables = dhts.flatMap((s) => parseDht(s.data));
  edit(tables);
  // One DHT segment with every table, where the first one was.
  const first = segments.indexOf(dhts[0] as Segment);
  const rest = segments.filter((s) => s.marker !== 0xc4);
  rest.splice(first, 0, { marker: 0xc4, data: serialiseDht(tables) });
  return jpegJoin(rest, tail);
}

/**
 * A progressive greyscale JPEG: one DC scan (1 bit per block), then `acScans`
 * AC scans that each code nothing but end-of-band runs of up to 32767 blocks
 * (a handful of bytes per scan, however large the image).
 */
function manyScans(acScans: number, size: number): Uint8Array {
  const bits = (s: string): number[] => {
    const padded = s + "1".repeat((8 - (s.length % 8)) % 8);
    const out: number[] = [];
    for (let i = 0; i < padded.length; i += 8) {
      const b = Number.parseInt(padded.slice(i, i + 8), 2);
      out.push(b);
      if (b === 0xff) out.push(0);
    }
    return out;
  };
  const seg = (marker: number, data: number[]) => [
    0xff,
    marker,
    (data.length + 2) >> 8,
    (data.length + 2) & 255,
    ...data,
  ];
  const blocks = (size / 8) ** 2;
  const out: number[] = [0xff, 0xd8];
  out.push(...seg(0xdb, [0, ...new Array<number>(64).fill(1)]));
  out.push(...seg(0xc2, [8, size >> 8, size & 255, size >> 8, size & 255, 1, 1, 0x11, 0]));
  out.push(...seg(0xc4, [0x00, 1, ...new Array<number>(15).fill(0), 0])); // DC: "0" = no difference
  out.push(...seg(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0xe0])); // AC: "0" = EOB run of 2^14 + 14 bits
  out.push(...seg(0xda, [1, 1, 0x00, 0, 0, 0]), ...new Array<number>(blocks / 8).fill(0));
  const ac = bits(`0${"1".repeat(14)}`.repeat(Math.ceil(blocks / 32767)));
  for (let i = 0; i < acScans; i++) out.push(...seg(0xda, [1, 1, 0x00, 1, 63, 0]), ...ac);
  out.push(0xff, 0xd9);
  return new Uint8Array(out);
}

// --------------------------------------------------------------- images ----

/** chelsea.png (300x200), box-downsampled 2x2 to 150x100 RGB8. */
function smallChelsea(): { width: number; height: number; rgb: Uint8Array } {
  const src = pngDecode(fixture("photos/chelsea.png"));
  if (src.channels !== 3 || src.depth !== 8) throw new Error("chelsea.png: expected 8-bit RGB");
  const W = src.width / 2;
  const H = src.height / 2;
  const rgb = new Uint8Array(W * H * 3);
  const s = src.data as Uint8Array;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number) => s[(yy * src.width + xx) * 3 + c] ?? 0;
        const sum = at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1);
        rgb[(y * W + x) * 3 + c] = (sum + 2) >> 2;
      }
    }
  }
  return { width: W, height: H, rgb };
}

/** A long thin test card: hue ramp along the long axis, stripes across it. */
function thinCard(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const long = Math.max(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (width > height ? x : y) / long;
      const across = width > height ? y : x;
      const o = (y * width + x) * 3;
      rgb[o] = Math.round(255 * t);
      rgb[o + 1] = Math.round(128 + 127 * Math.sin(t * 40));
      rgb[o + 2] = across % 2 ? 230 : 30;
    }
  }
  return rgb;
}

const to8 = (v: number): number => Math.round((v * 255) / 65535);

// ------------------------------------------------------------- generate ----

/** The PIL-made files; PIL also writes its decode of each JPEG to reference/. */
const PIL_SCRIPT = `
import sys
from PIL import Image
out, chelsea = sys.argv[1], sys.argv[2]
im = Image.open(chelsea).convert("RGB")
small = im.resize((150, 100), Image.LANCZOS)

def card(w, h):
    c = Image.new("RGB", (w, h))
    px = c.load()
    import math
    n = max(w, h)
    for y in range(h):
        for x in range(w):
            t = (x if w > h else y) / n
            a = y if w > h else x
            px[x, y] = (round(255 * t), round(128 + 127 * math.sin(t * 40)), 230 if a % 2 else 30)
    return c

files = {
    "cmyk.jpg": (small.convert("CMYK"), {"quality": 90}),
    "gray.jpg": (small.convert("L"), {"quality": 90}),
    "thin_4x3000.jpg": (card(4, 3000), {"quality": 92}),
    "wide_3000x4.jpg": (card(3000, 4), {"quality": 92}),
}
for name, (img, kw) in files.items():
    img.save(f"{out}/{name}", "JPEG", **kw)
    with open(f"{out}/reference/{name}.rgb", "wb") as f:
        f.write(Image.open(f"{out}/{name}").convert("RGB").tobytes())

frames = [Image.new("RGB", (32, 32), c) for c in [(220, 40, 40), (40, 40, 220), (40, 200, 40)]]
frames[0].save(f"{out}/animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
`;

function generate(out: string): Entry[] {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "reference"), { recursive: true });
  const entries: Entry[] = [];
  const write = (file: string, bytes: Uint8Array, e: Omit<Entry, "file">) => {
    writeFileSync(join(out, file), bytes);
    entries.push({ file, ...e });
  };
  const bad = (status: number, code: string, notes: string, source: string, extra: Partial<Entry> = {}) => ({
    send: raw(),
    status,
    code,
    notes,
    source,
    ...extra,
  });
  const ok = (
    format: string,
    width: number,
    height: number,
    notes: string,
    source: string,
    reference?: string,
  ): Omit<Entry, "file"> => ({
    send: raw(MIME[format]),
    status: 200,
    answer: "classifies",
    image: { format, width, height },
    ...(reference ? { reference } : {}),
    notes,
    source,
  });

  const jpeg = fixture("images/jpeg_baseline_420.jpg");
  const progressive = fixture("images/jpeg_progressive.jpg");
  const progressive422 = fixture("images/jpeg_progressive_422.jpg");
  const pngRgb = fixture("images/png_rgb8.png");
  const webpLossy = fixture("images/webp_lossy.webp");
  const webpVp8x = fixture("images/webp_lossy_alpha.webp");
  const r = rngFor(20240607, 0);

  // ---- nothing, or not an image at all
  write("empty.bin", new Uint8Array(0), {
    ...bad(400, "empty_body", "zero bytes: the body check answers before any decoder", "generated"),
  });
  const random = new Uint8Array(4096);
  for (let i = 0; i < random.length; i++) random[i] = r.int(256);
  write("random.bin", random, bad(415, "unsupported_media_type", "4 KiB of seeded random bytes", "generated"));
  const fakeJpeg = random.slice(0, 2048);
  fakeJpeg.set([0xff, 0xd8, 0xff, 0xe0]);
  write(
    "random_after_jpeg_magic.jpg",
    fakeJpeg,
    bad(422, "invalid_image", "JPEG magic bytes followed by random bytes", "generated"),
  );
  write(
    "not_an_image.json",
    ascii('{"image":"https://example.com/cat.jpg","top_k":5}\n'),
    bad(
      415,
      "unsupported_media_type",
      "JSON in place of an image, sent as image/jpeg: judged by its bytes",
      "generated",
      {
        send: raw("image/jpeg"),
      },
    ),
  );
  write(
    "page.html",
    ascii("<!doctype html><html><head><title>cat</title></head><body><img src=cat.jpg></body></html>\n"),
    bad(415, "unsupported_media_type", "an HTML page (what a wrong URL usually returns)", "generated", {
      send: raw("image/jpeg"),
      message_includes: "HTML",
    }),
  );

  // ---- truncated
  write(
    "truncated_baseline.jpg",
    jpeg.slice(0, Math.floor(jpeg.length * 0.6)),
    bad(422, "invalid_image", "baseline JPEG cut at 60% (inside the scan)", "images/jpeg_baseline_420.jpg"),
  );
  write(
    "truncated_header.jpg",
    jpeg.slice(0, 120),
    bad(422, "invalid_image", "JPEG cut inside its header segments", "images/jpeg_baseline_420.jpg"),
  );
  write(
    "truncated_progressive.jpg",
    progressive.slice(0, Math.floor(progressive.length * 0.5)),
    bad(422, "invalid_image", "progressive JPEG cut between/inside scans", "images/jpeg_progressive.jpg"),
  );
  write(
    "no_eoi.jpg",
    jpeg.slice(0, -2),
    bad(422, "invalid_image", "complete scan, EOI marker removed (EOI is required)", "images/jpeg_baseline_420.jpg"),
  );
  write(
    "truncated.png",
    pngRgb.slice(0, Math.floor(pngRgb.length * 0.6)),
    bad(422, "invalid_image", "PNG cut at 60% (inside IDAT)", "images/png_rgb8.png"),
  );
  {
    const iend = pngChunks(pngRgb).find((c) => c.type === "IEND") as PngChunkPos;
    write(
      "no_iend.png",
      pngRgb.slice(0, iend.at),
      bad(422, "invalid_image", "complete image data, IEND chunk removed (IEND is required)", "images/png_rgb8.png"),
    );
  }
  write(
    "truncated.webp",
    webpLossy.slice(0, Math.floor(webpLossy.length / 2)),
    bad(422, "invalid_image", "WebP cut in half (RIFF size larger than the file)", "images/webp_lossy.webp"),
  );

  // ---- corrupt
  write(
    "huffman_oversubscribed.jpg",
    withHuffman(jpeg, (tables) => {
      const t = tables.find((x) => x.tc === 1) as HuffTable; // first AC table
      const from = t.counts.findIndex((n, i) => i > 2 && n >= 2);
      (t.counts as number[])[from] = (t.counts[from] ?? 0) - 2;
      (t.counts as number[])[0] = (t.counts[0] ?? 0) + 2; // 2+ one-bit codes: more codes than bit patterns
    }),
    bad(
      422,
      "invalid_image",
      "corrupt Huffman table: an AC table with more codes than its lengths allow",
      "images/jpeg_baseline_420.jpg",
      {
        message_includes: "Huffman",
      },
    ),
  );
  write(
    "huffman_wrong_codes.jpg",
    withHuffman(jpeg, (tables) => {
      const t = tables.find((x) => x.tc === 0) as HuffTable; // first DC table: a single 1-bit code "0"
      t.counts = [1, ...new Array<number>(15).fill(0)];
      t.symbols = [0];
    }),
    bad(
      422,
      "invalid_image",
      "corrupt Huffman table: the DC table no longer matches the coded data (invalid codes in the scan)",
      "images/jpeg_baseline_420.jpg",
    ),
  );
  write(
    "huffman_missing.jpg",
    (() => {
      const { segments, tail } = jpegSplit(jpeg);
      return jpegJoin(
        segments.filter((s) => s.marker !== 0xc4),
        tail,
      );
    })(),
    bad(
      422,
      "invalid_image",
      "every DHT segment removed: the scan uses undefined Huffman tables",
      "images/jpeg_baseline_420.jpg",
    ),
  );
  {
    const b = pngRgb.slice();
    const idat = pngChunks(b).find((c) => c.type === "IDAT") as PngChunkPos;
    const hit = idat.at + 8 + Math.floor(idat.length / 2);
    b[hit] = (b[hit] ?? 0) ^ 0x55;
    write(
      "bad_crc_idat.png",
      b,
      bad(422, "invalid_image", "one byte inside IDAT changed: CRC mismatch", "images/png_rgb8.png"),
    );
    const fixed = b.slice();
    put32(fixed, idat.at + 8 + idat.length, crc32(fixed.subarray(idat.at + 4, idat.at + 8 + idat.length)));
    write(
      "corrupt_zlib_good_crc.png",
      fixed,
      bad(
        422,
        "invalid_image",
        "the same damaged IDAT with its CRC recomputed: the zlib stream itself is corrupt",
        "images/png_rgb8.png",
      ),
    );
  }
  {
    const b = pngRgb.slice();
    b[29] = (b[29] ?? 0) ^ 0xff;
    write("bad_crc_ihdr.png", b, bad(422, "invalid_image", "IHDR CRC flipped", "images/png_rgb8.png"));
  }
  {
    // A text-mode transfer turned the signature's \r\n into \n.
    const b = concat(pngRgb.subarray(0, 4), pngRgb.subarray(5));
    write(
      "corrupt_signature.png",
      b,
      bad(422, "invalid_image", "PNG signature mangled by a line-ending conversion", "images/png_rgb8.png"),
    );
  }
  write(
    "zero_width.png",
    png(0, 16, 8, 2, new Uint8Array(0)),
    bad(422, "invalid_image", "IHDR declares width 0", "generated"),
  );
  {
    const samples = new Uint8Array(64 * 64 * 3).fill(128);
    const valid = png(64, 64, 8, 2, samples);
    const second = ihdr(20000, 20000, 8, 2);
    write(
      "two_ihdr.png",
      concat(valid.subarray(0, 33), second, valid.subarray(33)),
      bad(
        422,
        "invalid_image",
        "a second, valid-CRC IHDR declaring 20000x20000 after a 64x64 one (fast-png would have used the second)",
        "generated (found by review; regression)",
      ),
    );
  }
  {
    const rows = scanlines(16, 48, new Uint8Array(16 * 48).fill(90));
    rows[5 * 49] = 7; // filter types are 0..4
    write(
      "bad_filter_type.png",
      concat(
        PNG_SIG,
        ihdr(16, 16, 8, 2),
        pngChunk("IDAT", new Uint8Array(deflateSync(rows))),
        pngChunk("IEND", new Uint8Array(0)),
      ),
      bad(422, "invalid_image", "scanline filter type 7 (valid: 0..4), valid zlib and CRCs", "generated"),
    );
  }

  // ---- decompression bombs
  write(
    "bomb_50000x50000.png",
    concat(
      PNG_SIG,
      ihdr(50000, 50000, 8, 2),
      pngChunk("IDAT", new Uint8Array(deflateSync(new Uint8Array(150001)))),
      pngChunk("IEND", new Uint8Array(0)),
    ),
    bad(413, "image_too_large", "a 250-byte PNG declaring 50000x50000 (2.5 gigapixels)", "generated", {
      message_includes: "50000",
    }),
  );
  write(
    "bomb_50000x50000.jpg",
    withSof(jpeg, (sof) => {
      put16(sof.data, 1, 50000);
      put16(sof.data, 3, 50000);
    }),
    bad(413, "image_too_large", "baseline JPEG whose frame header says 50000x50000", "images/jpeg_baseline_420.jpg", {
      message_includes: "50000",
    }),
  );
  {
    const b = webpVp8x.slice();
    b.set(le(49999, 3), 24); // canvas width - 1
    b.set(le(49999, 3), 27); // canvas height - 1
    write(
      "bomb_50000x50000.webp",
      b,
      bad(413, "image_too_large", "extended WebP whose VP8X canvas says 50000x50000", "images/webp_lossy_alpha.webp", {
        message_includes: "50000",
      }),
    );
  }
  write(
    "bomb_50000x50000.gif",
    new Uint8Array([
      ...ascii("GIF89a"),
      ...le(50000, 2),
      ...le(50000, 2),
      0x80,
      0,
      0, // global colour table of 2 entries
      0,
      0,
      0,
      255,
      255,
      255,
      0x2c,
      0,
      0,
      0,
      0,
      ...le(50000, 2),
      ...le(50000, 2),
      0,
      2,
      2,
      0x4c,
      0x01,
      0, // LZW: min code size 2, one tiny sub-block
      0x3b,
    ]),
    bad(
      415,
      "unsupported_media_type",
      "GIF declaring 50000x50000: GIF is never decoded, so it cannot inflate",
      "generated",
      {
        message_includes: "GIF",
      },
    ),
  );
  write(
    "bomb_zlib_idat.png",
    concat(
      PNG_SIG,
      ihdr(64, 64, 8, 2),
      pngChunk("IDAT", new Uint8Array(deflateSync(new Uint8Array(256 * 1024 * 1024), { level: 9 }))),
      pngChunk("IEND", new Uint8Array(0)),
    ),
    bad(
      422,
      "invalid_image",
      "64x64 PNG whose IDAT inflates to 256 MiB (the image needs 12 KB); fast-png alone took 26 s and 270 MB on it",
      "generated (found by review; regression)",
      {
        message_includes: "inflates",
      },
    ),
  );
  {
    const profile = concat(
      ascii("bomb\0"),
      new Uint8Array([0]),
      new Uint8Array(deflateSync(new Uint8Array(256 * 1024 * 1024), { level: 9 })),
    );
    const small = smallChelsea();
    write("bomb_zlib_iccp.png", png(small.width, small.height, 8, 2, small.rgb, [pngChunk("iCCP", profile)]), {
      ...ok(
        "png",
        small.width,
        small.height,
        "valid 150x100 photo with an iCCP profile that inflates to 256 MiB: the profile is dropped unread, the image classifies",
        "photos/chelsea.png (found by review; regression)",
        "bomb_zlib_iccp.png.rgb",
      ),
    });
    writeFileSync(join(out, "reference/bomb_zlib_iccp.png.rgb"), small.rgb);
  }
  write(
    "bomb_progressive_4096x4096.jpg",
    withSof(progressive422, (sof) => {
      put16(sof.data, 1, 4096);
      put16(sof.data, 3, 4096);
    }),
    bad(
      413,
      "image_too_large",
      "6 KB progressive 4:2:2 JPEG declaring 4096x4096: its coefficient store (64 MiB) is over the limit",
      "images/jpeg_progressive_422.jpg",
      {
        message_includes: "coefficient",
      },
    ),
  );
  write(
    "many_scans.jpg",
    manyScans(150, 1024),
    bad(
      422,
      "invalid_image",
      "progressive greyscale 1024x1024 with 151 scans of a few bytes each (end-of-band runs sweep every block): decode time grows with scans, not bytes",
      "generated (found by review; regression)",
      {
        message_includes: "scans",
      },
    ),
  );
  {
    // 16x16 RGB in 1-byte IDAT chunks, plus 4000 empty ones: fast-png's cost is per chunk.
    const samples = new Uint8Array(16 * 16 * 3);
    for (let i = 0; i < samples.length; i++) samples[i] = (i * 37) % 256;
    const z = new Uint8Array(deflateSync(scanlines(16, 48, samples)));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < z.length; i++) chunks.push(pngChunk("IDAT", z.subarray(i, i + 1)));
    for (let i = 0; i < 4000; i++) chunks.push(pngChunk("IDAT", new Uint8Array(0)));
    write(
      "chunk_spam.png",
      concat(PNG_SIG, ihdr(16, 16, 8, 2), ...chunks, pngChunk("IEND", new Uint8Array(0))),
      ok(
        "png",
        16,
        16,
        "valid 16x16 image split over ~4800 IDAT chunks (1 byte or empty): decoded from a rebuilt single-IDAT copy",
        "generated (found by review; regression)",
        "chunk_spam.png.rgb",
      ),
    );
    writeFileSync(join(out, "reference/chunk_spam.png.rgb"), samples);
  }
  write(
    "dimension_bomb_4096x4096.jpg",
    withSof(jpeg, (sof) => {
      put16(sof.data, 1, 4096);
      put16(sof.data, 3, 4096);
    }),
    bad(
      422,
      "invalid_image",
      "26 KB baseline JPEG declaring 4096x4096 (within the pixel budget): its scan runs out early",
      "images/jpeg_baseline_420.jpg",
    ),
  );

  // ---- formats we do not decode
  const copyBad = (name: string, as: string, notes: string, includes: string) =>
    write(
      as,
      fixture(`bad/${name}`),
      bad(415, "unsupported_media_type", notes, `bad/${name}`, { message_includes: includes }),
    );
  copyBad("image.heic", "image.heic", "HEIC (ISO BMFF brand heic, header only)", "HEIC");
  copyBad("image.avif", "image.avif", "AVIF (ISO BMFF brand avif, header only)", "AVIF");
  copyBad("image.svg", "image.svg", "SVG text", "SVG");
  copyBad("document.pdf", "document.pdf", "PDF", "PDF");
  copyBad("image.gif", "image.gif", "static GIF", "GIF");
  copyBad("image.bmp", "image.bmp", "Windows BMP", "BMP");
  copyBad("image.tiff", "image.tiff", "TIFF (little-endian)", "TIFF");
  copyBad(
    "animated.webp",
    "animated.webp",
    "animated WebP: refused with a clear 415 rather than classifying one frame",
    "animated WebP",
  );
  copyBad(
    "cmyk_no_adobe.jpg",
    "cmyk_no_adobe.jpg",
    "4-component JPEG without an Adobe APP14 marker: colour model unknown",
    "CMYK",
  );
  write(
    "arithmetic.jpg",
    withSof(jpeg, (sof) => {
      sof.marker = 0xc9;
    }),
    bad(415, "unsupported_media_type", "frame marker SOF9 (arithmetic coding)", "images/jpeg_baseline_420.jpg", {
      message_includes: "arithmetic",
    }),
  );
  write(
    "12bit.jpg",
    withSof(jpeg, (sof) => {
      sof.data[0] = 12;
    }),
    bad(415, "unsupported_media_type", "12-bit sample precision", "images/jpeg_baseline_420.jpg", {
      message_includes: "12-bit",
    }),
  );

  // ---- odd but valid: must classify
  const small = smallChelsea();
  {
    const samples = new Uint8Array(small.width * small.height * 6);
    const ref = new Uint8Array(small.width * small.height * 3);
    for (let p = 0; p < small.width * small.height; p++) {
      const x = p % small.width;
      const y = Math.floor(p / small.width);
      for (let c = 0; c < 3; c++) {
        // 16 real bits: the 8-bit value spread to 16 plus a deterministic dither
        const v16 = Math.min(
          65535,
          Math.max(0, (small.rgb[p * 3 + c] ?? 0) * 257 + ((x * 7 + y * 13 + c * 5) % 256) - 128),
        );
        put16(samples, p * 6 + c * 2, v16);
        ref[p * 3 + c] = to8(v16);
      }
    }
    write(
      "png16_rgb.png",
      png(small.width, small.height, 16, 2, samples),
      ok(
        "png",
        small.width,
        small.height,
        "16-bit truecolour photo (chelsea); reference = samples rounded to 8 bits",
        "photos/chelsea.png",
        "png16_rgb.png.rgb",
      ),
    );
    writeFileSync(join(out, "reference/png16_rgb.png.rgb"), ref);
  }
  {
    // 6x6x6 colour cube palette
    const palette = new Uint8Array(216 * 3);
    for (let i = 0; i < 216; i++)
      palette.set([Math.floor(i / 36) * 51, (Math.floor(i / 6) % 6) * 51, (i % 6) * 51], i * 3);
    const idx = new Uint8Array(small.width * small.height);
    const ref = new Uint8Array(small.width * small.height * 3);
    for (let p = 0; p < idx.length; p++) {
      const q = (c: number) => Math.round((small.rgb[p * 3 + c] ?? 0) / 51);
      const i = q(0) * 36 + q(1) * 6 + q(2);
      idx[p] = i;
      ref.set(palette.subarray(i * 3, i * 3 + 3), p * 3);
    }
    write(
      "palette.png",
      png(small.width, small.height, 8, 3, idx, [pngChunk("PLTE", palette)]),
      ok(
        "png",
        small.width,
        small.height,
        "8-bit palette (216-colour cube) photo",
        "photos/chelsea.png",
        "palette.png.rgb",
      ),
    );
    writeFileSync(join(out, "reference/palette.png.rgb"), ref);
  }
  {
    const grey = new Uint8Array(small.width * small.height);
    const ref = new Uint8Array(small.width * small.height * 3);
    for (let p = 0; p < grey.length; p++) {
      const g = Math.round(
        0.299 * (small.rgb[p * 3] ?? 0) + 0.587 * (small.rgb[p * 3 + 1] ?? 0) + 0.114 * (small.rgb[p * 3 + 2] ?? 0),
      );
      grey[p] = g;
      ref.fill(g, p * 3, p * 3 + 3);
    }
    write(
      "gray.png",
      png(small.width, small.height, 8, 0, grey),
      ok("png", small.width, small.height, "8-bit greyscale photo", "photos/chelsea.png", "gray.png.rgb"),
    );
    writeFileSync(join(out, "reference/gray.png.rgb"), ref);
  }
  for (const [w, h] of [
    [4, 3000],
    [3000, 4],
  ] as const) {
    const card = thinCard(w, h);
    const name = w < h ? "thin_4x3000.png" : "wide_3000x4.png";
    write(name, png(w, h, 8, 2, card), ok("png", w, h, `${w}x${h}: extreme aspect ratio`, "generated", `${name}.rgb`));
    writeFileSync(join(out, `reference/${name}.rgb`), card);
  }
  const copyValid = (src: string, as: string, format: string, w: number, h: number, notes: string) => {
    write(as, fixture(`images/${src}`), ok(format, w, h, notes, `images/${src}`, `${as}.rgb`));
    writeFileSync(join(out, `reference/${as}.rgb`), fixture(`images/${src.replace(/\.\w+$/, ".rgb")}`));
  };
  copyValid("png_gray16.png", "gray16.png", "png", 96, 72, "16-bit greyscale");
  copyValid("png_palette_trns.png", "palette_trns.png", "png", 128, 96, "palette with per-entry alpha (tRNS)");
  copyValid("jpeg_1x1.jpg", "1x1.jpg", "jpeg", 1, 1, "a single pixel");
  copyValid("png_1x1.png", "1x1.png", "png", 1, 1, "a single pixel");
  copyValid("webp_lossless_1x1.webp", "1x1.webp", "webp", 1, 1, "a single pixel, lossless WebP");

  // ---- PIL-made files
  execFileSync(PYTHON, ["-c", PIL_SCRIPT, out, join(FIXTURES, "photos/chelsea.png")], { stdio: "inherit" });
  const pil = (file: string, e: Omit<Entry, "file">) => entries.push({ file, ...e });
  pil(
    "cmyk.jpg",
    ok(
      "jpeg",
      150,
      100,
      "CMYK JPEG as PIL/Photoshop write it (Adobe APP14, inverted)",
      "photos/chelsea.png via PIL",
      "cmyk.jpg.rgb",
    ),
  );
  pil("gray.jpg", ok("jpeg", 150, 100, "greyscale (1-component) JPEG", "photos/chelsea.png via PIL", "gray.jpg.rgb"));
  pil(
    "thin_4x3000.jpg",
    ok("jpeg", 4, 3000, "4x3000 JPEG: less than one MCU wide", "generated via PIL", "thin_4x3000.jpg.rgb"),
  );
  pil(
    "wide_3000x4.jpg",
    ok("jpeg", 3000, 4, "3000x4 JPEG: less than one MCU tall", "generated via PIL", "wide_3000x4.jpg.rgb"),
  );
  pil("animated.gif", {
    ...bad(
      415,
      "unsupported_media_type",
      "animated GIF (3 frames): GIF is not decoded at all, so a clear 415 rather than a first frame",
      "generated via PIL",
    ),
    message_includes: "GIF",
  });

  // ---- request shapes (the file is valid; how it is sent is not)
  const shapes = fixture("photos/coffee.jpg");
  write("coffee.jpg", shapes, {
    ...ok("jpeg", 400, 267, "a valid photo, the control for the request-shape cases below", "photos/coffee.jpg"),
  });
  const shape = (send: Send, status: number, code: string | undefined, notes: string) =>
    entries.push({
      file: "coffee.jpg",
      send,
      status,
      ...(code ? { code } : { answer: "classifies" as const, image: { format: "jpeg", width: 400, height: 267 } }),
      notes,
      source: "photos/coffee.jpg",
    });
  shape(raw("text/plain"), 415, "unsupported_media_type", "wrong content type: a JPEG sent as text/plain");
  shape(
    raw("application/json"),
    400,
    "bad_request",
    "wrong content type: a JPEG sent as application/json (classify parses JSON bodies; these bytes are not JSON)",
  );
  shape(
    { type: "multipart", field: "image", content_type: "image/jpeg" },
    200,
    undefined,
    "multipart with the image field: classifies",
  );
  shape(
    { type: "multipart", field: "file", content_type: "image/jpeg" },
    400,
    "bad_request",
    'multipart without the "image" field',
  );
  shape(
    { type: "multipart", field: "image", as_text: true, content_type: "text/plain" },
    400,
    "bad_request",
    'multipart "image" field sent as text, not a file',
  );
  entries.push({
    file: "not_an_image.json",
    send: raw("application/json"),
    status: 400,
    code: "invalid_parameter",
    notes: 'JSON in place of an image, as application/json: {"image"} must be base64 image bytes, not a URL',
    source: "generated",
  });

  writeFileSync(
    join(out, "index.json"),
    `${JSON.stringify(
      {
        generator: "scripts/gen-corpus.ts",
        pil: "9.4.0",
        send: "raw: POST the bytes with content_type; multipart: a form with the bytes in `field` (as a file, or as text when as_text)",
        files: entries,
      },
      null,
      1,
    )}\n`,
  );
  return entries;
}

function listFiles(dir: string, prefix = ""): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) =>
      statSync(join(dir, n)).isDirectory() ? listFiles(join(dir, n), `${prefix}${n}/`) : [`${prefix}${n}`],
    );
}

function main(): void {
  if (process.argv.includes("--check")) {
    const tmp = mkdtempSync(join(tmpdir(), "corpus-"));
    try {
      generate(tmp);
      const want = listFiles(tmp);
      const have = listFiles(CORPUS);
      const differ = want.filter(
        (f) => !have.includes(f) || !readFileSync(join(tmp, f)).equals(readFileSync(join(CORPUS, f))),
      );
      const extra = have.filter((f) => !want.includes(f));
      if (differ.length || extra.length) {
        console.error(
          `corpus differs from the generator: ${[...differ, ...extra.map((f) => `${f} (extra)`)].join(", ")}`,
        );
        process.exit(1);
      }
      console.log(`corpus matches the generator: ${want.length} files`);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return;
  }
  const entries = generate(CORPUS);
  const files = new Set(entries.map((e) => e.file));
  console.log(`wrote ${files.size} files, ${entries.length} index entries to ${CORPUS}`);
}

main();
