/**
 * Memory-lean JPEG decoder with libjpeg-style DCT-domain downscaling.
 *
 * `decodeJpegScaled` decodes at 1/1, 1/2, 1/4 or 1/8 scale (libjpeg's
 * scale_num/scale_denom): each 8x8 block is inverse-transformed straight to
 * 8x8, 4x4, 2x2 or 1x1 pixels with ports of libjpeg-turbo's integer IDCTs
 * (jidctint.c jpeg_idct_islow for 8x8, jidctred.c jpeg_idct_4x4/2x2/1x1 for
 * the reduced sizes; 1x1 is the DC term alone). Output dims are
 * ceil(width/d) x ceil(height/d), as libjpeg computes them.
 *
 * Memory:
 *  - Sequential (SOF0/SOF1) files whose first scan carries every component
 *    (i.e. all ordinary baseline files) are decoded streaming: each block is
 *    entropy-decoded and dequantised into one reused 64-entry buffer and
 *    IDCT'd at the reduced size straight into a 3-band ring of component
 *    samples; each finished MCU row of the ring is upsampled +
 *    colour-converted into the output. Extra memory ~ output (w*h*3 at the
 *    reduced size) + O(MCU row).
 *  - Progressive (SOF2) files, and sequential files that code components in
 *    separate scans, need every coefficient before any pixel is final: one
 *    Int16Array per component, 64 coefficients per block (128 B per 8x8 block,
 *    blocks padded to whole MCUs; ~24 MB for the luma and ~6 MB per 4:2:0
 *    chroma plane of a 12 MP photo, ~36 MB total), then the same per-band
 *    scaled IDCT/output pass.
 *
 * Chroma: like libjpeg-turbo (jdmaster.c), a subsampled component gets a
 * larger IDCT when the scale allows (e.g. 4:2:0 at 1/2 decodes chroma with the
 * full 8x8 IDCT and 1/4 with the 4x4 one), so it usually lands at output
 * resolution and needs no upsampling at all. Whatever ratio remains is
 * upsampled exactly as jdsample.c does: "fancy" triangle filtering for h2v1,
 * h1v2 and h2v2 when the reduced block is larger than 1x1 (libjpeg disables
 * fancy upsampling at 1/8), plain replication otherwise. So output matches
 * `djpeg -scale 1/d` (ISLOW, default options) up to rare rounding, and at 1/1
 * matches PIL/libjpeg-turbo.
 *
 * Colour: libjpeg's colour-space rule (JFIF / Adobe transform / "RGB" ids),
 * libjpeg-turbo's integer YCbCr->RGB; Adobe CMYK is taken as inverted (as
 * Photoshop/PIL write it) and YCCK is converted to that CMYK first, then
 * CMYK->RGB uses PIL's integer formula (PIL decodes these as "CMYK;I").
 *
 * Speed (the hot paths, all bit-exact with the straightforward versions):
 * Huffman decoding with the reader state in locals, refills that take plain
 * bytes up to the next 0xFF without stuffing checks, and a "fast AC" table
 * that yields run + value in one lookup for short codes; 32-bit IDCTs
 * whenever a block's magnitude proves them exact (float64 otherwise); fused
 * h2v2 fancy upsampling + YCbCr->RGB with clamping by Uint8ClampedArray
 * stores.
 *
 * Errors: 12-bit, arithmetic-coded, lossless/hierarchical JPEGs -> 415.
 * Anything malformed -> 422 invalid_image: every read is bounds-checked; a
 * scan that needs bits past the end of its data (a marker or end of buffer)
 * is an overrun -> 422; an EOI marker is required. Loops are bounded by the
 * block count or the input length. Only ApiError is thrown for bad input.
 */
import { ApiError } from "../../errors";
import { LIMITS } from "../../limits";
import type { DecodedImage, PixelRegion } from "../types";
import { probeImage } from "./probe";

export type ScaleDenom = 1 | 2 | 4 | 8;

export interface ScaledDecodeOptions {
  /** Smallest acceptable shorter side of the scaled output (callers pass 2x the model resize). */
  minShortSide: number;
  /** Refuse (413) images with more stored pixels than this. Default 4096*4096. */
  maxPixels?: number;
  /**
   * Refuse (413) progressive / multi-scan files whose coefficient store
   * (128 B per 8x8 block per component) would exceed this many bytes.
   * Streaming baseline files never allocate it. Default: no limit.
   */
  maxCoefficientBytes?: number;
  /** Refuse (422) files with more scans than this (bounds decode time). Default LIMITS.maxJpegScans. */
  maxScans?: number;
  /**
   * The output pixels the caller will read, given the output size: only
   * these are produced (see PixelRegion). Default: all of them.
   */
  region?: RegionFor;
}

/** The region wanted of an output of this size (the size is only known once the frame header is read). */
export type RegionFor = (width: number, height: number) => PixelRegion;

const DEFAULT_MAX_PIXELS = 4096 * 4096;

const invalid = (message: string): ApiError => new ApiError("invalid_image", message);
const unsupported = (message: string): ApiError => new ApiError("unsupported_media_type", message);

/**
 * Largest d in {8,4,2,1} whose output (ceil(w/d) x ceil(h/d)) still has a
 * shorter side >= minShortSide; 1 if none does.
 */
export function chooseScaleDenom(width: number, height: number, minShortSide: number): ScaleDenom {
  for (const d of [8, 4, 2] as const) {
    if (Math.min(Math.ceil(width / d), Math.ceil(height / d)) >= minShortSide) return d;
  }
  return 1;
}

// -------------------------------------------------------------- tables ----

/** Zig-zag index -> natural (row-major) index. */
const ZIGZAG = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63,
]);

const LOOK_BITS = 9;
/** Peek width of the fast-AC table (see Huffman.fast). */
const FAST_BITS = 10;

/**
 * A DHT table as defined in the file. Decode tables are built only when a
 * scan uses it: a file can define a million tables in 20 MB, and building
 * each (a 512-entry lookup) cost ~1 s per MB; scans are capped, so builds are.
 */
interface HuffmanSpec {
  counts: Uint8Array;
  vals: Uint8Array;
  built?: Huffman;
}

interface Huffman {
  /** (length << 8) | symbol for codes of <= LOOK_BITS bits, 0 otherwise. */
  look: Uint16Array;
  /**
   * AC tables only (stb_image's "fast AC"): for a FAST_BITS-bit peek whose
   * code AND magnitude bits both fit in it, (value << 12) | (run << 4) | bits
   * consumed, so the common small coefficient (and EOB, as a run of 64)
   * costs one lookup instead of a code lookup plus a separate
   * receive/extend. 0 = take the general path.
   */
  fast?: Int32Array;
  maxcode: Int32Array;
  mincode: Int32Array;
  valptr: Int32Array;
  vals: Uint8Array;
}

function buildHuffman(counts: Uint8Array, vals: Uint8Array, ac: boolean): Huffman {
  const maxcode = new Int32Array(18).fill(-1);
  const mincode = new Int32Array(17);
  const valptr = new Int32Array(17);
  const look = new Uint16Array(1 << LOOK_BITS);
  const fast = ac ? new Int32Array(1 << FAST_BITS) : undefined;
  let code = 0;
  let k = 0;
  for (let l = 1; l <= 16; l++) {
    const n = counts[l - 1] ?? 0;
    valptr[l] = k;
    mincode[l] = code;
    if (n > 0) {
      if (code + n > 1 << l) throw invalid("JPEG Huffman table is over-subscribed");
      for (let i = 0; i < n; i++) {
        const sym = vals[k + i] ?? 0;
        if (l <= LOOK_BITS) {
          const shift = LOOK_BITS - l;
          look.fill((l << 8) | sym, (code + i) << shift, (code + i + 1) << shift);
        }
        // Fast AC: every peek that starts with this code and then its s
        // magnitude bits, when both fit in FAST_BITS.
        const s = sym & 15;
        if (fast && l + s <= FAST_BITS) {
          const shift = FAST_BITS - l - s;
          // ZRL (0xF0) is "15 zeros, then a zero": run 15, value 0. Any other
          // s = 0 symbol is EOB: a run of 64 takes k past the block's end.
          const run = s === 0 && sym !== 0xf0 ? 64 : sym >> 4;
          for (let m = 0; m < 1 << s; m++) {
            const first = (((code + i) << s) | m) << shift;
            const value = s === 0 ? 0 : extendBits(m, s);
            fast.fill((value << 12) | (run << 4) | (l + s), first, first + (1 << shift));
          }
        }
      }
      maxcode[l] = code + n - 1;
    }
    code = (code + n) << 1;
    k += n;
  }
  return fast ? { look, fast, maxcode, mincode, valptr, vals } : { look, maxcode, mincode, valptr, vals };
}

function huffman(spec: HuffmanSpec | undefined, ac: boolean): Huffman | undefined {
  if (!spec) return undefined;
  spec.built ??= buildHuffman(spec.counts, spec.vals, ac);
  return spec.built;
}

// ---------------------------------------------------------- bit reader ----

/**
 * Entropy-coded segment reader. Stops at any marker (0xFF not followed by
 * 0x00) and feeds zero bits from then on, counting them in `fake`; a decoder
 * that consumed any of those has run past its data (`overrun()`).
 */
class BitReader {
  acc = 0;
  cnt = 0;
  fake = 0;
  atMarker = false;
  /**
   * Offset of the first 0xFF byte at or after `pos` (d.length if none).
   * Bytes before it are plain entropy-coded data, so refills take them
   * without the stuffing/marker checks.
   */
  ff: number;
  /** Last zig-zag index written by the latest `baselineBlock` (0: DC only). */
  last = 0;
  constructor(
    private readonly d: Uint8Array,
    public pos: number,
  ) {
    this.ff = nextFF(d, pos);
  }

  fill(): void {
    const d = this.d;
    let acc = this.acc;
    let cnt = this.cnt;
    let pos = this.pos;
    const ff = this.ff;
    while (cnt <= 24 && pos < ff) {
      acc = (acc << 8) | (d[pos++] ?? 0);
      cnt += 8;
    }
    this.acc = acc;
    this.cnt = cnt;
    this.pos = pos;
    if (cnt <= 24) this.fillSlow();
  }

  /** Byte-at-a-time refill across an 0xFF (stuffed 0xFF00, or a marker: zero bits from then on). */
  private fillSlow(): void {
    const d = this.d;
    while (this.cnt <= 24) {
      let b = 0;
      if (!this.atMarker) {
        const p = this.pos;
        if (p >= d.length) {
          this.atMarker = true;
        } else {
          b = d[p] ?? 0;
          if (b === 0xff) {
            if (p + 1 < d.length && d[p + 1] === 0) {
              this.pos = p + 2;
            } else {
              this.atMarker = true;
              b = 0;
            }
          } else {
            this.pos = p + 1;
          }
        }
      }
      if (this.atMarker) this.fake += 8;
      this.acc = (this.acc << 8) | b;
      this.cnt += 8;
    }
    if (this.pos > this.ff) this.ff = nextFF(d, this.pos);
  }

  /** n in 0..16 */
  bits(n: number): number {
    if (n === 0) return 0;
    if (this.cnt < n) this.fill();
    this.cnt -= n;
    return (this.acc >>> this.cnt) & ((1 << n) - 1);
  }

  bit(): number {
    if (this.cnt < 1) this.fill();
    this.cnt--;
    return (this.acc >>> this.cnt) & 1;
  }

  /** JPEG "receive + extend" of an s-bit magnitude category. */
  extend(s: number): number {
    if (s === 0) return 0;
    if (s > 16) throw invalid("JPEG coefficient magnitude out of range");
    return extendBits(this.bits(s), s);
  }

  decode(h: Huffman): number {
    if (this.cnt < 16) this.fill();
    const e = h.look[(this.acc >>> (this.cnt - LOOK_BITS)) & ((1 << LOOK_BITS) - 1)] ?? 0;
    if (e !== 0) {
      this.cnt -= e >> 8;
      return e & 255;
    }
    return this.decodeLong(h);
  }

  /** Codes longer than LOOK_BITS (the caller has made cnt >= 16). */
  private decodeLong(h: Huffman): number {
    for (let l = LOOK_BITS + 1; l <= 16; l++) {
      const code = (this.acc >>> (this.cnt - l)) & ((1 << l) - 1);
      if (code <= (h.maxcode[l] ?? -1)) {
        this.cnt -= l;
        return h.vals[(h.valptr[l] ?? 0) + code - (h.mincode[l] ?? 0)] ?? 0;
      }
    }
    throw invalid("JPEG scan data contains an invalid Huffman code");
  }

