/**
 * Slow, deliberately literal reference for src/pipeline/preprocess.ts, written
 * separately and importing nothing from src/. It follows torchvision's order of
 * operations step by step on the displayed image:
 *
 *   1. apply EXIF orientation by actually moving pixels (flip / transpose),
 *   2. Resize (antialiased, PIL / torch `_aa` weights) — evaluated as a direct
 *      2-D weighted sum per output pixel, not as two passes,
 *   3. CenterCrop, including torchvision's zero padding when the image is smaller,
 *   4. Normalize, then lay out NCHW or NHWC.
 *
 * Only the resized pixels that the crop keeps are evaluated (the value of a
 * resized pixel does not depend on which others are computed), so extreme
 * aspect ratios stay tractable; everything is float64.
 */

export interface RefImage {
  width: number;
  height: number;
  /** Packed RGB8, stored orientation. */
  data: Uint8Array;
  /** EXIF orientation 1..8. */
  orientation: number;
}

export interface RefSpec {
  resize: { mode: "shortest-edge"; size: number } | { mode: "exact"; width: number; height: number };
  filter: "bilinear" | "bicubic" | "bilinear-tf-align-corners";
  crop?: { width: number; height: number } | undefined;
  rescale: number;
  mean: readonly [number, number, number] | number[];
  std: readonly [number, number, number] | number[];
}

/** A float RGB image, interleaved, row-major. */
interface FloatImage {
  width: number;
  height: number;
  px: Float64Array;
}

function get(img: FloatImage, x: number, y: number, c: number): number {
  const v = img.px[(y * img.width + x) * 3 + c];
  if (v === undefined) throw new Error(`reference: pixel (${x},${y}) out of range`);
  return v;
}

/** Build a new image whose pixel (x, y) is `img` at from(x, y). */
function remap(
  img: FloatImage,
  width: number,
  height: number,
  from: (x: number, y: number) => [number, number],
): FloatImage {
  const px = new Float64Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = from(x, y);
      for (let c = 0; c < 3; c++) px[(y * width + x) * 3 + c] = get(img, sx, sy, c);
    }
  }
  return { width, height, px };
}

const flipLeftRight = (im: FloatImage) => remap(im, im.width, im.height, (x, y) => [im.width - 1 - x, y]);
const flipTopBottom = (im: FloatImage) => remap(im, im.width, im.height, (x, y) => [x, im.height - 1 - y]);
const transpose = (im: FloatImage) => remap(im, im.height, im.width, (x, y) => [y, x]);

/**
 * EXIF orientation as compositions of elementary operations (same as PIL's
 * ImageOps.exif_transpose: 6 = ROTATE_270 i.e. 90° clockwise, 8 = ROTATE_90).
 */
export function referenceOrient(img: RefImage): FloatImage {
  const base: FloatImage = { width: img.width, height: img.height, px: Float64Array.from(img.data) };
  switch (img.orientation) {
    case 2:
      return flipLeftRight(base);
    case 3:
      return flipTopBottom(flipLeftRight(base)); // rotate 180°
    case 4:
      return flipTopBottom(base);
    case 5:
      return transpose(base);
    case 6:
      return flipLeftRight(transpose(base)); // rotate 90° clockwise
    case 7:
      return flipTopBottom(flipLeftRight(transpose(base))); // transverse
    case 8:
      return flipTopBottom(transpose(base)); // rotate 90° counter-clockwise
    default:
      return base;
  }
}

