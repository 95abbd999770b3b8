import type { PreprocessSpec, ResizeSpec } from "../models/manifest";
import type { DecodedImage, PixelRegion } from "./types";

/**
 * Image → model input tensor, matching torchvision's
 * `ToTensor → Resize(antialias=True) → CenterCrop → Normalize` on the image the
 * user *sees* (EXIF orientation applied).
 *
 * How it stays cheap on a 12-megapixel photo inside a 128 MB isolate:
 *  - Geometry (oriented size, resized size, crop window) is computed first, and
 *    only the resized pixels that survive the crop are ever computed. Each
 *    output pixel of a separable resample depends only on its own weight row,
 *    so skipping the cropped-away ones is exact (and it is what makes a 4x3000
 *    strip, whose full resize would be 256x192000, affordable).
 *  - The resample runs in *stored* orientation and the EXIF transform is
 *    applied to the small result while writing the tensor. That is exact
 *    because the filters are per-axis and symmetric: mirroring an axis mirrors
 *    the sample centres, and transposing just swaps which axis table is used.
 *    (To also match torch's float32 rounding of the centres, weights on a
 *    mirrored axis are computed for the displayed index and then mirrored.)
 *  - The horizontal pass reads the Uint8 source directly, one input row at a
 *    time as the vertical pass first needs it, into a ring of a few filtered
 *    rows (as many as the vertical filter has taps), so no float copy of the
 *    image or of the band is made; intermediates are float32 like torch's
 *    (never rounded to uint8). The vertical pass writes the normalised tensor
 *    directly.
 */

export type TensorLayout = "NCHW" | "NHWC";

export interface ModelInput {
  layout: TensorLayout;
  width: number;
  height: number;
}

export interface Size {
  width: number;
  height: number;
}