  /**
   * Huffman-decodes one sequential-mode block of `c` and dequantises it into
   * `blk` (natural order; must be all zero on entry). Returns the block's L1
   * norm (sum of |dequantised coefficient|), which tells the IDCT whether its
   * 32-bit path is exact (see exactL1). Same bit consumption, refill points
   * and errors as decode() + extend() per symbol; this is just the hot loop
   * with the reader state in locals and the fast-AC table in front.
   */
  baselineBlock(c: Component, blk: Int32Array): number {
    const d = this.d;
    const q = c.qt as Int32Array;
    let acc = this.acc;
    let cnt = this.cnt;
    let pos = this.pos;
    let ff = this.ff;
    // Refill as fill() does (same bytes, same points), plain bytes inline.
    // `cnt < 16` before every symbol, as decode() does.
    if (cnt < 16) {
      while (cnt <= 24 && pos < ff) {
        acc = (acc << 8) | (d[pos++] ?? 0);
        cnt += 8;
      }
      if (cnt <= 24) {
        this.acc = acc;
        this.cnt = cnt;
        this.pos = pos;
        this.fill();
        acc = this.acc;
        cnt = this.cnt;
        pos = this.pos;
        ff = this.ff;
      }
    }
    // DC: code, then its magnitude bits (extend()).
    const dcTab = c.dc as Huffman;
    let t = dcTab.look[(acc >>> (cnt - LOOK_BITS)) & ((1 << LOOK_BITS) - 1)] ?? 0;
    if (t !== 0) {
      cnt -= t >> 8;
      t &= 255;
    } else {
      this.acc = acc;
      this.cnt = cnt;
      t = this.decodeLong(dcTab);
      cnt = this.cnt;
    }
    if (t !== 0) {
      if (t > 16) throw invalid("JPEG coefficient magnitude out of range");
      if (cnt < t) {
        while (cnt <= 24 && pos < ff) {
          acc = (acc << 8) | (d[pos++] ?? 0);
          cnt += 8;
        }
        if (cnt <= 24) {
          this.acc = acc;
          this.cnt = cnt;
          this.pos = pos;
          this.fill();
          acc = this.acc;
          cnt = this.cnt;
          pos = this.pos;
          ff = this.ff;
        }
      }
      cnt -= t;
      // t may be 16: take the bits as an unsigned 32-bit value before masking.
      const bits = (acc >>> cnt) & ((1 << t) - 1);
      c.pred += extendBits(bits, t);
    }
    // The coefficient store was an Int16Array: keep its wrap-around for the
    // (only hostile) DC predictions outside int16. AC values never exceed it.
    const dc = ((c.pred << 16) >> 16) * (q[0] ?? 0);
    blk[0] = dc;
    let l1 = Math.abs(dc);
    let last = 0;
    const ac = c.ac as Huffman;
    const look = ac.look;
    const fast = ac.fast as Int32Array;
    for (let k = 1; k < 64; ) {
      if (cnt < 16) {
        while (cnt <= 24 && pos < ff) {
          acc = (acc << 8) | (d[pos++] ?? 0);
          cnt += 8;
        }
        if (cnt <= 24) {
          this.acc = acc;
          this.cnt = cnt;
          this.pos = pos;
          this.fill();
          acc = this.acc;
          cnt = this.cnt;
          pos = this.pos;
          ff = this.ff;
        }
      }
      const f = fast[(acc >>> (cnt - FAST_BITS)) & ((1 << FAST_BITS) - 1)] ?? 0;
      if (f !== 0) {
        cnt -= f & 15;
        k += (f >> 4) & 127;
        if (k > 63) break;
        const z = ZIGZAG[k] ?? 0;
        const v = (f >> 12) * (q[z] ?? 0);
        blk[z] = v;
        l1 += Math.abs(v);
        last = k++;
        continue;
      }
      let rs = look[(acc >>> (cnt - LOOK_BITS)) & ((1 << LOOK_BITS) - 1)] ?? 0;
      if (rs !== 0) {
        cnt -= rs >> 8;
        rs &= 255;
      } else {
        this.acc = acc;
        this.cnt = cnt;
        rs = this.decodeLong(ac);
        cnt = this.cnt;
      }
      const s = rs & 15;
      if (s === 0) {
        if (rs !== 0xf0) break; // EOB
        k += 16; // ZRL
        continue;
      }
      k += rs >> 4;
      if (cnt < s) {
        while (cnt <= 24 && pos < ff) {
          acc = (acc << 8) | (d[pos++] ?? 0);
          cnt += 8;
        }
        if (cnt <= 24) {
          this.acc = acc;
          this.cnt = cnt;
          this.pos = pos;
          this.fill();
          acc = this.acc;
          cnt = this.cnt;
          pos = this.pos;
          ff = this.ff;
        }
      }
      cnt -= s;
      const bits = (acc >>> cnt) & ((1 << s) - 1);
      if (k > 63) break;
      const z = ZIGZAG[k] ?? 0;
      const v = extendBits(bits, s) * (q[z] ?? 0);
      blk[z] = v;
      l1 += Math.abs(v);
      last = k++;
    }
    this.acc = acc;
    this.cnt = cnt;
    this.pos = pos;
    this.last = last;
    return l1;
  }

  /**
   * One block of a progressive AC refinement scan (G.1.2.3; libjpeg's
   * decode_mcu_AC_refine) over zig-zag positions ss..se of the block at
   * `off`, with `eobrun` blocks of the band still to go in an EOB run.
   * Returns the new EOB run. `nzEnd` (per block) bounds the zig-zag index
   * of the last non-zero coefficient and is kept up to date. The correction
   * bits (one per already non-zero coefficient passed) are read inline with
   * the reader state in locals, and applied without branching on the bit or
   * the coefficient's sign: both are coin flips for the branch predictor.
   */
  refine(
    ac: Huffman,
    coefs: Int16Array,
    nzEnd: Uint8Array,
    off: number,
    ss: number,
    se: number,
    al: number,
    eobrun: number,
  ): number {
    const p1 = 1 << al;
    const m1 = -1 << al;
    let k = ss;
    let acc = this.acc;
    let cnt = this.cnt;
    if (eobrun === 0) {
      for (; k <= se; k++) {
        this.acc = acc;
        this.cnt = cnt;
        const rs = this.decode(ac);
        let run = rs >> 4;
        let s = rs & 15;
        if (s) {
          // s must be 1 in a refinement scan; libjpeg warns and carries on.
          s = this.bit() ? p1 : m1;
        } else if (run !== 15) {
          eobrun = (1 << run) + this.bits(run);
          acc = this.acc;
          cnt = this.cnt;
          break;
        }
        acc = this.acc;
        cnt = this.cnt;
        do {
          const z = off + (ZIGZAG[k] ?? 0);
          const cur = coefs[z] ?? 0;
          if (cur !== 0) {
            if (cnt < 1) {
              this.acc = acc;
              this.cnt = cnt;
              this.fill();
              acc = this.acc;
              cnt = this.cnt;
            }
            cnt--;
            // bit set and p1 not yet set: move |cur| up by p1.
            const apply = (acc >>> cnt) & 1 & ~(cur >> al);
            const sign = cur >> 31;
            coefs[z] = cur + apply * ((p1 ^ sign) - sign);
          } else {
            if (--run < 0) break;
          }
          k++;
        } while (k <= se);
        if (s && k <= 63) {
          coefs[off + (ZIGZAG[k] ?? 0)] = s;
          if (k > (nzEnd[off >> 6] ?? 0)) nzEnd[off >> 6] = k;
        }
      }
    }
    if (eobrun > 0) {
      // Inside an EOB run (most blocks of a refinement scan): only correction
      // bits, one per non-zero coefficient, and none past the block's last
      // non-zero coefficient.
      const end = Math.min(se, nzEnd[off >> 6] ?? 63);
      for (; k <= end; k++) {
        const z = off + (ZIGZAG[k] ?? 0);
        const cur = coefs[z] ?? 0;
        if (cur !== 0) {
          if (cnt < 1) {
            this.acc = acc;
            this.cnt = cnt;
            this.fill();
            acc = this.acc;
            cnt = this.cnt;
          }
          cnt--;
          const apply = (acc >>> cnt) & 1 & ~(cur >> al);
          const sign = cur >> 31;
          coefs[z] = cur + apply * ((p1 ^ sign) - sign);
        }
      }
      eobrun--;
    }
    this.acc = acc;
    this.cnt = cnt;
    return eobrun;
  }

  overrun(): boolean {
    return this.cnt < this.fake;
  }

  checkOverrun(): void {
    if (this.cnt < this.fake) throw invalid("JPEG scan data ends early (truncated or corrupt)");
  }

  /** Drops buffered (padding) bits and consumes the next RSTn marker. */
  restart(): void {
    this.acc = 0;
    this.cnt = 0;
    this.fake = 0;
    this.atMarker = false;
    const d = this.d;
    let p = this.pos;
    while (p + 1 < d.length && !(d[p] === 0xff && d[p + 1] !== 0 && d[p + 1] !== 0xff)) p++;
    if (p + 1 >= d.length) throw invalid("JPEG is truncated inside a restart interval");
    const m = d[p + 1] ?? 0;
    if (m < 0xd0 || m > 0xd7) throw invalid("JPEG restart marker missing (truncated or corrupt scan)");
    this.pos = p + 2;
    this.ff = nextFF(d, this.pos);
  }

  /** Offset of the first marker after the scan data that is not RSTn. */
  endOfScan(): number {
    const d = this.d;
    let p = this.pos;
    while (p + 1 < d.length) {
      if (d[p] === 0xff) {
        const n = d[p + 1] ?? 0;
        if (n !== 0 && n !== 0xff && !(n >= 0xd0 && n <= 0xd7)) return p;
      }
      p++;
    }
    throw invalid("JPEG is truncated: no end-of-image marker (scan data ends early)");
  }
}

/**
 * JPEG EXTEND of the s-bit magnitude `bits` (s in 1..16), branch-free like
 * libjpeg-turbo's HUFF_EXTEND: a sign test on coefficient values is a coin
 * flip for the branch predictor.
 */
const extendBits = (bits: number, s: number): number => bits + (((bits - (1 << (s - 1))) >> 31) & ((-1 << s) + 1));

function nextFF(d: Uint8Array, pos: number): number {
  const i = d.indexOf(0xff, pos);
  return i < 0 ? d.length : i;
}

// ------------------------------------------------------------- IDCTs ----
//
// Ports of libjpeg-turbo's jidctint.c (islow) and jidctred.c. Input is one
// block of dequantised coefficients (coefficient * quant value, which always
// fits int32) in natural order. Two implementations of each size:
//  - *Exact (float64): the reference semantics. The C code uses 64-bit JLONG
//    intermediates; JS numbers are exact doubles, so every DESCALE is a floor
//    division by a power of two. Pass-1 results go through the Int32Array
//    workspace (wrapping there, as they always have, only for crafted input).
//  - *Int (int32, below): the same operations with `>>` DESCALEs, used when
//    the block's L1 norm proves they give identical results (EXACT_L1).
// Output is range-limited to 0..255 (libjpeg masks into a clamping table;
// identical for any coefficients a real encoder produces).

const CONST_BITS = 13;
const PASS1_BITS = 2;
const ws = new Int32Array(64);

const descale = (x: number, n: number): number => Math.floor((x + 2 ** (n - 1)) / 2 ** n);
const clampSample = (v: number): number => (v < -128 ? 0 : v > 127 ? 255 : v + 128);

type Idct = (b: Int32Array, out: Uint8Array, oo: number, stride: number) => void;

