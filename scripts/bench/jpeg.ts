/**
 * Deterministic, photo-like JPEGs for the benchmark, with no image library and
 * no Python: a small baseline (SOF0, 4:2:0, standard Huffman tables) encoder
 * and a procedural "landscape" (sky gradient, sun, hills, buildings with
 * windows, multi-octave value noise and sensor grain). The content matters
 * because JPEG decode time scales with the entropy-coded size: flat synthetic
 * images would make decoding look cheaper than it is for real photos. At
 * quality 90 a 12 MP frame comes out at a few MB, like a phone photo.
 *
 * `withNonce` inserts a COM segment, so the same picture can be sent as
 * distinct bytes (distinct sha256 → guaranteed result-cache miss) while
 * every request decodes exactly the same pixels.
 */
import { rng } from "../gen-images";

// --- encoder -----------------------------------------------------------------

const ZIGZAG = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63,
]);

// ITU T.81 Annex K tables (natural order).
const STD_LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
  87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
];
const STD_CHROMA_Q = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99,
];
const DC_LUMA_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_LUMA_VALS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const DC_CHROMA_BITS = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_CHROMA_VALS = DC_LUMA_VALS;
const AC_LUMA_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUMA_VALS = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14,
  0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09,
  0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
  0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65,
  0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
  0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
  0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
  0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
  0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];
const AC_CHROMA_BITS = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALS = [
  0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32,
  0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16,
  0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39,
  0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
  0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86,
  0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
  0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8,
  0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
  0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

interface HuffTable {
  code: Uint16Array;
  size: Uint8Array;
}

function buildHuffman(bits: number[], vals: number[]): HuffTable {
  const code = new Uint16Array(256);
  const size = new Uint8Array(256);
  let c = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < (bits[len - 1] as number); i++) {
      const v = vals[k++] as number;
      code[v] = c++;
      size[v] = len;
    }
    c <<= 1;
  }
  return { code, size };
}

function scaledQuant(table: number[], quality: number): Uint8Array {
  const q = Math.min(100, Math.max(1, quality));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  return Uint8Array.from(table, (v) => Math.min(255, Math.max(1, Math.floor((v * scale + 50) / 100))));
}

/** cos((2x+1)uπ/16) * C(u)/2, so that F(u,v) = Σ_x Σ_y f(x,y) · T[u][x] · T[v][y]. */
const DCT = (() => {
  const t = new Float64Array(64);
  for (let u = 0; u < 8; u++)
    for (let x = 0; x < 8; x++)
      t[u * 8 + x] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  return t;
})();

class BitWriter {
  private buf = new Uint8Array(1 << 20);
  private len = 0;
  private acc = 0;
  private nbits = 0;

  private byte(b: number): void {
    if (this.len === this.buf.length) {
      const next = new Uint8Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.len++] = b;
  }

  bytes(bs: ArrayLike<number>): void {
    for (let i = 0; i < bs.length; i++) this.byte(bs[i] as number);
  }