/** The resampling kernels of PIL's ImagingResample (bicubic with a = -0.5). */
function kernel(filter: "bilinear" | "bicubic", x: number): number {
  const t = Math.abs(x);
  if (filter === "bilinear") return t < 1 ? 1 - t : 0;
  const a = -0.5;
  if (t < 1) return (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1;
  if (t < 2) return a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a;
  return 0;
}

export interface Tap {
  index: number;
  weight: number;
}

/**
 * Weights with which output sample `i` of an `inSize` → `outSize` resize reads
 * the input, per PIL's precompute_coeffs (= torch `_compute_weights_aa`).
 */
export function referenceTaps(inSize: number, outSize: number, i: number, filter: "bilinear" | "bicubic"): Tap[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1); // stretch the kernel only when shrinking (antialias)
  const support = (filter === "bilinear" ? 1 : 2) * filterScale;
  const center = (i + 0.5) * scale;
  const first = Math.max(Math.trunc(center - support + 0.5), 0);
  const last = Math.min(Math.trunc(center + support + 0.5), inSize); // exclusive
  const taps: Tap[] = [];
  for (let j = first; j < last; j++) taps.push({ index: j, weight: kernel(filter, (j + 0.5 - center) / filterScale) });
  const total = taps.reduce((s, t) => s + t.weight, 0);
  return total === 0 ? taps : taps.map((t) => ({ index: t.index, weight: t.weight / total }));
}

/** Python's round() for non-negative x: ties go to the even neighbour. */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const frac = x - f;
  if (frac < 0.5) return f;
  if (frac > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

export interface RefGeometry {
  oriented: { width: number; height: number };
  resized: { width: number; height: number };
  /** Top-left of the crop in resized coordinates (negative = zero padding). */
  left: number;
  top: number;
  width: number;
  height: number;
}

export function referenceGeometry(orientedW: number, orientedH: number, spec: RefSpec): RefGeometry {
  let rw: number;
  let rh: number;
  if (spec.resize.mode === "exact") {
    rw = spec.resize.width;
    rh = spec.resize.height;
  } else {
    // torchvision _compute_resized_output_size: short side = size, long = int(size * long / short)
    const s = spec.resize.size;
    if (orientedW <= orientedH) {
      rw = s;
      rh = Math.floor((s * orientedH) / orientedW);
    } else {
      rh = s;
      rw = Math.floor((s * orientedW) / orientedH);
    }
  }
  if (!spec.crop)
    return {
      oriented: { width: orientedW, height: orientedH },
      resized: { width: rw, height: rh },
      left: 0,
      top: 0,
      width: rw,
      height: rh,
    };
  const cw = spec.crop.width;
  const ch = spec.crop.height;
  // torchvision center_crop: pad (crop - size) // 2 before if too small, then
  // top/left = int(round((padded - crop) / 2.0)) in the padded image.
  const padL = cw > rw ? Math.floor((cw - rw) / 2) : 0;
  const padT = ch > rh ? Math.floor((ch - rh) / 2) : 0;
  const paddedW = Math.max(cw, rw);
  const paddedH = Math.max(ch, rh);
  const left = pythonRound((paddedW - cw) / 2) - padL;
  const top = pythonRound((paddedH - ch) / 2) - padT;
  return {
    oriented: { width: orientedW, height: orientedH },
    resized: { width: rw, height: rh },
    left,
    top,
    width: cw,
    height: ch,
  };
}

/**
 * TF.js `tf.image.resizeBilinear(images, [outH, outW], alignCorners = true)`
 * (halfPixelCenters false), written out from its definition: output pixel
 * (X, Y) samples the input at (X * (inW - 1) / (outW - 1), Y * (inH - 1) / (outH - 1))
 * (ratio in / out for a 1-pixel output), interpolating linearly between the
 * 2x2 neighbours, first along x (top and bottom rows), then along y.
 */
function referenceTfBilinearSample(
  im: FloatImage,
  outW: number,
  outH: number,
  X: number,
  Y: number,
  c: number,
): number {
  const rx = outW > 1 ? (im.width - 1) / (outW - 1) : im.width / outW;
  const ry = outH > 1 ? (im.height - 1) / (outH - 1) : im.height / outH;
  const sx = rx * X;
  const sy = ry * Y;
  const x0 = Math.max(0, Math.floor(sx));
  const y0 = Math.max(0, Math.floor(sy));
  const x1 = Math.min(im.width - 1, Math.ceil(sx));
  const y1 = Math.min(im.height - 1, Math.ceil(sy));
  const fx = sx - x0;
  const fy = sy - y0;
  const top = get(im, x0, y0, c) + (get(im, x1, y0, c) - get(im, x0, y0, c)) * fx;
  const bottom = get(im, x0, y1, c) + (get(im, x1, y1, c) - get(im, x0, y1, c)) * fx;
  return top + (bottom - top) * fy;
}

export function referencePreprocess(
  img: RefImage,
  spec: RefSpec,
  input: { layout: "NCHW" | "NHWC"; width: number; height: number },
): Float32Array {
  const shown = referenceOrient(img);
  const g = referenceGeometry(shown.width, shown.height, spec);
  if (g.width !== input.width || g.height !== input.height) throw new Error("reference: output size mismatch");
  if (spec.filter === "bilinear-tf-align-corners") return referenceTfPreprocess(shown, g, spec, input);
  const filter = spec.filter;

  const xTaps: Tap[][] = [];
  for (let x = 0; x < g.width; x++) {
    const X = g.left + x;
    xTaps.push(X >= 0 && X < g.resized.width ? referenceTaps(shown.width, g.resized.width, X, filter) : []);
  }
  const yTaps: Tap[][] = [];
  for (let y = 0; y < g.height; y++) {
    const Y = g.top + y;
    yTaps.push(Y >= 0 && Y < g.resized.height ? referenceTaps(shown.height, g.resized.height, Y, filter) : []);
  }

  const out = new Float32Array(3 * g.width * g.height);
  for (let y = 0; y < g.height; y++) {
    for (let x = 0; x < g.width; x++) {
      const ty = yTaps[y] ?? [];
      const tx = xTaps[x] ?? [];
      // Padding pixels have no taps and stay 0, exactly like torchvision's fill=0.
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (const a of ty) for (const b of tx) v += a.weight * b.weight * get(shown, b.index, a.index, c);
        const mean = spec.mean[c] ?? 0;
        const std = spec.std[c] ?? 1;
        const n = (v * spec.rescale - mean) / std;
        const at = input.layout === "NCHW" ? c * g.width * g.height + y * g.width + x : (y * g.width + x) * 3 + c;
        out[at] = n;
      }
    }
  }
  return out;
}