const idct8Exact: Idct = (b, out, oo, stride) => {
  for (let i = 0; i < 8; i++) {
    const c1 = b[8 + i] ?? 0;
    const c2 = b[16 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    const c4 = b[32 + i] ?? 0;
    const c5 = b[40 + i] ?? 0;
    const c6 = b[48 + i] ?? 0;
    const c7 = b[56 + i] ?? 0;
    if (c1 === 0 && c2 === 0 && c3 === 0 && c4 === 0 && c5 === 0 && c6 === 0 && c7 === 0) {
      const dc = (b[i] ?? 0) * 4;
      for (let r = 0; r < 8; r++) ws[r * 8 + i] = dc;
      continue;
    }
    let z2 = c2;
    let z3 = c6;
    let z1 = (z2 + z3) * 4433;
    let tmp2 = z1 + z3 * -15137;
    let tmp3 = z1 + z2 * 6270;
    z2 = b[i] ?? 0;
    z3 = c4;
    let tmp0 = (z2 + z3) * 8192;
    let tmp1 = (z2 - z3) * 8192;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    tmp0 = c7;
    tmp1 = c5;
    tmp2 = c3;
    tmp3 = c1;
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * 9633;
    tmp0 *= 2446;
    tmp1 *= 16819;
    tmp2 *= 25172;
    tmp3 *= 12299;
    z1 *= -7373;
    z2 *= -20995;
    z3 = z3 * -16069 + z5;
    z4 = z4 * -3196 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    const n = CONST_BITS - PASS1_BITS;
    ws[i] = descale(tmp10 + tmp3, n);
    ws[56 + i] = descale(tmp10 - tmp3, n);
    ws[8 + i] = descale(tmp11 + tmp2, n);
    ws[48 + i] = descale(tmp11 - tmp2, n);
    ws[16 + i] = descale(tmp12 + tmp1, n);
    ws[40 + i] = descale(tmp12 - tmp1, n);
    ws[24 + i] = descale(tmp13 + tmp0, n);
    ws[32 + i] = descale(tmp13 - tmp0, n);
  }
  const n2 = CONST_BITS + PASS1_BITS + 3;
  for (let r = 0; r < 8; r++) {
    const w = r * 8;
    const p = oo + r * stride;
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w2 = ws[w + 2] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    const w4 = ws[w + 4] ?? 0;
    const w5 = ws[w + 5] ?? 0;
    const w6 = ws[w + 6] ?? 0;
    const w7 = ws[w + 7] ?? 0;
    if (w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0 && w6 === 0 && w7 === 0) {
      const dc = clampSample(descale(w0, PASS1_BITS + 3));
      for (let x = 0; x < 8; x++) out[p + x] = dc;
      continue;
    }
    let z1 = (w2 + w6) * 4433;
    let tmp2 = z1 + w6 * -15137;
    let tmp3 = z1 + w2 * 6270;
    let tmp0 = (w0 + w4) * 8192;
    let tmp1 = (w0 - w4) * 8192;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    tmp0 = w7;
    tmp1 = w5;
    tmp2 = w3;
    tmp3 = w1;
    z1 = tmp0 + tmp3;
    let z2 = tmp1 + tmp2;
    let z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * 9633;
    tmp0 *= 2446;
    tmp1 *= 16819;
    tmp2 *= 25172;
    tmp3 *= 12299;
    z1 *= -7373;
    z2 *= -20995;
    z3 = z3 * -16069 + z5;
    z4 = z4 * -3196 + z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    out[p] = clampSample(descale(tmp10 + tmp3, n2));
    out[p + 7] = clampSample(descale(tmp10 - tmp3, n2));
    out[p + 1] = clampSample(descale(tmp11 + tmp2, n2));
    out[p + 6] = clampSample(descale(tmp11 - tmp2, n2));
    out[p + 2] = clampSample(descale(tmp12 + tmp1, n2));
    out[p + 5] = clampSample(descale(tmp12 - tmp1, n2));
    out[p + 3] = clampSample(descale(tmp13 + tmp0, n2));
    out[p + 4] = clampSample(descale(tmp13 - tmp0, n2));
  }
};

/** jidctred.c jpeg_idct_4x4 (column 4 and row 4 of the input are unused). */
const idct4Exact: Idct = (b, out, oo, stride) => {
  for (let i = 0; i < 8; i++) {
    if (i === 4) continue;
    const c1 = b[8 + i] ?? 0;
    const c2 = b[16 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    const c5 = b[40 + i] ?? 0;
    const c6 = b[48 + i] ?? 0;
    const c7 = b[56 + i] ?? 0;
    if (c1 === 0 && c2 === 0 && c3 === 0 && c5 === 0 && c6 === 0 && c7 === 0) {
      const dc = (b[i] ?? 0) * 4;
      ws[i] = dc;
      ws[8 + i] = dc;
      ws[16 + i] = dc;
      ws[24 + i] = dc;
      continue;
    }
    const tmp0 = (b[i] ?? 0) * 2 ** (CONST_BITS + 1);
    const tmp2 = c2 * 15137 + c6 * -6270;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const z1 = c7;
    const z2 = c5;
    const z3 = c3;
    const z4 = c1;
    const t0 = z1 * -1730 + z2 * 11893 + z3 * -17799 + z4 * 8697;
    const t2 = z1 * -4176 + z2 * -4926 + z3 * 7373 + z4 * 20995;
    const n = CONST_BITS - PASS1_BITS + 1;
    ws[i] = descale(tmp10 + t2, n);
    ws[24 + i] = descale(tmp10 - t2, n);
    ws[8 + i] = descale(tmp12 + t0, n);
    ws[16 + i] = descale(tmp12 - t0, n);
  }
  const n2 = CONST_BITS + PASS1_BITS + 3 + 1;
  for (let r = 0; r < 4; r++) {
    const w = r * 8;
    const p = oo + r * stride;
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w2 = ws[w + 2] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    const w5 = ws[w + 5] ?? 0;
    const w6 = ws[w + 6] ?? 0;
    const w7 = ws[w + 7] ?? 0;
    if (w1 === 0 && w2 === 0 && w3 === 0 && w5 === 0 && w6 === 0 && w7 === 0) {
      const dc = clampSample(descale(w0, PASS1_BITS + 3));
      out[p] = dc;
      out[p + 1] = dc;
      out[p + 2] = dc;
      out[p + 3] = dc;
      continue;
    }
    const tmp0 = w0 * 2 ** (CONST_BITS + 1);
    const tmp2 = w2 * 15137 + w6 * -6270;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const t0 = w7 * -1730 + w5 * 11893 + w3 * -17799 + w1 * 8697;
    const t2 = w7 * -4176 + w5 * -4926 + w3 * 7373 + w1 * 20995;
    out[p] = clampSample(descale(tmp10 + t2, n2));
    out[p + 3] = clampSample(descale(tmp10 - t2, n2));
    out[p + 1] = clampSample(descale(tmp12 + t0, n2));
    out[p + 2] = clampSample(descale(tmp12 - t0, n2));
  }
};

/** jidctred.c jpeg_idct_2x2 (only odd terms and DC contribute). */
const idct2Exact: Idct = (b, out, oo, stride) => {
  for (let i = 0; i < 8; i++) {
    if (i === 2 || i === 4 || i === 6) continue;
    const c1 = b[8 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    const c5 = b[40 + i] ?? 0;
    const c7 = b[56 + i] ?? 0;
    if (c1 === 0 && c3 === 0 && c5 === 0 && c7 === 0) {
      const dc = (b[i] ?? 0) * 4;
      ws[i] = dc;
      ws[8 + i] = dc;
      continue;
    }
    const tmp10 = (b[i] ?? 0) * 2 ** (CONST_BITS + 2);
    const tmp0 = c7 * -5906 + c5 * 6967 + c3 * -10426 + c1 * 29692;
    const n = CONST_BITS - PASS1_BITS + 2;
    ws[i] = descale(tmp10 + tmp0, n);
    ws[8 + i] = descale(tmp10 - tmp0, n);
  }
  const n2 = CONST_BITS + PASS1_BITS + 3 + 2;
  for (let r = 0; r < 2; r++) {
    const w = r * 8;
    const p = oo + r * stride;
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    const w5 = ws[w + 5] ?? 0;
    const w7 = ws[w + 7] ?? 0;
    if (w1 === 0 && w3 === 0 && w5 === 0 && w7 === 0) {
      const dc = clampSample(descale(w0, PASS1_BITS + 3));
      out[p] = dc;
      out[p + 1] = dc;
      continue;
    }
    const tmp10 = w0 * 2 ** (CONST_BITS + 2);
    const tmp0 = w7 * -5906 + w5 * 6967 + w3 * -10426 + w1 * 29692;
    out[p] = clampSample(descale(tmp10 + tmp0, n2));
    out[p + 1] = clampSample(descale(tmp10 - tmp0, n2));
  }
};

/** jidctred.c jpeg_idct_1x1: the DC term. */
const idct1Exact: Idct = (b, out, oo) => {
  out[oo] = clampSample(descale(b[0] ?? 0, 3));
};

const IDCTS_EXACT: Record<number, Idct> = { 8: idct8Exact, 4: idct4Exact, 2: idct2Exact, 1: idct1Exact };

// 32-bit versions of the same IDCTs: identical operations, but DESCALE is
// `(x + half) >> n` and the +128 level shift is folded into the rounding
// constant of pass 2 (adding a multiple of 2^n before the shift is the same
// as adding 128 after it), with the 0..255 clamp done by a Uint8ClampedArray
// store. V8 keeps all of it in int32 registers, which is several times faster
// than the float64 floor divisions above. The result is identical whenever
// every value that reaches a `>>` lies inside int32. With g the largest
// |coefficient| that any input has in any output of one 1-D pass (11363 for
// islow: FIX(1.387..); 20995 for 4x4; 32768 = 2^15 for 2x2) and S the block's
// L1 norm (sum of |dequantised coefficient|):
//   pass 1:  |sum| <= g * S                         (tiny next to 2^31)
//            |ws|  <= g * S_col / 2^n1 + 1, so a row's sum |ws| <= g*S/2^n1 + 8
//   pass 2:  |sum + rounding + 128 << n2| <= g * (g*S/2^n1 + 8) + 2^(n2-1) + 2^(n2+7)
// and exactL1 is the largest S keeping that below 2^31. Real image blocks
// stay far below it (S is a few thousand at most; the limits are 15-33k);
// blocks above it, which only crafted files produce, take the float64 path.
const exactL1 = (g: number, n1: number, n2: number): number =>
  Math.floor(((2 ** 31 - 1 - 2 ** (n2 - 1) - 2 ** (n2 + 7) - 8 * g) * 2 ** n1) / (g * g));
const EXACT_L1: Record<number, number> = {
  8: exactL1(11363, CONST_BITS - PASS1_BITS, CONST_BITS + PASS1_BITS + 3),
  4: exactL1(20995, CONST_BITS - PASS1_BITS + 1, CONST_BITS + PASS1_BITS + 4),
  2: exactL1(32768, CONST_BITS - PASS1_BITS + 2, CONST_BITS + PASS1_BITS + 5),
  // 1x1 is (dc + 4) >> 3: any int32 dequantised DC (|dc| <= 32768 * 65535) is exact.
  1: Number.POSITIVE_INFINITY,
};

/**
 * Natural-order coefficient positions each IDCT size reads, DC first: 4x4
 * ignores row and column 4, 2x2 reads rows and columns 0, 1, 3, 5, 7 only,
 * 1x1 the DC alone.
 */
const USED_COEFS: Record<number, Uint8Array> = (() => {
  const pick = (keep: number[]): Uint8Array =>
    Uint8Array.from(
      Array.from({ length: 64 }, (_, k) => k).filter((k) => keep.includes(k >> 3) && keep.includes(k & 7)),
    );
  return {
    8: pick([0, 1, 2, 3, 4, 5, 6, 7]),
    4: pick([0, 1, 2, 3, 5, 6, 7]),
    2: pick([0, 1, 3, 5, 7]),
    1: Uint8Array.of(0),
  };
})();

/** jidctint.c jpeg_idct_islow, 32-bit (see above). `b` is dequantised, natural order. */
function idct8Int(b: Int32Array, out: Uint8ClampedArray, oo: number, stride: number): void {
  for (let i = 0; i < 8; i++) {
    const c1 = b[8 + i] ?? 0;
    const c2 = b[16 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    const c4 = b[32 + i] ?? 0;
    const c5 = b[40 + i] ?? 0;
    const c6 = b[48 + i] ?? 0;
    const c7 = b[56 + i] ?? 0;
    if ((c1 | c2 | c3 | c4 | c5 | c6 | c7) === 0) {
      // AC-free column: every output is DESCALE(dc << CONST_BITS, CONST_BITS - PASS1_BITS) = dc << PASS1_BITS.
      const dc = (b[i] ?? 0) * 4;
      ws[i] = dc;
      ws[8 + i] = dc;
      ws[16 + i] = dc;
      ws[24 + i] = dc;
      ws[32 + i] = dc;
      ws[40 + i] = dc;
      ws[48 + i] = dc;
      ws[56 + i] = dc;
      continue;
    }
    let z1 = (c2 + c6) * 4433;
    let tmp2 = z1 + c6 * -15137;
    let tmp3 = z1 + c2 * 6270;
    const c0 = b[i] ?? 0;
    let tmp0 = (c0 + c4) * 8192;
    let tmp1 = (c0 - c4) * 8192;
    const tmp10 = tmp0 + tmp3;
    const tmp13 = tmp0 - tmp3;
    const tmp11 = tmp1 + tmp2;
    const tmp12 = tmp1 - tmp2;
    z1 = c7 + c1;
    let z2 = c5 + c3;
    let z3 = c7 + c3;
    let z4 = c5 + c1;
    const z5 = (z3 + z4) * 9633;
    z1 *= -7373;
    z2 *= -20995;
    z3 = z3 * -16069 + z5;
    z4 = z4 * -3196 + z5;
    tmp0 = c7 * 2446 + z1 + z3;
    tmp1 = c5 * 16819 + z2 + z4;
    tmp2 = c3 * 25172 + z2 + z3;
    tmp3 = c1 * 12299 + z1 + z4;
    ws[i] = (tmp10 + tmp3 + 1024) >> 11;
    ws[56 + i] = (tmp10 - tmp3 + 1024) >> 11;
    ws[8 + i] = (tmp11 + tmp2 + 1024) >> 11;
    ws[48 + i] = (tmp11 - tmp2 + 1024) >> 11;
    ws[16 + i] = (tmp12 + tmp1 + 1024) >> 11;
    ws[40 + i] = (tmp12 - tmp1 + 1024) >> 11;
    ws[24 + i] = (tmp13 + tmp0 + 1024) >> 11;
    ws[32 + i] = (tmp13 - tmp0 + 1024) >> 11;
  }
  // Pass-2 rounding (2^17) plus the level shift (128 << 18).
  const R = (1 << 17) + (128 << 18);
  for (let r = 0, w = 0, p = oo; r < 8; r++, w += 8, p += stride) {
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w2 = ws[w + 2] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    const w4 = ws[w + 4] ?? 0;
    const w5 = ws[w + 5] ?? 0;
    const w6 = ws[w + 6] ?? 0;
    const w7 = ws[w + 7] ?? 0;
    if ((w1 | w2 | w3 | w4 | w5 | w6 | w7) === 0) {
      const dc = ((w0 + 16) >> 5) + 128;
      out[p] = dc;
      out[p + 1] = dc;
      out[p + 2] = dc;
      out[p + 3] = dc;
      out[p + 4] = dc;
      out[p + 5] = dc;
      out[p + 6] = dc;
      out[p + 7] = dc;
      continue;
    }
    let z1 = (w2 + w6) * 4433;
    let tmp2 = z1 + w6 * -15137;
    let tmp3 = z1 + w2 * 6270;
    let tmp0 = (w0 + w4) * 8192;
    let tmp1 = (w0 - w4) * 8192;
    const tmp10 = tmp0 + tmp3 + R;
    const tmp13 = tmp0 - tmp3 + R;
    const tmp11 = tmp1 + tmp2 + R;
    const tmp12 = tmp1 - tmp2 + R;
    z1 = w7 + w1;
    let z2 = w5 + w3;
    let z3 = w7 + w3;
    let z4 = w5 + w1;
    const z5 = (z3 + z4) * 9633;
    z1 *= -7373;
    z2 *= -20995;
    z3 = z3 * -16069 + z5;
    z4 = z4 * -3196 + z5;
    tmp0 = w7 * 2446 + z1 + z3;
    tmp1 = w5 * 16819 + z2 + z4;
    tmp2 = w3 * 25172 + z2 + z3;
    tmp3 = w1 * 12299 + z1 + z4;
    out[p] = (tmp10 + tmp3) >> 18;
    out[p + 7] = (tmp10 - tmp3) >> 18;
    out[p + 1] = (tmp11 + tmp2) >> 18;
    out[p + 6] = (tmp11 - tmp2) >> 18;
    out[p + 2] = (tmp12 + tmp1) >> 18;
    out[p + 5] = (tmp12 - tmp1) >> 18;
    out[p + 3] = (tmp13 + tmp0) >> 18;
    out[p + 4] = (tmp13 - tmp0) >> 18;
  }
}

/**
 * idct8Int for a block whose non-zero coefficients all lie in the top-left
 * 4x4 (zig-zag index <= 9; common in smooth areas and at lower qualities):
 * the same arithmetic with the terms of the known-zero inputs dropped, and
 * pass 1 only over the four columns that can be non-zero.
 */
function idct8Int4x4(b: Int32Array, out: Uint8ClampedArray, oo: number, stride: number): void {
  for (let i = 0; i < 4; i++) {
    const c1 = b[8 + i] ?? 0;
    const c2 = b[16 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    if ((c1 | c2 | c3) === 0) {
      const dc = (b[i] ?? 0) * 4;
      ws[i] = dc;
      ws[8 + i] = dc;
      ws[16 + i] = dc;
      ws[24 + i] = dc;
      ws[32 + i] = dc;
      ws[40 + i] = dc;
      ws[48 + i] = dc;
      ws[56 + i] = dc;
      continue;
    }
    const z = c2 * 4433;
    const tmp3e = z + c2 * 6270;
    const tmp0e = (b[i] ?? 0) * 8192;
    const tmp10 = tmp0e + tmp3e;
    const tmp13 = tmp0e - tmp3e;
    const tmp11 = tmp0e + z;
    const tmp12 = tmp0e - z;
    const z5 = (c3 + c1) * 9633;
    const z1 = c1 * -7373;
    const z2 = c3 * -20995;
    const z3 = c3 * -16069 + z5;
    const z4 = c1 * -3196 + z5;
    const tmp0 = z1 + z3;
    const tmp1 = z2 + z4;
    const tmp2 = c3 * 25172 + z2 + z3;
    const tmp3 = c1 * 12299 + z1 + z4;
    ws[i] = (tmp10 + tmp3 + 1024) >> 11;
    ws[56 + i] = (tmp10 - tmp3 + 1024) >> 11;
    ws[8 + i] = (tmp11 + tmp2 + 1024) >> 11;
    ws[48 + i] = (tmp11 - tmp2 + 1024) >> 11;
    ws[16 + i] = (tmp12 + tmp1 + 1024) >> 11;
    ws[40 + i] = (tmp12 - tmp1 + 1024) >> 11;
    ws[24 + i] = (tmp13 + tmp0 + 1024) >> 11;
    ws[32 + i] = (tmp13 - tmp0 + 1024) >> 11;
  }
  // Columns 4..7 of the workspace are all zero (never written here).
  const R = (1 << 17) + (128 << 18);
  for (let r = 0, w = 0, p = oo; r < 8; r++, w += 8, p += stride) {
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w2 = ws[w + 2] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    if ((w1 | w2 | w3) === 0) {
      const dc = ((w0 + 16) >> 5) + 128;
      out[p] = dc;
      out[p + 1] = dc;
      out[p + 2] = dc;
      out[p + 3] = dc;
      out[p + 4] = dc;
      out[p + 5] = dc;
      out[p + 6] = dc;
      out[p + 7] = dc;
      continue;
    }
    const z = w2 * 4433;
    const tmp3e = z + w2 * 6270;
    const tmp0e = w0 * 8192 + R;
    const tmp10 = tmp0e + tmp3e;
    const tmp13 = tmp0e - tmp3e;
    const tmp11 = tmp0e + z;
    const tmp12 = tmp0e - z;
    const z5 = (w3 + w1) * 9633;
    const z1 = w1 * -7373;
    const z2 = w3 * -20995;
    const z3 = w3 * -16069 + z5;
    const z4 = w1 * -3196 + z5;
    const tmp0 = z1 + z3;
    const tmp1 = z2 + z4;
    const tmp2 = w3 * 25172 + z2 + z3;
    const tmp3 = w1 * 12299 + z1 + z4;
    out[p] = (tmp10 + tmp3) >> 18;
    out[p + 7] = (tmp10 - tmp3) >> 18;
    out[p + 1] = (tmp11 + tmp2) >> 18;
    out[p + 6] = (tmp11 - tmp2) >> 18;
    out[p + 2] = (tmp12 + tmp1) >> 18;
    out[p + 5] = (tmp12 - tmp1) >> 18;
    out[p + 3] = (tmp13 + tmp0) >> 18;
    out[p + 4] = (tmp13 - tmp0) >> 18;
  }
}

/** jidctred.c jpeg_idct_4x4, 32-bit. */
function idct4Int(b: Int32Array, out: Uint8ClampedArray, oo: number, stride: number): void {
  for (let i = 0; i < 8; i++) {
    if (i === 4) continue;
    const c1 = b[8 + i] ?? 0;
    const c2 = b[16 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    const c5 = b[40 + i] ?? 0;
    const c6 = b[48 + i] ?? 0;
    const c7 = b[56 + i] ?? 0;
    if ((c1 | c2 | c3 | c5 | c6 | c7) === 0) {
      const dc = (b[i] ?? 0) * 4;
      ws[i] = dc;
      ws[8 + i] = dc;
      ws[16 + i] = dc;
      ws[24 + i] = dc;
      continue;
    }
    const tmp0 = (b[i] ?? 0) * 16384 + 2048; // rounding for >> 12 folded in
    const tmp2 = c2 * 15137 + c6 * -6270;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const t0 = c7 * -1730 + c5 * 11893 + c3 * -17799 + c1 * 8697;
    const t2 = c7 * -4176 + c5 * -4926 + c3 * 7373 + c1 * 20995;
    ws[i] = (tmp10 + t2) >> 12;
    ws[24 + i] = (tmp10 - t2) >> 12;
    ws[8 + i] = (tmp12 + t0) >> 12;
    ws[16 + i] = (tmp12 - t0) >> 12;
  }
  const R = (1 << 18) + (128 << 19);
  for (let r = 0, w = 0, p = oo; r < 4; r++, w += 8, p += stride) {
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w2 = ws[w + 2] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    const w5 = ws[w + 5] ?? 0;
    const w6 = ws[w + 6] ?? 0;
    const w7 = ws[w + 7] ?? 0;
    if ((w1 | w2 | w3 | w5 | w6 | w7) === 0) {
      const dc = ((w0 + 16) >> 5) + 128;
      out[p] = dc;
      out[p + 1] = dc;
      out[p + 2] = dc;
      out[p + 3] = dc;
      continue;
    }
    const tmp0 = w0 * 16384 + R;
    const tmp2 = w2 * 15137 + w6 * -6270;
    const tmp10 = tmp0 + tmp2;
    const tmp12 = tmp0 - tmp2;
    const t0 = w7 * -1730 + w5 * 11893 + w3 * -17799 + w1 * 8697;
    const t2 = w7 * -4176 + w5 * -4926 + w3 * 7373 + w1 * 20995;
    out[p] = (tmp10 + t2) >> 19;
    out[p + 3] = (tmp10 - t2) >> 19;
    out[p + 1] = (tmp12 + t0) >> 19;
    out[p + 2] = (tmp12 - t0) >> 19;
  }
}

/** jidctred.c jpeg_idct_2x2, 32-bit. */
function idct2Int(b: Int32Array, out: Uint8ClampedArray, oo: number, stride: number): void {
  for (let i = 0; i < 8; i++) {
    if (i === 2 || i === 4 || i === 6) continue;
    const c1 = b[8 + i] ?? 0;
    const c3 = b[24 + i] ?? 0;
    const c5 = b[40 + i] ?? 0;
    const c7 = b[56 + i] ?? 0;
    if ((c1 | c3 | c5 | c7) === 0) {
      const dc = (b[i] ?? 0) * 4;
      ws[i] = dc;
      ws[8 + i] = dc;
      continue;
    }
    const tmp10 = (b[i] ?? 0) * 32768 + 4096;
    const tmp0 = c7 * -5906 + c5 * 6967 + c3 * -10426 + c1 * 29692;
    ws[i] = (tmp10 + tmp0) >> 13;
    ws[8 + i] = (tmp10 - tmp0) >> 13;
  }
  const R = (1 << 19) + (128 << 20);
  for (let r = 0, w = 0, p = oo; r < 2; r++, w += 8, p += stride) {
    const w0 = ws[w] ?? 0;
    const w1 = ws[w + 1] ?? 0;
    const w3 = ws[w + 3] ?? 0;
    const w5 = ws[w + 5] ?? 0;
    const w7 = ws[w + 7] ?? 0;
    if ((w1 | w3 | w5 | w7) === 0) {
      const dc = ((w0 + 16) >> 5) + 128;
      out[p] = dc;
      out[p + 1] = dc;
      continue;
    }
    const tmp10 = w0 * 32768 + R;
    const tmp0 = w7 * -5906 + w5 * 6967 + w3 * -10426 + w1 * 29692;
    out[p] = (tmp10 + tmp0) >> 20;
    out[p + 1] = (tmp10 - tmp0) >> 20;
  }
}

// ------------------------------------------------------------ structure ----

interface Component {
  id: number;
  h: number;
  v: number;
  tq: number;
  /** Quant table latched at the component's first scan (natural order). */
  qt?: Int32Array;
  /** Blocks per line / column, padded to whole MCUs. */
  bw: number;
  bh: number;
  /** Blocks that actually carry image data (non-interleaved scan extent). */
  cbw: number;
  cbh: number;
  coefs?: Int16Array;
  /**
   * Progressive only, per block: no coefficient past this zig-zag index is
   * non-zero (an upper bound kept by the AC scans), so refinement passes can
   * stop there.
   */
  nzEnd?: Uint8Array;
  pred: number;
  dc?: Huffman;
  ac?: Huffman;
}

interface Frame {
  progressive: boolean;
  width: number;
  height: number;
  comps: Component[];
  maxH: number;
  maxV: number;
  mcusX: number;
  mcusY: number;
}

interface Scan {
  comps: Component[];
  ss: number;
  se: number;
  ah: number;
  al: number;
}

const be16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);

function match(bytes: Uint8Array, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

// -------------------------------------------------------------- decoder ----

export function decodeJpegScaled(
  bytes: Uint8Array,
  opts: ScaledDecodeOptions,
): DecodedImage & { scaleDenom: ScaleDenom } {
  return decodeJpegAtScale(
    bytes,
    (w, h) => chooseScaleDenom(w, h, opts.minShortSide),
    opts.maxPixels,
    opts.maxCoefficientBytes,
    opts.maxScans,
    opts.region,
  );
}

/**
 * Decodes at a fixed 1/`denom` scale (or one picked from the stored size by a
 * callback). Same checks and output contract as `decodeJpegScaled`.
 */
export function decodeJpegAtScale(
  bytes: Uint8Array,
  denom: ScaleDenom | ((width: number, height: number) => ScaleDenom),
  maxPixels: number = DEFAULT_MAX_PIXELS,
  maxCoefficientBytes: number = Number.POSITIVE_INFINITY,
  maxScans: number = LIMITS.maxJpegScans,
  region?: RegionFor,
): DecodedImage & { scaleDenom: ScaleDenom } {
  const info = probeImage(bytes); // 415 for non-JPEG / unsupported SOF / 12-bit / CMYK without Adobe
  if (info.format !== "jpeg") throw unsupported("not a JPEG");
  if (info.width === 0 || info.height === 0)
    throw invalid(`JPEG declares an empty image (${info.width}x${info.height})`);
  if (info.width * info.height > maxPixels) {
    throw new ApiError("image_too_large", `image is ${info.width}x${info.height}; the limit is ${maxPixels} pixels`);
  }
  const d = typeof denom === "function" ? denom(info.width, info.height) : denom;
  if (d !== 1 && d !== 2 && d !== 4 && d !== 8) throw new RangeError(`scale denominator must be 1, 2, 4 or 8`);
  const dec = new Decoder(bytes, d, maxCoefficientBytes, maxScans, region);
  const data = dec.run();
  if (dec.outW !== Math.ceil(info.width / d) || dec.outH !== Math.ceil(info.height / d)) {
    throw invalid("JPEG frame header disagrees with the probed size");
  }
  const r = dec.region;
  const whole = r.x0 === 0 && r.y0 === 0 && r.x1 === dec.outW && r.y1 === dec.outH;
  return { ...info, width: dec.outW, height: dec.outH, data, scaleDenom: d, ...(whole ? {} : { region: r }) };
}

class Decoder {
  private frame?: Frame;
  private readonly qts: (Int32Array | undefined)[] = [];
  private readonly dcTables: (HuffmanSpec | undefined)[] = [];
  private readonly acTables: (HuffmanSpec | undefined)[] = [];
  private restartInterval = 0;
  private jfif = false;
  private adobeTransform: number | undefined;
  private scans = 0;
  private streamed = false;
  private eobrun = 0;
  outW = 0;
  outH = 0;
  private out?: Uint8Array;
  private output?: OutputStage;

  constructor(
    private readonly b: Uint8Array,
    private readonly denom: ScaleDenom,
    private readonly maxCoefficientBytes: number,
    private readonly maxScans: number,
    private readonly regionFor?: RegionFor,
  ) {}

  /** The output pixels actually produced (set with the output stage; all of them without a regionFor). */
  get region(): PixelRegion {
    return this.output?.region ?? { x0: 0, y0: 0, x1: this.outW, y1: this.outH };
  }

  run(): Uint8Array {
    const b = this.b;
    const len = b.length;
    if (len < 4 || b[0] !== 0xff || b[1] !== 0xd8) throw invalid("not a JPEG (no SOI marker)");
    let off = 2;
    for (;;) {
      if (off >= len) throw invalid("JPEG is truncated: no end-of-image marker");
      if (b[off] !== 0xff) throw invalid(`JPEG marker expected at offset ${off}`);
      while (off < len && b[off] === 0xff) off++;
      if (off >= len) throw invalid("JPEG is truncated: no end-of-image marker");
      const marker = b[off] ?? 0;
      off++;
      if (marker === 0xd9) break;
      if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
      if (marker === 0xd8 || marker === 0x00) throw invalid(`unexpected JPEG marker 0xFF${marker.toString(16)}`);
      if (off + 2 > len) throw invalid("JPEG segment header is truncated");
      const segLen = be16(b, off);
      if (segLen < 2) throw invalid(`JPEG segment has invalid length ${segLen}`);
      const end = off + segLen;
      if (end > len) throw invalid("JPEG segment is truncated");
      const p = off + 2;
      switch (marker) {
        case 0xc0:
        case 0xc1:
        case 0xc2:
          this.readFrame(p, end, marker === 0xc2);
          break;
        case 0xc4:
          this.readDht(p, end);
          break;
        case 0xdb:
          this.readDqt(p, end);
          break;
        case 0xdd:
          if (segLen < 4) throw invalid("JPEG DRI segment is truncated");
          this.restartInterval = be16(b, p);
          break;
        case 0xcc:
          throw unsupported("arithmetic-coded JPEG is not supported");
        case 0xe0:
          if (segLen >= 7 && match(b, p, "JFIF\0")) this.jfif = true;
          break;
        case 0xee:
          if (segLen >= 14 && match(b, p, "Adobe")) this.adobeTransform = b[p + 11] ?? 0;
          break;
        case 0xda: {
          off = this.readScan(p, end);
          continue;
        }
        default:
          if (marker >= 0xc3 && marker <= 0xcf) throw unsupported("this JPEG coding process is not supported");
      }
      off = end;
    }
    if (this.scans === 0 || !this.frame) throw invalid("JPEG ends before any image data");
    if (!this.streamed) this.outputFromCoefficients();
    if (!this.out) throw invalid("JPEG has no image data");
    return this.out;
  }

  private readFrame(p: number, end: number, progressive: boolean): void {
    const b = this.b;
    if (this.frame) throw invalid("JPEG has more than one frame header");
    if (end - p < 6) throw invalid("JPEG frame header is truncated");
    if (b[p] !== 8) throw unsupported(`${b[p]}-bit JPEG is not supported`);
    const height = be16(b, p + 1);
    const width = be16(b, p + 3);
    const n = b[p + 5] ?? 0;
    if (height === 0 || width === 0) throw invalid("JPEG frame declares an empty image (DNL not supported)");
    if (n !== 1 && n !== 3 && n !== 4) throw unsupported(`JPEG with ${n} colour components is not supported`);
    if (end - p < 6 + 3 * n) throw invalid("JPEG frame header is truncated");
    const comps: Component[] = [];
    for (let i = 0; i < n; i++) {
      const q = p + 6 + 3 * i;
      const hv = b[q + 1] ?? 0;
      let h = hv >> 4;
      let v = hv & 15;
      const tq = b[q + 2] ?? 0;
      if (h < 1 || h > 4 || v < 1 || v > 4) throw invalid("JPEG sampling factors out of range");
      if (tq > 3) throw invalid("JPEG quantisation table selector out of range");
      const id = b[q] ?? 0;
      if (comps.some((c) => c.id === id)) throw invalid("JPEG frame repeats a component id");
      if (n === 1) h = v = 1; // single component: one block per MCU whatever is declared
      comps.push({ id, h, v, tq, bw: 0, bh: 0, cbw: 0, cbh: 0, pred: 0 });
    }
    const maxH = Math.max(...comps.map((c) => c.h));
    const maxV = Math.max(...comps.map((c) => c.v));
    const mcusX = Math.ceil(width / (8 * maxH));
    const mcusY = Math.ceil(height / (8 * maxV));
    for (const c of comps) {
      c.bw = mcusX * c.h;
      c.bh = mcusY * c.v;
      c.cbw = Math.ceil(Math.ceil((width * c.h) / maxH) / 8);
      c.cbh = Math.ceil(Math.ceil((height * c.v) / maxV) / 8);
    }
    this.frame = { progressive, width, height, comps, maxH, maxV, mcusX, mcusY };
  }

  private readDqt(p: number, end: number): void {
    const b = this.b;
    while (p < end) {
      const pq = (b[p] ?? 0) >> 4;
      const tq = (b[p] ?? 0) & 15;
      p++;
      if (pq > 1 || tq > 3) throw invalid("JPEG quantisation table header is invalid");
      const size = pq ? 128 : 64;
      if (p + size > end) throw invalid("JPEG quantisation table is truncated");
      const t = new Int32Array(64);
      for (let k = 0; k < 64; k++) t[ZIGZAG[k] ?? 0] = pq ? be16(b, p + 2 * k) : (b[p + k] ?? 0);
      this.qts[tq] = t;
      p += size;
    }
  }

  private readDht(p: number, end: number): void {
    const b = this.b;
    while (p < end) {
      if (p + 17 > end) throw invalid("JPEG Huffman table is truncated");
      const tc = (b[p] ?? 0) >> 4;
      const th = (b[p] ?? 0) & 15;
      if (tc > 1 || th > 3) throw invalid("JPEG Huffman table header is invalid");
      const counts = b.subarray(p + 1, p + 17);
      let total = 0;
      for (let i = 0; i < 16; i++) total += counts[i] ?? 0;
      if (total > 256 || p + 17 + total > end) throw invalid("JPEG Huffman table is invalid or truncated");
      const table: HuffmanSpec = { counts, vals: b.subarray(p + 17, p + 17 + total) };
      if (tc === 0) this.dcTables[th] = table;
      else this.acTables[th] = table;
      p += 17 + total;
    }
  }

  /** Parses SOS, decodes the scan's entropy-coded data, returns the offset of the next marker. */
  private readScan(p: number, end: number): number {
    const b = this.b;
    const frame = this.frame;
    if (!frame) throw invalid("JPEG has scan data but no frame header");
    if (this.streamed) throw invalid("JPEG has scan data after a complete sequential scan");
    const ns = b[p] ?? 0;
    if (ns < 1 || ns > 4 || end - p < 4 + 2 * ns) throw invalid("JPEG scan header is invalid");
    const comps: Component[] = [];
    for (let i = 0; i < ns; i++) {
      const id = b[p + 1 + 2 * i] ?? 0;
      const sel = b[p + 2 + 2 * i] ?? 0;
      const c = frame.comps.find((x) => x.id === id);
      if (!c || comps.includes(c)) throw invalid("JPEG scan names an unknown or repeated component");
      c.dc = huffman(this.dcTables[sel >> 4], false);
      c.ac = huffman(this.acTables[sel & 15], true);
      if (!c.qt) {
        const q = this.qts[c.tq];
        if (!q) throw invalid("JPEG component uses an undefined quantisation table");
        c.qt = q;
      }
      comps.push(c);
    }
    const q = p + 1 + 2 * ns;
    const scan: Scan = {
      comps,
      ss: b[q] ?? 0,
      se: b[q + 1] ?? 0,
      ah: (b[q + 2] ?? 0) >> 4,
      al: (b[q + 2] ?? 0) & 15,
    };
    if (ns > 1 && comps.reduce((s, c) => s + c.h * c.v, 0) > 10) throw invalid("JPEG scan has too many blocks per MCU");
    const prog = frame.progressive;
    if (prog) {
      if (scan.ss > 63 || scan.se > 63 || scan.se < scan.ss || scan.al > 13 || scan.ah > 13) {
        throw invalid("JPEG progressive scan parameters are invalid");
      }
      if (scan.ss === 0 && scan.se !== 0) throw invalid("JPEG progressive scan mixes DC and AC");
      if (scan.ss > 0 && ns !== 1) throw invalid("JPEG progressive AC scan has more than one component");
    }
    for (const c of comps) {
      const needDc = !prog || (scan.ss === 0 && scan.ah === 0);
      const needAc = !prog || scan.ss > 0;
      if ((needDc && !c.dc) || (needAc && !c.ac)) throw invalid("JPEG scan uses an undefined Huffman table");
      c.pred = 0;
    }
    if (++this.scans > this.maxScans) {
      // Each progressive AC scan can cover every block with a few bytes of
      // EOB runs: 1000 such scans took ~4 s in a 68 KB file. Real encoders
      // write about 10 (libjpeg's default progression), rarely a few dozen.
      throw invalid(`JPEG has more than ${this.maxScans} scans; refused to bound decoding time`);
    }
    this.eobrun = 0;
    const reader = new BitReader(b, end);
    if (!prog && this.scans === 1 && ns === frame.comps.length) {
      this.decodeStreaming(reader, scan, frame);
      this.streamed = true;
    } else {
      this.decodeToCoefficients(reader, scan, frame);
    }
    return reader.endOfScan();
  }

  private makeOutput(frame: Frame): OutputStage {
    if (!this.output) {
      this.output = new OutputStage(frame, this.denom, this.colourMode(frame), this.regionFor);
      this.outW = this.output.outW;
      this.outH = this.output.outH;
      this.out = this.output.out;
    }
    return this.output;
  }

  private colourMode(frame: Frame): ColourMode {
    const n = frame.comps.length;
    if (n === 1) return "gray";
    if (n === 4) return this.adobeTransform ? "ycck" : "cmyk";
    if (this.jfif) return "ycc";
    if (this.adobeTransform !== undefined) return this.adobeTransform !== 0 ? "ycc" : "rgb";
    const [a, b, c] = frame.comps.map((x) => x.id);
    return a === 0x52 && b === 0x47 && c === 0x42 ? "rgb" : "ycc";
  }

  // ---- sequential, all components in one interleaved scan: streaming ----

  private decodeStreaming(r: BitReader, scan: Scan, frame: Frame): void {
    const output = this.makeOutput(frame);
    const comps = frame.comps;
    // Each block is decoded into `blk` and inverse-transformed straight into
    // its component's sample ring: no coefficient buffer, and the block is
    // still in cache for the IDCT.
    const blk = output.blk;
    const planes = scan.comps.map((c) => output.plane(comps.indexOf(c)));
    // Ring offset of each plane's block rows in the current MCU row.
    const rowOffs = planes.map((pl) => new Int32Array(pl.comp.v));
    const ri = this.restartInterval;
    let mcu = 0;
    for (let my = 0; my < frame.mcusY; my++) {
      for (let i = 0; i < planes.length; i++) {
        const pl = planes[i] as Plane;
        const offs = rowOffs[i] as Int32Array;
        // -1: a block row outside the wanted region (its blocks are decoded, not transformed).
        for (let v = 0; v < pl.comp.v; v++) {
          const brow = my * pl.comp.v + v;
          offs[v] = brow >= pl.by0 && brow < pl.by1 ? output.ringOffset(pl, brow) : -1;
        }
      }
      for (let mx = 0; mx < frame.mcusX; mx++, mcu++) {
        if (ri && mcu > 0 && mcu % ri === 0) {
          r.restart();
          for (const c of comps) c.pred = 0;
        }
        for (let i = 0; i < planes.length; i++) {
          const pl = planes[i] as Plane;
          const offs = rowOffs[i] as Int32Array;
          const c = pl.comp;
          for (let v = 0; v < c.v; v++) {
            for (let h = 0; h < c.h; h++) {
              const l1 = r.baselineBlock(c, blk);
              const last = r.last;
              const bx = mx * c.h + h;
              const off = offs[v] ?? -1;
              if (off >= 0 && bx >= pl.bx0 && bx < pl.bx1) output.idct(pl, off + bx * pl.sc, blk, l1, last);
              clearBlock(blk, last);
            }
          }
        }
        r.checkOverrun();
      }
      output.endBand(my);
    }
    output.finish();
  }

  // ---- progressive or multi-scan sequential: keep all coefficients ----

  private decodeToCoefficients(r: BitReader, scan: Scan, frame: Frame): void {
    if (!frame.comps.some((c) => c.coefs)) {
      const bytes = frame.comps.reduce((sum, c) => sum + c.bw * c.bh * 128, 0);
      if (bytes > this.maxCoefficientBytes) {
        throw new ApiError(
          "image_too_large",
          `this ${frame.width}x${frame.height} ${frame.progressive ? "progressive" : "multi-scan"} JPEG needs ${(bytes / 1048576).toFixed(0)} MiB of coefficient memory to decode; the limit is ${(this.maxCoefficientBytes / 1048576).toFixed(0)} MiB (baseline JPEGs of this size are fine)`,
        );
      }
    }
    for (const c of frame.comps) {
      if (!c.coefs) {
        c.coefs = new Int16Array(c.bw * c.bh * 64);
        c.nzEnd = new Uint8Array(c.bw * c.bh);
      }
    }
    const ri = this.restartInterval;
    // Which kind of block every block of this scan is (G.1.2).
    const kind = !frame.progressive ? 0 : scan.ss === 0 ? (scan.ah === 0 ? 1 : 2) : scan.ah === 0 ? 3 : 4;
    let mcu = 0;
    if (scan.comps.length === 1) {
      const c = scan.comps[0] as Component;
      for (let by = 0; by < c.cbh; by++) {
        for (let bx = 0; bx < c.cbw; bx++, mcu++) {
          if (ri && mcu > 0 && mcu % ri === 0) this.restart(r, frame);
          if (kind === 3 && this.eobrun > 0) {
            // Inside an EOB run of a first AC scan a block reads no bits and
            // stays as it is (and the overrun check it would repeat passed).
            this.eobrun--;
            continue;
          }
          this.storedBlock(r, kind, c, (by * c.bw + bx) * 64, scan);
          r.checkOverrun();
        }
      }
    } else {
      for (let my = 0; my < frame.mcusY; my++) {
        for (let mx = 0; mx < frame.mcusX; mx++, mcu++) {
          if (ri && mcu > 0 && mcu % ri === 0) this.restart(r, frame);
          for (const c of scan.comps) {
            for (let v = 0; v < c.v; v++) {
              for (let h = 0; h < c.h; h++) {
                this.storedBlock(r, kind, c, ((my * c.v + v) * c.bw + mx * c.h + h) * 64, scan);
              }
            }
          }
          r.checkOverrun();
        }
      }
    }
  }

  private restart(r: BitReader, frame: Frame): void {
    r.restart();
    for (const c of frame.comps) c.pred = 0;
    this.eobrun = 0;
  }

  /** Decodes one block of a coefficient-store scan; `kind` as set by decodeToCoefficients. */
  private storedBlock(r: BitReader, kind: number, c: Component, off: number, scan: Scan): void {
    const coefs = c.coefs as Int16Array;
    switch (kind) {
      case 0: // sequential
        decodeBaselineBlock(r, c, coefs, off);
        return;
      case 1: {
        // DC first
        const t = r.decode(c.dc as Huffman);
        c.pred += r.extend(t);
        coefs[off] = c.pred * (1 << scan.al);
        return;
      }
      case 2: // DC refinement
        if (r.bit()) coefs[off] = (coefs[off] ?? 0) | (1 << scan.al);
        return;
      case 3:
        this.acFirst(r, c, coefs, off, scan);
        return;
      default:
        this.eobrun = r.refine(
          c.ac as Huffman,
          coefs,
          c.nzEnd as Uint8Array,
          off,
          scan.ss,
          scan.se,
          scan.al,
          this.eobrun,
        );
    }
  }

  private acFirst(r: BitReader, c: Component, coefs: Int16Array, off: number, scan: Scan): void {
    if (this.eobrun > 0) {
      this.eobrun--;
      return;
    }
    const ac = c.ac as Huffman;
    const scale = 1 << scan.al;
    let last = 0;
    for (let k = scan.ss; k <= scan.se; ) {
      const rs = r.decode(ac);
      const s = rs & 15;
      const run = rs >> 4;
      if (s === 0) {
        if (run < 15) {
          this.eobrun = (1 << run) - 1 + r.bits(run);
          break;
        }
        k += 16;
        continue;
      }
      k += run;
      const v = r.extend(s);
      if (k > 63) break;
      coefs[off + (ZIGZAG[k] ?? 0)] = v * scale;
      last = k++;
    }
    const nzEnd = c.nzEnd as Uint8Array;
    if (last > (nzEnd[off >> 6] ?? 0)) nzEnd[off >> 6] = last;
  }

  private outputFromCoefficients(): void {
    const frame = this.frame as Frame;
    for (const c of frame.comps) {
      if (!c.coefs) throw invalid("JPEG has a component that no scan codes");
    }
    const output = this.makeOutput(frame);
    for (let my = 0; my < frame.mcusY; my++) {
      for (let i = 0; i < frame.comps.length; i++) output.idctStoredBand(output.plane(i), my);
      output.endBand(my);
    }
    output.finish();
    for (const c of frame.comps) {
      c.coefs = undefined;
      c.nzEnd = undefined;
    }
  }
}

/** Re-zeroes the entries of `blk` that a block decode wrote (zig-zag positions 0..last). */
function clearBlock(blk: Int32Array, last: number): void {
  if (last > 24) {
    blk.fill(0);
    return;
  }
  for (let k = 0; k <= last; k++) blk[ZIGZAG[k] ?? 0] = 0;
}

/** Huffman-decodes one sequential-mode block into `out` at `off` (natural order). */
function decodeBaselineBlock(r: BitReader, c: Component, out: Int16Array, off: number): void {
  const t = r.decode(c.dc as Huffman);
  c.pred += r.extend(t);
  out[off] = c.pred;
  const ac = c.ac as Huffman;
  for (let k = 1; k < 64; ) {
    const rs = r.decode(ac);
    const s = rs & 15;
    const run = rs >> 4;
    if (s === 0) {
      if (run !== 15) break;
      k += 16;
      continue;
    }
    k += run;
    const v = r.extend(s);
    if (k > 63) break;
    out[off + (ZIGZAG[k] ?? 0)] = v;
    k++;
  }
}

// -------------------------------------------------------- output stage ----

type ColourMode = "gray" | "ycc" | "rgb" | "cmyk" | "ycck";

enum Up {
  Copy,
  Replicate,
  H2V1,
  H1V2,
  H2V2,
}

interface Plane {
  comp: Component;
  /** Scaled block size for this component (1, 2, 4 or 8). */
  sc: number;
  /** Float64 IDCT for blocks whose L1 norm exceeds `exactL1` (crafted files only). */
  exact: Idct;
  exactL1: number;
  /** Only blocks that reach into the image need transforming. */
  blocksX: number;
  /** Block columns [bx0, bx1) and block rows [by0, by1) the wanted region needs transformed. */
  bx0: number;
  bx1: number;
  by0: number;
  by1: number;
  /** Component samples at this scale (libjpeg's downsampled_width/height). */
  dw: number;
  dh: number;
  rh: number;
  rv: number;
  mode: Up;
  stride: number;
  ringRows: number;
  ring: Uint8Array;
  /** `ring`'s memory as clamped bytes: the 32-bit IDCTs store through it. */
  ringC: Uint8ClampedArray;
  sums: Int32Array;
  row: Uint8Array;
  /** Where the current output row's samples of this component are: src[srcOff + x]. */
  src: Uint8Array;
  srcOff: number;
}

const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const fix = (x: number): number => Math.floor(x * (1 << SCALEBITS) + 0.5);
let colourTables: { crR: Int32Array; cbB: Int32Array; crG: Int32Array; cbG: Int32Array } | undefined;

/** jdcolor.c build_ycc_rgb_table. */
function tables(): NonNullable<typeof colourTables> {
  if (colourTables) return colourTables;
  const crR = new Int32Array(256);
  const cbB = new Int32Array(256);
  const crG = new Int32Array(256);
  const cbG = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    crR[i] = (fix(1.402) * x + ONE_HALF) >> SCALEBITS;
    cbB[i] = (fix(1.772) * x + ONE_HALF) >> SCALEBITS;
    crG[i] = -fix(0.71414) * x;
    cbG[i] = -fix(0.34414) * x + ONE_HALF;
  }
  colourTables = { crR, cbB, crG, cbG };
  return colourTables;
}

const clamp8 = (v: number): number => (v < 0 ? 0 : Math.min(v, 255));

/** Ring offset of component row `cy`, clamped to the component's rows (jdsample.c edge replication). */
const ringRow = (pl: Plane, cy: number): number =>
  ((cy < 0 ? 0 : cy >= pl.dh ? pl.dh - 1 : cy) % pl.ringRows) * pl.stride;

/**
 * Receives one MCU row ("band") of blocks at a time, IDCTs them at the output
 * scale into a 3-band ring per component, and emits the output rows of the
 * previous band (fancy upsampling needs one component row of context on each
 * side, so band r is emitted once band r+1 is in the ring).
 */
class OutputStage {
  readonly outW: number;
  readonly outH: number;
  readonly out: Uint8Array;
  /** `out`'s memory as clamped bytes: colour conversion stores through it (libjpeg's range_limit). */
  private readonly outC: Uint8ClampedArray;
  /** Decode buffer for the streaming path; all zero between blocks. */
  readonly blk = new Int32Array(64);
  /** Dequantisation buffer for stored coefficients. */
  private readonly stored = new Int32Array(64);
  private readonly planes: Plane[];
  private readonly bandRows: number;
  /** 4:2:0-style YCbCr at this scale: fused fancy upsampling + colour conversion. */
  private readonly fusedH2V2: boolean;
  private emitted = 0;
  private lastBand = -1;
  /** The output pixels produced (clamped to the image; the whole image without a regionFor). */
  readonly region: PixelRegion;

  constructor(
    frame: Frame,
    denom: ScaleDenom,
    private readonly mode: ColourMode,
    regionFor?: RegionFor,
  ) {
    const { width, height, maxH, maxV } = frame;
    const S = 8 / denom;
    this.outW = Math.ceil(width / denom);
    this.outH = Math.ceil(height / denom);
    this.region = clampRegion(regionFor?.(this.outW, this.outH), this.outW, this.outH);
    const { x0, x1, y0, y1 } = this.region;
    this.bandRows = maxV * S;
    const fancy = S > 1;
    this.planes = frame.comps.map((comp): Plane => {
      // jdmaster.c: enlarge a subsampled component's IDCT while that keeps
      // its sample grid an integral fraction of the output grid.
      let sc = S;
      while (sc < 8 && (maxH * S) % (comp.h * sc * 2) === 0 && (maxV * S) % (comp.v * sc * 2) === 0) sc *= 2;
      if ((maxH * S) % (comp.h * sc) !== 0 || (maxV * S) % (comp.v * sc) !== 0) {
        throw unsupported("JPEG with fractional chroma sampling ratios is not supported");
      }
      const rh = (maxH * S) / (comp.h * sc);
      const rv = (maxV * S) / (comp.v * sc);
      const dw = Math.ceil((width * comp.h * sc) / (maxH * 8));
      const dh = Math.ceil((height * comp.v * sc) / (maxV * 8));
      let mode = Up.Replicate;
      if (rh === 1 && rv === 1) mode = Up.Copy;
      else if (rh === 2 && rv === 1 && fancy && dw > 2) mode = Up.H2V1;
      else if (rh === 1 && rv === 2 && fancy) mode = Up.H1V2;
      else if (rh === 2 && rv === 2 && fancy && dw > 2) mode = Up.H2V2;
      const stride = comp.bw * sc;
      const ringRows = 3 * comp.v * sc;
      const ring = new Uint8Array(stride * ringRows);
      const blocksX = Math.min(comp.bw, Math.ceil(dw / sc) + 1);
      // The component samples the region's pixels come from, with one sample
      // of context each side (fancy upsampling blends a sample with its
      // neighbours; the other modes need less), in blocks of sc samples.
      const cx0 = Math.max(0, Math.floor(x0 / rh) - 1);
      const cx1 = Math.min(dw - 1, Math.floor((x1 - 1) / rh) + 1);
      const cy0 = Math.max(0, Math.floor(y0 / rv) - 1);
      const cy1 = Math.min(dh - 1, Math.floor((y1 - 1) / rv) + 1);
      return {
        comp,
        sc,
        exact: IDCTS_EXACT[sc] as Idct,
        exactL1: EXACT_L1[sc] ?? 0,
        blocksX,
        bx0: Math.floor(cx0 / sc),
        bx1: Math.min(blocksX, Math.floor(cx1 / sc) + 1),
        by0: Math.floor(cy0 / sc),
        by1: Math.floor(cy1 / sc) + 1,
        dw,
        dh,
        rh,
        rv,
        mode,
        stride,
        ringRows,
        ring,
        ringC: new Uint8ClampedArray(ring.buffer, ring.byteOffset, ring.length),
        sums: new Int32Array(mode === Up.H2V2 ? dw : 0),
        row: new Uint8Array(this.outW),
        src: ring,
        srcOff: 0,
      };
    });
    this.out = new Uint8Array(this.outW * this.outH * 3);
    this.outC = new Uint8ClampedArray(this.out.buffer, this.out.byteOffset, this.out.length);
    const [p0, p1, p2] = this.planes;
    this.fusedH2V2 =
      mode === "ycc" &&
      p0 !== undefined &&
      p1 !== undefined &&
      p2 !== undefined &&
      p0.mode === Up.Copy &&
      p1.mode === Up.H2V2 &&
      p2.mode === Up.H2V2 &&
      p1.dw === p2.dw &&
      p1.dh === p2.dh &&
      p1.stride === p2.stride &&
      p1.ringRows === p2.ringRows;
    // The fused path writes whole chroma columns, i.e. output column pairs:
    // widen the region to even bounds so it says exactly what was written.
    // The planes' ranges above already cover that: a pair shares its chroma
    // sample and, sample blocks being even-sized, its luma block.
    if (this.fusedH2V2) this.region = { x0: x0 & ~1, x1: Math.min(this.outW, x1 + (x1 & 1)), y0, y1 };
  }

  plane(i: number): Plane {
    return this.planes[i] as Plane;
  }

  /**
   * Ring offset of the first sample row of component block row `brow`
   * (blocks of that row start at this + bx * sc).
   */
  ringOffset(pl: Plane, brow: number): number {
    return ((brow * pl.sc) % pl.ringRows) * pl.stride;
  }

  /**
   * Inverse-transforms one dequantised block (natural order) of `pl` into
   * the ring at `oo` (see ringOffset). `l1` = sum of |coefficient|; every
   * coefficient past zig-zag index `last` is zero (0: DC only).
   */
  idct(pl: Plane, oo: number, blk: Int32Array, l1: number, last: number): void {
    const sc = pl.sc;
    const stride = pl.stride;
    if (l1 > pl.exactL1) {
      pl.exact(blk, pl.ring, oo, stride);
      return;
    }
    const ring = pl.ringC;
    if (last === 0 || sc === 1) {
      // What every IDCT size computes for a DC-only block (both passes take
      // their AC-free shortcut): DESCALE(dc << PASS1_BITS, PASS1_BITS + 3).
      const v = (((blk[0] ?? 0) + 4) >> 3) + 128;
      for (let r = 0, p = oo; r < sc; r++, p += stride) {
        for (let x = 0; x < sc; x++) ring[p + x] = v;
      }
      return;
    }
    if (sc === 8) {
      if (last <= 9) idct8Int4x4(blk, ring, oo, stride);
      else idct8Int(blk, ring, oo, stride);
    } else if (sc === 4) idct4Int(blk, ring, oo, stride);
    else idct2Int(blk, ring, oo, stride);
  }

  /** IDCTs MCU row `band` of `pl` from its stored (progressive / multi-scan) coefficients. */
  idctStoredBand(pl: Plane, band: number): void {
    const c = pl.comp;
    const src = c.coefs as Int16Array;
    const q = c.qt as Int32Array;
    const blk = this.stored;
    // Only the coefficients this IDCT size reads (the rest of `blk` is stale
    // and unread); the L1 bound and the DC-only test are over those too.
    const used = USED_COEFS[pl.sc] as Uint8Array;
    const n = used.length;
    for (let v = 0; v < c.v; v++) {
      const brow = band * c.v + v;
      if (brow < pl.by0 || brow >= pl.by1) continue;
      const rowOff = this.ringOffset(pl, brow);
      for (let bx = pl.bx0; bx < pl.bx1; bx++) {
        const o = (brow * c.bw + bx) * 64;
        const dc = (src[o] ?? 0) * (q[0] ?? 0);
        blk[0] = dc;
        let l1 = Math.abs(dc);
        let ac = 0;
        for (let i = 1; i < n; i++) {
          const k = used[i] ?? 0;
          const x = (src[o + k] ?? 0) * (q[k] ?? 0);
          blk[k] = x;
          l1 += Math.abs(x);
          ac |= x;
        }
        this.idct(pl, rowOff + bx * pl.sc, blk, l1, ac === 0 ? 0 : 63);
      }
    }
  }

  /** Band `band` is complete in every ring: the band before it can be output. */
  endBand(band: number): void {
    if (band > 0) this.emit(band - 1);
    this.lastBand = band;
  }

  finish(): void {
    if (this.lastBand >= 0) this.emit(this.lastBand);
    if (this.emitted !== this.outH) throw invalid("JPEG image data is incomplete");
  }

  private emit(band: number): void {
    const { x0, x1 } = this.region;
    const start = band * this.bandRows;
    const end = Math.min(start + this.bandRows, this.outH);
    // Rows outside the region count as emitted (finish() checks the band bookkeeping) but are not produced.
    const y0 = Math.max(start, this.region.y0);
    const y1 = Math.min(end, this.region.y1);
    this.emitted += end - start - Math.max(0, y1 - y0);
    // Chroma columns whose output pixels cover [x0, x1) on the fused path.
    const c0 = x0 >> 1;
    const c1 = ((x1 - 1) >> 1) + 1;
    for (let y = y0; y < y1; y++) {
      if (this.fusedH2V2) {
        if ((y & 1) === 0 && y + 1 < y1) {
          this.rowPairH2V2(y, c0, c1);
          this.emitted++;
          y++;
        } else this.rowH2V2(y, c0, c1);
      } else {
        for (const pl of this.planes) upsampleRow(pl, y, this.outW);
        this.convertRow(y, x0, x1);
      }
      this.emitted++;
    }
  }

  /**
   * Output rows y and y + 1 (y even) of h2v2 fancy upsampling (jdsample.c
   * h2v2_fancy_upsample) fused with YCbCr->RGB. Both rows lie between the
   * same chroma rows: row y blends chroma row y/2 with the one above (3:1),
   * row y + 1 with the one below. Horizontally each chroma column c gives
   * output columns 2c and 2c + 1 from its vertical sum and its left / right
   * neighbour's (3:1 again); the sums of the previous, current and next
   * column slide along in registers. Nothing is written to a row buffer.
   */
  private rowPairH2V2(y: number, c0: number, c1: number): void {
    const { crR, cbB, crG, cbG } = tables();
    const p0 = this.planes[0] as Plane;
    const p1 = this.planes[1] as Plane;
    const cbRing = p1.ring;
    const crRing = (this.planes[2] as Plane).ring;
    const out = this.outC;
    const w = this.outW;
    const dw = p1.dw;
    const yRing = p0.ring;
    const ya = ringRow(p0, y);
    const yb = ringRow(p0, y + 1);
    const cy = y >> 1;
    const near = ringRow(p1, cy);
    const above = ringRow(p1, cy - 1);
    const below = ringRow(p1, cy + 1);
    // Vertical sums: a* for row y (Cb, Cr), b* for row y + 1; of column c0
    // and of its left neighbour (itself at the left edge).
    const cp = c0 > 0 ? c0 - 1 : 0;
    let nCb = (cbRing[near + c0] ?? 0) * 3;
    let nCr = (crRing[near + c0] ?? 0) * 3;
    let aCb = nCb + (cbRing[above + c0] ?? 0);
    let aCr = nCr + (crRing[above + c0] ?? 0);
    let bCb = nCb + (cbRing[below + c0] ?? 0);
    let bCr = nCr + (crRing[below + c0] ?? 0);
    let aCbPrev = (cbRing[near + cp] ?? 0) * 3 + (cbRing[above + cp] ?? 0);
    let aCrPrev = (crRing[near + cp] ?? 0) * 3 + (crRing[above + cp] ?? 0);
    let bCbPrev = (cbRing[near + cp] ?? 0) * 3 + (cbRing[below + cp] ?? 0);
    let bCrPrev = (crRing[near + cp] ?? 0) * 3 + (crRing[below + cp] ?? 0);
    let oa = (y * w + 2 * c0) * 3;
    const ob = w * 3; // row y + 1 relative to row y
    // Columns whose two output pixels both exist; the rest (an odd width's
    // last column) goes through rowH2V2.
    const full = Math.min(dw, w >> 1, c1);
    for (let c = c0, x = 2 * c0; c < full; c++, x += 2, oa += 6) {
      const n = c + 1 < dw ? c + 1 : c;
      nCb = (cbRing[near + n] ?? 0) * 3;
      nCr = (crRing[near + n] ?? 0) * 3;
      const aCbNext = nCb + (cbRing[above + n] ?? 0);
      const aCrNext = nCr + (crRing[above + n] ?? 0);
      const bCbNext = nCb + (cbRing[below + n] ?? 0);
      const bCrNext = nCr + (crRing[below + n] ?? 0);
      // Row y, columns x and x + 1.
      let cb = (aCb * 3 + aCbPrev + 8) >> 4;
      let cr = (aCr * 3 + aCrPrev + 8) >> 4;
      let Y = yRing[ya + x] ?? 0;
      out[oa] = Y + (crR[cr] ?? 0);
      out[oa + 1] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
      out[oa + 2] = Y + (cbB[cb] ?? 0);
      cb = (aCb * 3 + aCbNext + 7) >> 4;
      cr = (aCr * 3 + aCrNext + 7) >> 4;
      Y = yRing[ya + x + 1] ?? 0;
      out[oa + 3] = Y + (crR[cr] ?? 0);
      out[oa + 4] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
      out[oa + 5] = Y + (cbB[cb] ?? 0);
      // Row y + 1.
      const o = oa + ob;
      cb = (bCb * 3 + bCbPrev + 8) >> 4;
      cr = (bCr * 3 + bCrPrev + 8) >> 4;
      Y = yRing[yb + x] ?? 0;
      out[o] = Y + (crR[cr] ?? 0);
      out[o + 1] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
      out[o + 2] = Y + (cbB[cb] ?? 0);
      cb = (bCb * 3 + bCbNext + 7) >> 4;
      cr = (bCr * 3 + bCrNext + 7) >> 4;
      Y = yRing[yb + x + 1] ?? 0;
      out[o + 3] = Y + (crR[cr] ?? 0);
      out[o + 4] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
      out[o + 5] = Y + (cbB[cb] ?? 0);
      aCbPrev = aCb;
      aCrPrev = aCr;
      bCbPrev = bCb;
      bCrPrev = bCr;
      aCb = aCbNext;
      aCr = aCrNext;
      bCb = bCbNext;
      bCr = bCrNext;
    }
    if (full < Math.min(dw, c1)) {
      this.rowH2V2(y, full, c1);
      this.rowH2V2(y + 1, full, c1);
    }
  }

  /** One output row of the fused h2v2 path, chroma columns [c0, c1) (see rowPairH2V2). */
  private rowH2V2(y: number, c0: number, c1: number): void {
    const { crR, cbB, crG, cbG } = tables();
    const p0 = this.planes[0] as Plane;
    const p1 = this.planes[1] as Plane;
    const cbRing = p1.ring;
    const crRing = (this.planes[2] as Plane).ring;
    const out = this.outC;
    const w = this.outW;
    const dw = p1.dw;
    const yRing = p0.ring;
    const yo = ringRow(p0, y);
    const cy = y >> 1;
    const near = ringRow(p1, cy);
    const far = ringRow(p1, y & 1 ? cy + 1 : cy - 1);
    const cp = c0 > 0 ? c0 - 1 : 0;
    let cbCur = (cbRing[near + c0] ?? 0) * 3 + (cbRing[far + c0] ?? 0);
    let crCur = (crRing[near + c0] ?? 0) * 3 + (crRing[far + c0] ?? 0);
    let cbPrev = (cbRing[near + cp] ?? 0) * 3 + (cbRing[far + cp] ?? 0);
    let crPrev = (crRing[near + cp] ?? 0) * 3 + (crRing[far + cp] ?? 0);
    let o = (y * w + 2 * c0) * 3;
    const cEnd = Math.min(dw, c1);
    for (let c = c0, x = 2 * c0; c < cEnd && x < w; c++) {
      const n = c + 1 < dw ? c + 1 : c;
      const cbNext = (cbRing[near + n] ?? 0) * 3 + (cbRing[far + n] ?? 0);
      const crNext = (crRing[near + n] ?? 0) * 3 + (crRing[far + n] ?? 0);
      let cb = (cbCur * 3 + cbPrev + 8) >> 4;
      let cr = (crCur * 3 + crPrev + 8) >> 4;
      let Y = yRing[yo + x] ?? 0;
      out[o] = Y + (crR[cr] ?? 0);
      out[o + 1] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
      out[o + 2] = Y + (cbB[cb] ?? 0);
      o += 3;
      x++;
      if (x < w) {
        cb = (cbCur * 3 + cbNext + 7) >> 4;
        cr = (crCur * 3 + crNext + 7) >> 4;
        Y = yRing[yo + x] ?? 0;
        out[o] = Y + (crR[cr] ?? 0);
        out[o + 1] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
        out[o + 2] = Y + (cbB[cb] ?? 0);
        o += 3;
        x++;
      }
      cbPrev = cbCur;
      crPrev = crCur;
      cbCur = cbNext;
      crCur = crNext;
    }
  }

  /** Output row y, columns [x0, x1), from the planes' upsampled rows. */
  private convertRow(y: number, x0: number, x1: number): void {
    const out = this.out;
    const outC = this.outC;
    const w = x1;
    let o = (y * this.outW + x0) * 3;
    const p = this.planes;
    const p0 = p[0] as Plane;
    const r0 = p0.src;
    const o0 = p0.srcOff;
    if (this.mode === "gray") {
      for (let x = x0; x < w; x++, o += 3) {
        const g = r0[o0 + x] ?? 0;
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
      }
      return;
    }
    const p1 = p[1] as Plane;
    const p2 = p[2] as Plane;
    const r1 = p1.src;
    const o1 = p1.srcOff;
    const r2 = p2.src;
    const o2 = p2.srcOff;
    if (this.mode === "rgb") {
      for (let x = x0; x < w; x++, o += 3) {
        out[o] = r0[o0 + x] ?? 0;
        out[o + 1] = r1[o1 + x] ?? 0;
        out[o + 2] = r2[o2 + x] ?? 0;
      }
      return;
    }
    const { crR, cbB, crG, cbG } = tables();
    if (this.mode === "ycc") {
      for (let x = x0; x < w; x++, o += 3) {
        const Y = r0[o0 + x] ?? 0;
        const cb = r1[o1 + x] ?? 0;
        const cr = r2[o2 + x] ?? 0;
        outC[o] = Y + (crR[cr] ?? 0);
        outC[o + 1] = Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS);
        outC[o + 2] = Y + (cbB[cb] ?? 0);
      }
      return;
    }
    // CMYK as stored by Adobe/Photoshop/PIL (inverted). YCCK -> that CMYK
    // first (jdcolor.c ycck_cmyk_convert). Then PIL's "CMYK;I" -> RGB:
    // c' = 255 - c, nk = 255 - k' = k, R = nk - muldiv255(c', nk).
    const p3 = p[3] as Plane;
    const r3 = p3.src;
    const o3 = p3.srcOff;
    const ycck = this.mode === "ycck";
    for (let x = x0; x < w; x++, o += 3) {
      let c = r0[o0 + x] ?? 0;
      let m = r1[o1 + x] ?? 0;
      let yy = r2[o2 + x] ?? 0;
      const k = r3[o3 + x] ?? 0;
      if (ycck) {
        const Y = c;
        const cb = m;
        const cr = yy;
        c = 255 - clamp8(Y + (crR[cr] ?? 0));
        m = 255 - clamp8(Y + (((cbG[cb] ?? 0) + (crG[cr] ?? 0)) >> SCALEBITS));
        yy = 255 - clamp8(Y + (cbB[cb] ?? 0));
      }
      out[o] = k - muldiv255(255 - c, k);
      out[o + 1] = k - muldiv255(255 - m, k);
      out[o + 2] = k - muldiv255(255 - yy, k);
    }
  }
}

const muldiv255 = (a: number, b: number): number => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * Points `pl.src`/`pl.srcOff` at component samples upsampled to output row
 * `y` (jdsample.c): the ring row itself when no upsampling is needed,
 * otherwise `pl.row[0..w)` filled here.
 */
function upsampleRow(pl: Plane, y: number, w: number): void {
  const { ring, dw, row } = pl;
  if (pl.mode === Up.Copy) {
    pl.src = ring;
    pl.srcOff = ringRow(pl, y);
    return;
  }
  pl.src = row;
  pl.srcOff = 0;
  switch (pl.mode) {
    case Up.Replicate: {
      const o = ringRow(pl, Math.floor(y / pl.rv));
      const rh = pl.rh;
      for (let x = 0; x < w; x++) row[x] = ring[o + Math.floor(x / rh)] ?? 0;
      return;
    }
    case Up.H1V2: {
      const cy = y >> 1;
      const odd = y & 1;
      const near = ringRow(pl, cy);
      const far = ringRow(pl, odd ? cy + 1 : cy - 1);
      const bias = odd ? 2 : 1;
      for (let x = 0; x < w; x++) row[x] = ((ring[near + x] ?? 0) * 3 + (ring[far + x] ?? 0) + bias) >> 2;
      return;
    }
    case Up.H2V1: {
      const o = ringRow(pl, y);
      for (let c = 0, x = 0; c < dw && x < w; c++) {
        const here = (ring[o + c] ?? 0) * 3;
        row[x++] = (here + (ring[o + (c > 0 ? c - 1 : 0)] ?? 0) + 1) >> 2;
        if (x < w) row[x++] = (here + (ring[o + (c + 1 < dw ? c + 1 : c)] ?? 0) + 2) >> 2;
      }
      return;
    }
    case Up.H2V2: {
      const cy = y >> 1;
      const odd = y & 1;
      const near = ringRow(pl, cy);
      const far = ringRow(pl, odd ? cy + 1 : cy - 1);
      const sums = pl.sums;
      for (let c = 0; c < dw; c++) sums[c] = (ring[near + c] ?? 0) * 3 + (ring[far + c] ?? 0);
      for (let c = 0, x = 0; c < dw && x < w; c++) {
        const here = (sums[c] ?? 0) * 3;
        row[x++] = (here + (sums[c > 0 ? c - 1 : 0] ?? 0) + 8) >> 4;
        if (x < w) row[x++] = (here + (sums[c + 1 < dw ? c + 1 : c] ?? 0) + 7) >> 4;
      }
      return;
    }
  }
}

/** `r` clamped to a width x height image; the whole image if absent or empty after clamping. */
function clampRegion(r: PixelRegion | undefined, width: number, height: number): PixelRegion {
  if (!r) return { x0: 0, y0: 0, x1: width, y1: height };
  const x0 = Math.max(0, Math.min(width, Math.floor(r.x0)));
  const x1 = Math.max(x0, Math.min(width, Math.ceil(r.x1)));
  const y0 = Math.max(0, Math.min(height, Math.floor(r.y0)));
  const y1 = Math.max(y0, Math.min(height, Math.ceil(r.y1)));
  if (x1 === x0 || y1 === y0) return { x0: 0, y0: 0, x1: width, y1: height };
  return { x0, x1, y0, y1 };
}
