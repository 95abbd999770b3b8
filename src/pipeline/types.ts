/** Formats the decode stage understands. Everything else is a 415. */
export type ImageFormat = "jpeg" | "png" | "webp";

/**
 * What a header probe learns without decoding pixels. `width`/`height` are the
 * stored dimensions (before EXIF orientation) so the pixel budget can be
 * enforced before any large allocation happens.
 */
export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
  /** EXIF orientation 1..8 (1 = as stored). */
  orientation: number;
}

/**
 * Decoded pixels: tightly packed 8-bit RGB, `width * height * 3` bytes, in
 * stored orientation. Alpha has already been composited over white and 16-bit
 * samples reduced to 8 bits, so later stages handle exactly one layout.
 */
export interface DecodedImage extends ImageInfo {
  data: Uint8Array;
  /**
   * 1 = full resolution. 2, 4 or 8 = a JPEG decoded in the DCT domain at that
   * reduced scale (width/height above are then the reduced size, i.e.
   * ceil(stored / scale)); set only when the caller allowed it.
   */
  scale?: number;
  /**
   * Set when only part of the image was decoded (a JPEG given a region by
   * the caller): only these pixels hold the image; the rest are 0.
   */
  region?: PixelRegion;
}

/**
 * A rectangle of output pixels, half-open: columns [x0, x1), rows [y0, y1).
 * A JPEG decode given one still reads every entropy-coded bit (Huffman coding
 * cannot be skipped), but inverse-transforms only the blocks the rectangle
 * (plus one chroma sample of upsampling context) touches and colour-converts
 * only its pixels; everything outside it is left 0. For a centre-cropping
 * model that is ~40 % of a landscape photo's IDCT and colour work.
 */
export interface PixelRegion {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}