/** Where the model input comes from in the resized (displayed) image. */
export interface CropWindow {
  /** May be negative: torchvision CenterCrop zero-pads when the image is smaller than the crop. */
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface PreprocessGeometry {
  /** Source size as displayed, i.e. after EXIF orientation. */
  oriented: Size;
  /** Size after Resize, in displayed orientation. */
  resized: Size;
  /** Window of the resized image that becomes the model input (whole image when the spec has no crop). */
  crop: CropWindow;
}

/**
 * Per EXIF orientation: does displayed x come from stored y (transpose), and is
 * the displayed x / y axis mirrored relative to the stored axis it comes from.
 * Derived from the displayed(dx,dy) → stored(sx,sy) maps (W,H = stored size):
 *   1 sx=dx,     sy=dy        5 sx=dy,     sy=dx
 *   2 sx=W-1-dx, sy=dy        6 sx=dy,     sy=H-1-dx   (rotate 90° CW to display)
 *   3 sx=W-1-dx, sy=H-1-dy    7 sx=W-1-dy, sy=H-1-dx
 *   4 sx=dx,     sy=H-1-dy    8 sx=W-1-dy, sy=dx       (rotate 90° CCW to display)
 */
const ORIENTATION: ReadonlyArray<readonly [swap: boolean, flipX: boolean, flipY: boolean]> = [
  [false, false, false], // 0: unused, invalid values are treated as 1
  [false, false, false],
  [false, true, false],
  [false, true, true],
  [false, false, true],
  [true, false, false],
  [true, true, false],
  [true, true, true],
  [true, false, true],
];

function orientationEntry(orientation: number): readonly [boolean, boolean, boolean] {
  // EXIF says readers should ignore values they do not know, so anything
  // outside 1..8 means "as stored" rather than an error.
  const entry = Number.isInteger(orientation) ? ORIENTATION[orientation] : undefined;
  return entry ?? [false, false, false];
}

/** Displayed size of a stored `width x height` image: orientations 5..8 swap the axes. */
export function orientedSize(width: number, height: number, orientation: number): Size {
  return orientationEntry(orientation)[0] ? { width: height, height: width } : { width, height };
}

/** torchvision `_compute_resized_output_size` (no max_size) / exact size. */
export function resizedSize(oriented: Size, resize: ResizeSpec): Size {
  if (resize.mode === "exact") return { width: resize.width, height: resize.height };
  const { width: w, height: h } = oriented;
  // Same double-precision expression and truncation as Python's
  // int(size * long / short), so results agree bit for bit.
  if (w <= h) return { width: resize.size, height: Math.trunc((resize.size * h) / w) };
  return { width: Math.trunc((resize.size * w) / h), height: resize.size };
}

/**
 * torchvision CenterCrop offset along one axis of length `length`.
 * crop <= length: int(round((length - crop) / 2.0)) with Python's half-to-even
 * round (341 - 224 → 58, 343 - 224 → 60). crop > length: torchvision first pads
 * (crop - length) // 2 zeros before (the odd one goes after), after which the
 * offset in the padded image is 0, i.e. -pad in the original's coordinates.
 */
export function centerCropOffset(length: number, crop: number): number {
  const d = length - crop;
  if (d < 0) return 0 - Math.floor(-d / 2); // 0 - x, not -x: no -0 for a 1-pixel pad
  const q = Math.floor(d / 2);
  if (d % 2 === 0) return q;
  return q % 2 === 0 ? q : q + 1;
}

export function preprocessGeometry(
  width: number,
  height: number,
  orientation: number,
  spec: Pick<PreprocessSpec, "resize" | "crop">,
): PreprocessGeometry {
  const oriented = orientedSize(width, height, orientation);
  const resized = resizedSize(oriented, spec.resize);
  const crop: CropWindow = spec.crop
    ? {
        left: centerCropOffset(resized.width, spec.crop.width),
        top: centerCropOffset(resized.height, spec.crop.height),
        width: spec.crop.width,
        height: spec.crop.height,
      }
    : { left: 0, top: 0, width: resized.width, height: resized.height };
  return { oriented, resized, crop };
}

/**
 * Filter kernels as torch's `_aa` kernels (taken from PIL) define them. The
 * argument and result are float32 there; the arithmetic in between is double
 * because of the double literals, hence the single `fround` by the caller.
 */
function triangle(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

function cubic(x: number): number {
  // Keys cubic with a = -0.5 (PIL's value; torch's *_aa kernels use it too,
  // unlike torch's non-antialiased bicubic which uses -0.75).
  const A = -0.5;
  const t = x < 0 ? -x : x;
  if (t < 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * A;
  return 0;
}

/** Weights of one resample axis, for a contiguous run of output indices only. */
interface AxisWeights {
  /** First input index read by each output. */
  start: Int32Array;
  /** Number of taps per output. */
  taps: Int32Array;
  /** Weights of output k live at [k * stride, k * stride + taps[k]). */
  stride: number;
  weights: Float64Array;
  /** Input range [lo, hi) read by any of these outputs. */
  lo: number;
  hi: number;
}

const f32 = Math.fround;

/**
 * torch `_compute_weights_aa` (itself PIL's `precompute_coeffs`): output i
 * samples at centre (i + 0.5) * scale; when downscaling the kernel is
 * stretched by the scale (that is the antialiasing); taps are clipped to the
 * image and the weights renormalised, which is how borders are handled.
 *
 * For a float32 tensor torch evaluates this in float32 (scale, centre,
 * support, kernel argument, weights, their sum), with some intermediate steps
 * promoted to double by C++'s literal rules. The `f32` calls reproduce exactly
 * those roundings: in double (PIL's precision) the centres drift by ~i * 2^-24
 * pixels relative to torch and outputs differ by up to ~7e-5 after
 * normalisation; with them the difference is torch's float32 summation, ~1e-6.
 */
function axisWeights(
  inSize: number,
  outSize: number,
  first: number,
  count: number,
  filter: "bilinear" | "bicubic",
  mirror: boolean,
): AxisWeights {
  const kernel = filter === "bicubic" ? cubic : triangle;
  const radius = filter === "bicubic" ? 2 : 1;
  const scale = f32(inSize / outSize);
  const support = scale >= 1 ? f32(radius * scale) : radius;
  const invScale = scale >= 1 ? f32(1 / scale) : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(count);
  const taps = new Int32Array(count);
  const weights = new Float64Array(count * stride);
  let lo = inSize;
  let hi = 0;
  for (let k = 0; k < count; k++) {
    // On a mirrored axis torch computes output d = n-1-s of the displayed
    // image, whose float32 centre is not exactly the mirror of s's; so compute
    // d's taps over displayed input indices and mirror them into stored ones.
    const i = mirror ? outSize - 1 - (first + k) : first + k;
    const center = f32(scale * (i + 0.5));
    // C-style (int) casts truncate toward zero; Math.trunc matches.
    let xmin = Math.max(Math.trunc(f32(center - support) + 0.5), 0);
    let xmax = Math.min(Math.trunc(f32(center + support) + 0.5), inSize);
    const base = k * stride;
    let total = 0;
    for (let j = xmin; j < xmax; j++) {
      const w = f32(kernel(f32((f32(j - center) + 0.5) * invScale)));
      weights[base + j - xmin] = w;
      total = f32(total + w);
    }
    if (total !== 0) {
      for (let j = 0; j < xmax - xmin; j++) weights[base + j] = f32((weights[base + j] ?? 0) / total);
    }
    if (mirror) {
      weights.subarray(base, base + xmax - xmin).reverse();
      const storedMin = inSize - xmax;
      xmax = inSize - xmin;
      xmin = storedMin;
    }
    // Drop zero-weight taps at either end (e.g. the identity "resize" has one
    // real tap out of two). Adding 0 * pixel changes nothing, it only costs time.
    let a = 0;
    let n = xmax - xmin;
    while (n > 1 && weights[base + a] === 0) {
      a++;
      n--;
    }
    while (n > 1 && weights[base + a + n - 1] === 0) n--;
    if (a > 0) weights.copyWithin(base, base + a, base + a + n);
    xmin += a;
    xmax = xmin + n;
    start[k] = xmin;
    taps[k] = n;
    if (xmin < lo) lo = xmin;
    if (xmax > hi) hi = xmax;
  }
  return { start, taps, stride, weights, lo, hi };
}

/**
 * Horizontal pass for input row `y` (and row y + 1 when `o2 >= 0`): the `nx`
 * kept outputs of `xw`, RGB interleaved, into `dst` at `o` (and `o2`). Sums
 * in float64 in tap order, stored as float32 (torch's intermediate
 * precision). Two rows per sweep load each weight once for both, and the six
 * independent sums keep the FPU busy; per value the operations and their
 * order are exactly those of one row.
 */
function filterRows(
  data: Uint8Array,
  W: number,
  y: number,
  xw: AxisWeights,
  nx: number,
  dst: Float32Array,
  o: number,
  o2: number,
): void {
  const { start, taps, stride, weights } = xw;
  const W3 = W * 3;
  const rowBase = y * W3;
  if (o2 < 0) {
    for (let i = 0; i < nx; i++) {
      let p = rowBase + (start[i] ?? 0) * 3;
      let wo = i * stride;
      const end = wo + (taps[i] ?? 0);
      let r = 0;
      let g = 0;
      let b = 0;
      for (; wo < end; wo++, p += 3) {
        const w = weights[wo] ?? 0;
        r += w * (data[p] ?? 0);
        g += w * (data[p + 1] ?? 0);
        b += w * (data[p + 2] ?? 0);
      }
      dst[o++] = r;
      dst[o++] = g;
      dst[o++] = b;
    }
    return;
  }
  for (let i = 0; i < nx; i++, o += 3, o2 += 3) {
    let p = rowBase + (start[i] ?? 0) * 3;
    let wo = i * stride;
    const end = wo + (taps[i] ?? 0);
    let r = 0;
    let g = 0;
    let b = 0;
    let r2 = 0;
    let g2 = 0;
    let b2 = 0;
    for (; wo < end; wo++, p += 3) {
      const w = weights[wo] ?? 0;
      r += w * (data[p] ?? 0);
      g += w * (data[p + 1] ?? 0);
      b += w * (data[p + 2] ?? 0);
      r2 += w * (data[p + W3] ?? 0);
      g2 += w * (data[p + W3 + 1] ?? 0);
      b2 += w * (data[p + W3 + 2] ?? 0);
    }
    dst[o] = r;
    dst[o + 1] = g;
    dst[o + 2] = b;
    dst[o2] = r2;
    dst[o2 + 1] = g2;
    dst[o2 + 2] = b2;
  }
}

/** Range of resized indices along one displayed axis that the crop window actually reads. */
function keptRange(resizedLength: number, offset: number, cropLength: number): [number, number] {
  return [Math.max(0, offset), Math.min(resizedLength, offset + cropLength)];
}

/**
 * Which stored pixels the resize reads: the kept resized indices per
 * displayed axis (the crop window), mapped to the stored axis they come from
 * (mirroring a range [a, b) gives [n - b, n - a)), and their filter weights.
 */
function resamplePlan(
  W: number,
  H: number,
  orientation: number,
  filter: "bilinear" | "bicubic",
  { resized, crop }: PreprocessGeometry,
) {
  const [swap, flipX, flipY] = orientationEntry(orientation);
  // Resized size in stored orientation.
  const RsW = swap ? resized.height : resized.width;
  const RsH = swap ? resized.width : resized.height;
  const [dxA, dxB] = keptRange(resized.width, crop.left, crop.width);
  const [dyA, dyB] = keptRange(resized.height, crop.top, crop.height);
  const sxFromDx: [number, number] = flipX ? [resized.width - dxB, resized.width - dxA] : [dxA, dxB];
  const syFromDy: [number, number] = flipY ? [resized.height - dyB, resized.height - dyA] : [dyA, dyB];
  const [sxA, sxB] = swap ? syFromDy : sxFromDx;
  const [syA, syB] = swap ? sxFromDx : syFromDy;
  const nx = sxB - sxA;
  const ny = syB - syA;
  const xw = axisWeights(W, RsW, sxA, nx, filter, swap ? flipY : flipX);
  const yw = axisWeights(H, RsH, syA, ny, filter, swap ? flipX : flipY);
  return { swap, flipX, flipY, sxA, syA, nx, ny, xw, yw };
}

/**
 * The stored pixels of a `width x height` image (at the size it is decoded
 * at) that preprocess() will read for `spec`: the decoder need produce only
 * these (decodeOptionsFor passes this to the JPEG decoder). A centre crop
 * reads the middle of the image, plus the resize filter's support around it;
 * the point-sampling TF bilinear resize reads all of it.
 */
export function preprocessRegion(
  width: number,
  height: number,
  orientation: number,
  spec: PreprocessSpec,
): PixelRegion {
  if (spec.filter === "bilinear-tf-align-corners") return { x0: 0, y0: 0, x1: width, y1: height };
  const geo = preprocessGeometry(width, height, orientation, spec);
  const { xw, yw } = resamplePlan(width, height, orientation, spec.filter, geo);
  return { x0: xw.lo, x1: xw.hi, y0: yw.lo, y1: yw.hi };
}

/** A partly decoded image must hold every pixel preprocessing reads; anything else is a bug, not a client error. */
function assertDecoded(img: DecodedImage, needed: PixelRegion): void {
  const r = img.region;
  if (!r) return;
  if (needed.x0 < r.x0 || needed.x1 > r.x1 || needed.y0 < r.y0 || needed.y1 > r.y1) {
    throw new Error(
      `preprocess: reads pixels [${needed.x0},${needed.x1})x[${needed.y0},${needed.y1}) but only [${r.x0},${r.x1})x[${r.y0},${r.y1}) were decoded`,
    );
  }
}

/**
 * Resize + centre-crop + normalise `img` into a tensor for `input`.
 * Output length is 3 * input.width * input.height, planar (NCHW) or
 * interleaved (NHWC). Throws if the spec does not produce `input`'s size —
 * that is a manifest bug, not a client error.
 */
export function preprocess(img: DecodedImage, spec: PreprocessSpec, input: ModelInput): Float32Array {
  const { width: W, height: H, data } = img;
  if (!(Number.isInteger(W) && Number.isInteger(H) && W > 0 && H > 0)) {
    throw new Error(`preprocess: invalid image size ${W}x${H}`);
  }
  if (data.length !== W * H * 3) {
    throw new Error(`preprocess: expected ${W * H * 3} RGB bytes, got ${data.length}`);
  }
  const geo = preprocessGeometry(W, H, img.orientation, spec);
  const { resized, crop } = geo;
  if (crop.width !== input.width || crop.height !== input.height) {
    throw new Error(
      `preprocess: spec yields ${crop.width}x${crop.height} but the model input is ${input.width}x${input.height}`,
    );
  }
  if (spec.filter === "bilinear-tf-align-corners") {
    assertDecoded(img, { x0: 0, y0: 0, x1: W, y1: H });
    return preprocessTfBilinear(img, spec, input, geo);
  }
  const { swap, flipX, flipY, sxA, syA, nx, ny, xw, yw } = resamplePlan(W, H, img.orientation, spec.filter, geo);
  assertDecoded(img, { x0: xw.lo, x1: xw.hi, y0: yw.lo, y1: yw.hi });

  // Where each displayed output column / row reads from, in stored terms:
  // the stored row (index into yw's outputs) and the stored column's offset
  // in a tmp row (-1 = torchvision's zero padding). Without a transpose,
  // displayed y picks the stored row and displayed x the column; with one,
  // the other way round.
  const colSrc = new Int32Array(crop.width);
  for (let x = 0; x < crop.width; x++) {
    const d = crop.left + x;
    if (d < 0 || d >= resized.width) {
      colSrc[x] = -1;
      continue;
    }
    const s = flipX ? resized.width - 1 - d : d;
    colSrc[x] = swap ? s - syA : (s - sxA) * 3;
  }
  const rowSrc = new Int32Array(crop.height);
  for (let y = 0; y < crop.height; y++) {
    const d = crop.top + y;
    if (d < 0 || d >= resized.height) {
      rowSrc[y] = -1;
      continue;
    }
    const s = flipY ? resized.height - 1 - d : d;
    rowSrc[y] = swap ? (s - sxA) * 3 : s - syA;
  }

  // Normalise: (p * rescale - mean) / std, folded into one multiply-add.
  const [m0, m1, m2] = spec.mean;
  const [s0, s1, s2] = spec.std;
  const k0 = spec.rescale / s0;
  const k1 = spec.rescale / s1;
  const k2 = spec.rescale / s2;
  const b0 = -m0 / s0;
  const b1 = -m1 / s1;
  const b2 = -m2 / s2;

  const OW = crop.width;
  const OH = crop.height;
  const plane = OW * OH;
  const out = new Float32Array(plane * 3);
  const planar = input.layout === "NCHW";

  // Pass 1 (horizontal) runs on demand into a small ring of filtered rows:
  // stored output row j needs input rows start[j] .. start[j] + taps[j] - 1,
  // and those move monotonically through the image as the loop below walks
  // j (up or down), so each input row is filtered once and only `ringRows`
  // of them are ever held (a few KB instead of a float32 copy of the band).
  // `slot[r % ringRows] === r` says input row r is in the ring.
  const rowLen = nx * 3;
  const { start, taps, stride, weights } = yw;
  let ringRows = 1;
  for (let j = 0; j < ny; j++) ringRows = Math.max(ringRows, taps[j] ?? 0);
  const ring = new Float32Array(ringRows * rowLen);
  const slot = new Int32Array(ringRows).fill(-1);
  const tapRow = new Int32Array(ringRows); // ring offset of each tap's row, for the current j

  // Pass 2 (vertical), fused with normalisation and the EXIF mapping: every
  // kept resized value is one vertical dot product over the filtered rows,
  // accumulated in float64 in tap order (rounding the output once is closer
  // to torch than float32 sums), scaled and stored straight into the tensor.
  // The outer loop walks stored rows and the inner one stored columns, so the
  // ring is read along its rows whichever way the image is oriented.
  const rowsOuter = !swap;
  const nOuter = rowsOuter ? OH : OW;
  const nInner = rowsOuter ? OW : OH;
  const outerSrc = rowsOuter ? rowSrc : colSrc; // stored row per outer index
  const innerSrc = rowsOuter ? colSrc : rowSrc; // stored column offset per inner index
  const outerStep = rowsOuter ? OW : 1; // pixel index step per outer / inner index
  const innerStep = rowsOuter ? 1 : OW;
  for (let a = 0; a < nOuter; a++) {
    const j = outerSrc[a] ?? -1;
    const n = j < 0 ? 0 : (taps[j] ?? 0);
    const first = j < 0 ? 0 : (start[j] ?? 0);
    for (let k = 0; k < n; k++) {
      const r = first + k;
      const sl = r % ringRows;
      if (slot[sl] !== r) {
        // Usually the next row is missing too: filter both in one sweep.
        const sl2 = (r + 1) % ringRows;
        if (k + 1 < n && slot[sl2] !== r + 1) {
          filterRows(data, W, r, xw, nx, ring, sl * rowLen, sl2 * rowLen);
          slot[sl2] = r + 1;
        } else filterRows(data, W, r, xw, nx, ring, sl * rowLen, -1);
        slot[sl] = r;
      }
      tapRow[k] = sl * rowLen;
    }
    const w0 = j * stride;
    let pix = a * outerStep;
    for (let b = 0; b < nInner; b++, pix += innerStep) {
      const i = innerSrc[b] ?? -1;
      let r = 0;
      let g = 0;
      let bl = 0;
      if (i >= 0) {
        for (let k = 0; k < n; k++) {
          const w = weights[w0 + k] ?? 0;
          const src = (tapRow[k] ?? 0) + i;
          r += w * (ring[src] ?? 0);
          g += w * (ring[src + 1] ?? 0);
          bl += w * (ring[src + 2] ?? 0);
        }
      }
      if (planar) {
        out[pix] = r * k0 + b0;
        out[plane + pix] = g * k1 + b1;
        out[2 * plane + pix] = bl * k2 + b2;
      } else {
        const o = pix * 3;
        out[o] = r * k0 + b0;
        out[o + 1] = g * k1 + b1;
        out[o + 2] = bl * k2 + b2;
      }
    }
  }
  return out;
}

/**
 * One axis of TF.js's CPU `resizeBilinear` (tfjs-backend-cpu ResizeBilinear.js)
 * with alignCorners=true, halfPixelCenters=false, in double precision as JS
 * evaluates it: ratio = (in - 1) / (out - 1) (or in / out when out == 1),
 * source = ratio * i, taps floor(source) and min(in - 1, ceil(source)).
 */
function tfAlignCornersAxis(inSize: number, outSize: number): { lo: Int32Array; hi: Int32Array; frac: Float64Array } {
  const align = outSize > 1;
  const ratio = (align ? inSize - 1 : inSize) / (align ? outSize - 1 : outSize);
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const frac = new Float64Array(outSize);
  for (let i = 0; i < outSize; i++) {
    const src = ratio * i;
    const f = Math.max(0, Math.floor(src));
    lo[i] = f;
    frac[i] = src - f;
    hi[i] = Math.min(inSize - 1, Math.ceil(src));
  }
  return { lo, hi, frac };
}

/**
 * nsfwjs / TF.js preprocessing: pixels normalised first (float32, as
 * `img.toFloat().div(255)` leaves them), then `tf.image.resizeBilinear` with
 * alignCorners=true on the displayed image: per output pixel
 *   top = tl + (tr - tl) * fx;  bottom = bl + (br - bl) * fx;  v = top + (bottom - top) * fy
 * in double, stored as float32 — the same expression and order as TF.js's CPU
 * kernel, so on identical pixels the results agree bit for bit. No
 * antialiasing: a large downscale point-samples 2x2 pixels per output pixel
 * (that is the model's training/serving preprocessing, so it is reproduced).
 * (nsfwjs skips the resize for an image already at the target size; the
 * formula is exactly the identity then: ratio 1, frac 0.) EXIF orientation: the interpolation
 * runs in displayed coordinates and each integer tap is mapped to its stored pixel.
 */
function preprocessTfBilinear(
  img: DecodedImage,
  spec: PreprocessSpec,
  input: ModelInput,
  geo: PreprocessGeometry,
): Float32Array {
  const { width: W, data } = img;
  const { oriented, resized, crop } = geo;
  const [swap, flipX, flipY] = orientationEntry(img.orientation);
  // Normalised value of each byte per channel, rounded to float32 like TF.js's
  // division result. x / (1 / rescale) rather than x * rescale so that
  // rescale = 1/255 gives exactly x / 255 (1 / (1/255) === 255 in double).
  const divisor = 1 / spec.rescale;
  const lut = [0, 1, 2].map((c) => {
    const t = new Float32Array(256);
    const mean = spec.mean[c] ?? 0;
    const std = spec.std[c] ?? 1;
    for (let p = 0; p < 256; p++) t[p] = (p / divisor - mean) / std;
    return t;
  }) as [Float32Array, Float32Array, Float32Array];

  const xa = tfAlignCornersAxis(oriented.width, resized.width);
  const ya = tfAlignCornersAxis(oriented.height, resized.height);
  // Stored byte offset of displayed (dx, dy) = colPart(dx) + rowPart(dy): displayed x
  // moves along stored x (or stored y when transposed), possibly mirrored.
  const H = img.height;
  const colPart = (dx: number): number => (swap ? (flipX ? H - 1 - dx : dx) * W * 3 : (flipX ? W - 1 - dx : dx) * 3);
  const rowPart = (dy: number): number => (swap ? (flipY ? W - 1 - dy : dy) * 3 : (flipY ? H - 1 - dy : dy) * W * 3);

  const OW = crop.width;
  const OH = crop.height;
  const plane = OW * OH;
  const out = new Float32Array(plane * 3);
  const planar = input.layout === "NCHW";
  for (let y = 0; y < OH; y++) {
    const ry = crop.top + y;
    if (ry < 0 || ry >= resized.height) continue; // zero padding
    const r0 = rowPart(ya.lo[ry] ?? 0);
    const r1 = rowPart(ya.hi[ry] ?? 0);
    const fy = ya.frac[ry] ?? 0;
    for (let x = 0; x < OW; x++) {
      const rx = crop.left + x;
      if (rx < 0 || rx >= resized.width) continue;
      const c0 = colPart(xa.lo[rx] ?? 0);
      const c1 = colPart(xa.hi[rx] ?? 0);
      const fx = xa.frac[rx] ?? 0;
      const pix = y * OW + x;
      for (let c = 0; c < 3; c++) {
        const t = lut[c as 0 | 1 | 2];
        const tl = t[data[r0 + c0 + c] ?? 0] ?? 0;
        const tr = t[data[r0 + c1 + c] ?? 0] ?? 0;
        const bl = t[data[r1 + c0 + c] ?? 0] ?? 0;
        const br = t[data[r1 + c1 + c] ?? 0] ?? 0;
        const top = tl + (tr - tl) * fx;
        const bottom = bl + (br - bl) * fx;
        const v = top + (bottom - top) * fy;
        out[planar ? c * plane + pix : pix * 3 + c] = v;
      }
    }
  }
  return out;
}

/**
 * The smallest shorter side a JPEG may be DCT-downscaled to before this
 * preprocessing runs: twice the resize target, so the antialiased resize that
 * follows still averages at least 2x2 decoded pixels per output pixel and the
 * DCT scaling never becomes the resampling filter.
 */
export function minDecodeShortSide(spec: PreprocessSpec): number {
  // A non-antialiased resize point-samples the decoded pixels: decoding at a
  // smaller DCT scale would change which (averaged) pixels it samples, so
  // decode at full resolution, as the model's own pipeline (nsfwjs) does.
  if (spec.filter === "bilinear-tf-align-corners") return Number.POSITIVE_INFINITY;
  const r = spec.resize;
  return 2 * (r.mode === "shortest-edge" ? r.size : Math.max(r.width, r.height));
}