  bits(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((value >> i) & 1);
      if (++this.nbits === 8) {
        this.byte(this.acc);
        if (this.acc === 0xff) this.byte(0); // byte stuffing
        this.acc = 0;
        this.nbits = 0;
      }
    }
  }

  /** Pads the last byte with 1-bits, as T.81 requires. */
  flush(): void {
    if (this.nbits > 0) this.bits((1 << (8 - this.nbits)) - 1, 8 - this.nbits);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function segment(w: BitWriter, marker: number, payload: number[]): void {
  w.bytes([0xff, marker, ((payload.length + 2) >> 8) & 0xff, (payload.length + 2) & 0xff]);
  w.bytes(payload);
}

/** Baseline 4:2:0 JPEG (JFIF) from interleaved RGB8. */
export function encodeJpeg(width: number, height: number, rgb: Uint8Array, quality = 90): Uint8Array {
  if (rgb.length !== width * height * 3) throw new Error(`expected ${width * height * 3} RGB bytes`);
  const qY = scaledQuant(STD_LUMA_Q, quality);
  const qC = scaledQuant(STD_CHROMA_Q, quality);
  const hDcY = buildHuffman(DC_LUMA_BITS, DC_LUMA_VALS);
  const hAcY = buildHuffman(AC_LUMA_BITS, AC_LUMA_VALS);
  const hDcC = buildHuffman(DC_CHROMA_BITS, DC_CHROMA_VALS);
  const hAcC = buildHuffman(AC_CHROMA_BITS, AC_CHROMA_VALS);

  const w = new BitWriter();
  w.bytes([0xff, 0xd8]);
  segment(w, 0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  segment(w, 0xdb, [
    0,
    ...Array.from(ZIGZAG, (z) => qY[z] as number),
    1,
    ...Array.from(ZIGZAG, (z) => qC[z] as number),
  ]);
  segment(w, 0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  const dht = (cls: number, bits: number[], vals: number[]) => [cls, ...bits, ...vals];
  segment(w, 0xc4, [
    ...dht(0x00, DC_LUMA_BITS, DC_LUMA_VALS),
    ...dht(0x10, AC_LUMA_BITS, AC_LUMA_VALS),
    ...dht(0x01, DC_CHROMA_BITS, DC_CHROMA_VALS),
    ...dht(0x11, AC_CHROMA_BITS, AC_CHROMA_VALS),
  ]);
  segment(w, 0xda, [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);

  const block = new Float64Array(64);
  const tmp = new Float64Array(64);
  const coef = new Int32Array(64);
  const pred = [0, 0, 0];

  const encodeBlock = (q: Uint8Array, dc: HuffTable, ac: HuffTable, comp: number) => {
    // Separable forward DCT: rows then columns.
    for (let y = 0; y < 8; y++)
      for (let u = 0; u < 8; u++) {
        let s = 0;
        for (let x = 0; x < 8; x++) s += (block[y * 8 + x] as number) * (DCT[u * 8 + x] as number);
        tmp[y * 8 + u] = s;
      }
    for (let v = 0; v < 8; v++)
      for (let u = 0; u < 8; u++) {
        let s = 0;
        for (let y = 0; y < 8; y++) s += (tmp[y * 8 + u] as number) * (DCT[v * 8 + y] as number);
        coef[v * 8 + u] = Math.round(s / (q[v * 8 + u] as number));
      }
    const diff = (coef[0] as number) - (pred[comp] as number);
    pred[comp] = coef[0] as number;
    const put = (table: HuffTable, sym: number) => w.bits(table.code[sym] as number, table.size[sym] as number);
    const magnitude = (v: number) => {
      const a = Math.abs(v);
      const n = a === 0 ? 0 : 32 - Math.clz32(a);
      return { n, bits: v < 0 ? v + (1 << n) - 1 : v };
    };
    const d = magnitude(diff);
    put(dc, d.n);
    if (d.n) w.bits(d.bits, d.n);
    let run = 0;
    for (let k = 1; k < 64; k++) {
      const v = coef[ZIGZAG[k] as number] as number;
      if (v === 0) {
        run++;
        continue;
      }
      while (run > 15) {
        put(ac, 0xf0);
        run -= 16;
      }
      const m = magnitude(v);
      put(ac, (run << 4) | m.n);
      w.bits(m.bits, m.n);
      run = 0;
    }
    if (run > 0) put(ac, 0x00);
  };

  const sample = (x: number, y: number) => {
    const o = (Math.min(y, height - 1) * width + Math.min(x, width - 1)) * 3;
    return [rgb[o] as number, rgb[o + 1] as number, rgb[o + 2] as number] as const;
  };
  for (let my = 0; my < height; my += 16)
    for (let mx = 0; mx < width; mx += 16) {
      for (const [bx, by] of [
        [0, 0],
        [8, 0],
        [0, 8],
        [8, 8],
      ] as const) {
        for (let y = 0; y < 8; y++)
          for (let x = 0; x < 8; x++) {
            const [r, g, b] = sample(mx + bx + x, my + by + y);
            block[y * 8 + x] = 0.299 * r + 0.587 * g + 0.114 * b - 128;
          }
        encodeBlock(qY, hDcY, hAcY, 0);
      }
      // Chroma: the mean of each 2x2 (box filter), then Cb and Cr.
      const cb = new Float64Array(64);
      const cr = new Float64Array(64);
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++) {
          let sb = 0;
          let sr = 0;
          for (let dy = 0; dy < 2; dy++)
            for (let dx = 0; dx < 2; dx++) {
              const [r, g, b] = sample(mx + 2 * x + dx, my + 2 * y + dy);
              sb += -0.168736 * r - 0.331264 * g + 0.5 * b;
              sr += 0.5 * r - 0.418688 * g - 0.081312 * b;
            }
          cb[y * 8 + x] = sb / 4;
          cr[y * 8 + x] = sr / 4;
        }
      block.set(cb);
      encodeBlock(qC, hDcC, hAcC, 1);
      block.set(cr);
      encodeBlock(qC, hDcC, hAcC, 2);
    }
  w.flush();
  w.bytes([0xff, 0xd9]);
  return w.result();
}

/** The same JPEG with a COM segment after SOI: different bytes and sha256, identical pixels. */
export function withNonce(jpeg: Uint8Array, nonce: string): Uint8Array {
  const text = new TextEncoder().encode(nonce);
  const len = text.length + 2;
  const out = new Uint8Array(jpeg.length + 2 + len);
  out.set(jpeg.subarray(0, 2), 0);
  out.set([0xff, 0xfe, len >> 8, len & 0xff], 2);
  out.set(text, 6);
  out.set(jpeg.subarray(2), 6 + text.length);
  return out;
}

// --- content -----------------------------------------------------------------

/** Smooth value noise on a lattice of `cell` pixels, bilinear-interpolated with smoothstep. */
function valueNoise(width: number, height: number, cell: number, r: () => number): Float32Array {
  const gw = Math.ceil(width / cell) + 2;
  const gh = Math.ceil(height / cell) + 2;
  const grid = Float32Array.from({ length: gw * gh }, () => r() * 2 - 1);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const gy = y / cell;
    const y0 = Math.floor(gy);
    const fy = gy - y0;
    const sy = fy * fy * (3 - 2 * fy);
    for (let x = 0; x < width; x++) {
      const gx = x / cell;
      const x0 = Math.floor(gx);
      const fx = gx - x0;
      const sx = fx * fx * (3 - 2 * fx);
      const i = y0 * gw + x0;
      const a = (grid[i] as number) + ((grid[i + 1] as number) - (grid[i] as number)) * sx;
      const b = (grid[i + gw] as number) + ((grid[i + gw + 1] as number) - (grid[i + gw] as number)) * sx;
      out[y * width + x] = a + (b - a) * sy;
    }
  }
  return out;
}

/** A deterministic landscape-like RGB8 picture; the scene scales with the size, so 640x480 and 12 MP look alike. */
export function photoLike(width: number, height: number, seed = 7): Uint8Array {
  const r = rng(seed);
  const s = Math.min(width, height) / 480; // scene scale
  // Fine detail stays at a few pixels whatever the size: phone photos carry detail (and sensor noise) at pixel scale.
  const detail = valueNoise(width, height, 3, r);
  const texture = valueNoise(width, height, Math.max(4, Math.round(24 * s)), r);
  const horizonNoise = valueNoise(width, 1, Math.max(8, Math.round(90 * s)), r);
  const rgb = new Uint8Array(width * height * 3);
  const sunX = width * (0.2 + r() * 0.6);
  const sunY = height * (0.12 + r() * 0.15);
  const sunR = 40 * s;
  const buildings: Array<{ x0: number; x1: number; top: number; tone: number }> = [];
  for (let i = 0; i < 9; i++) {
    const x0 = r() * width;
    buildings.push({
      x0,
      x1: x0 + (40 + r() * 90) * s,
      top: height * (0.35 + r() * 0.25),
      tone: 60 + r() * 120,
    });
  }
  const horizon = (x: number) => height * 0.58 + (horizonNoise[x] as number) * 60 * s;
  const grain = rng(seed + 1);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const t = texture[i] as number;
      const d = detail[i] as number;
      let c: [number, number, number];
      const h = horizon(x);
      if (y < h) {
        const k = y / h; // sky: deep blue → hazy near the horizon, with clouds from the texture
        const cloud = Math.max(0, t) * 90;
        c = [70 + 110 * k + cloud, 120 + 90 * k + cloud, 200 + 40 * k + cloud * 0.6];
        const dist = Math.hypot(x - sunX, y - sunY);
        if (dist < sunR * 3) {
          const glow = dist < sunR ? 1 : ((sunR * 3 - dist) / (sunR * 2)) ** 2;
          c = [c[0] + 120 * glow, c[1] + 100 * glow, c[2] + 40 * glow];
        }
      } else {
        const k = (y - h) / (height - h); // grass/earth with texture
        c = [60 + 50 * k + 40 * t, 110 - 30 * k + 50 * t, 40 + 20 * k + 20 * t];
      }
      for (const b of buildings) {
        if (x >= b.x0 && x < b.x1 && y >= b.top && y < h + 20 * s) {
          const wx = ((x - b.x0) / (12 * s)) % 1;
          const wy = ((y - b.top) / (16 * s)) % 1;
          const lit = wx > 0.3 && wx < 0.8 && wy > 0.3 && wy < 0.8;
          c = lit ? [230, 210, 140] : [b.tone + 20 * t, b.tone * 0.9 + 20 * t, b.tone * 0.85 + 20 * t];
          break;
        }
      }
      const n = d * 18 + (grain() - 0.5) * 14;
      const o = i * 3;
      rgb[o] = clamp(c[0] + n);
      rgb[o + 1] = clamp(c[1] + n);
      rgb[o + 2] = clamp(c[2] + n);
    }
  return rgb;
}

const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

export function photoJpeg(width: number, height: number, seed = 7, quality = 90): Uint8Array {
  return encodeJpeg(width, height, photoLike(width, height, seed), quality);
}