/**
 * nsfwjs's order: normalise the displayed pixels first (`img.toFloat().div(255)`),
 * then resize with TF.js bilinear (align corners), then crop (none for nsfwjs).
 * Everything float64; the result is rounded once to float32.
 */
function referenceTfPreprocess(
  shown: FloatImage,
  g: RefGeometry,
  spec: RefSpec,
  input: { layout: "NCHW" | "NHWC"; width: number; height: number },
): Float32Array {
  const norm: FloatImage = { width: shown.width, height: shown.height, px: new Float64Array(shown.px.length) };
  for (let i = 0; i < shown.px.length; i++) {
    const c = i % 3;
    norm.px[i] = ((shown.px[i] ?? 0) * spec.rescale - (spec.mean[c] ?? 0)) / (spec.std[c] ?? 1);
  }
  const out = new Float32Array(3 * g.width * g.height);
  for (let y = 0; y < g.height; y++) {
    for (let x = 0; x < g.width; x++) {
      const X = g.left + x;
      const Y = g.top + y;
      const inside = X >= 0 && X < g.resized.width && Y >= 0 && Y < g.resized.height;
      for (let c = 0; c < 3; c++) {
        const v = inside ? referenceTfBilinearSample(norm, g.resized.width, g.resized.height, X, Y, c) : 0;
        const at = input.layout === "NCHW" ? c * g.width * g.height + y * g.width + x : (y * g.width + x) * 3 + c;
        out[at] = v;
      }
    }
  }
  return out;
}
