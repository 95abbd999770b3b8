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
}
