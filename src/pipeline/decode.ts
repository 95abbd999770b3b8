/**
 * Bytes -> DecodedImage. The order matters:
 *  1. probe the header (format by magic bytes, stored size, orientation),
 *  2. refuse zero-sized images (422) and anything over the pixel budget (413)
 *     before a single pixel buffer is allocated,
 *  3. decode with the format's codec,
 *  4. check the codec produced exactly the probed size and buffer length.
 * Codec libraries throw plain Errors/TypeErrors/RangeErrors on damaged data;
 * those become 422 invalid_image here so nothing but an ApiError escapes for
 * client-caused failures. (A WebP decoder that was never initialised is a
 * server bug and deliberately propagates as-is -> 500.)
 */
import { ApiError, isApiError } from "../errors";
import { LIMITS } from "../limits";
import type { PreprocessSpec } from "../models/manifest";
import { decodeJpegScaled } from "./codecs/jpeg-lean";
import { decodePng } from "./codecs/png";
import { probeImage } from "./codecs/probe";
import { decodeWebp, WebpDecoderNotInitialisedError } from "./codecs/webp";
import { minDecodeShortSide, preprocessRegion } from "./preprocess";
import type { DecodedImage, ImageInfo, PixelRegion } from "./types";

export { probeImage };

export interface DecodeOptions {
  /** Upper bound on width * height of the stored image (JPEG, decoded scaled or streaming). */
  maxPixels: number;
  /**
   * Upper bound for formats decoded whole at full resolution (PNG, WebP),
   * whose decoders hold several full-size copies. Defaults to maxPixels.
   */
  maxPixelsFullDecode?: number;
  /** Upper bound on a progressive JPEG's coefficient store (bytes). Default: none. */
  maxCoefficientBytes?: number;
  /** Upper bound on the number of scans in a JPEG. Default LIMITS.maxJpegScans. */
  maxJpegScans?: number;
  /**
   * JPEGs may be decoded at 1/2, 1/4 or 1/8 scale in the DCT domain as long as
   * the shorter side stays >= this (pass 2x the model's resize target so the
   * antialiased resize after it still filters). Default: always full scale.
   */
  minShortSide?: number;
  /**
   * The pixels the caller will read, given the size the image decodes to and
   * its EXIF orientation: a JPEG then produces only those (see PixelRegion)
   * and says so in `region`. PNG and WebP always decode whole. Default: all.
   */
  region?: (width: number, height: number, orientation: number) => PixelRegion;
  /**
   * Called before a WebP is decoded. The worker instantiates the WebP codec
   * here rather than up front: its wasm memory (16 MB, and wasm memory never
   * shrinks) is then only spent by isolates that actually see a WebP.
   */
  prepareWebp?: () => Promise<void>;
}

/**
 * The decode options for serving a model: the service-wide limits plus the
 * model's DCT-scaling floor. The HTTP/queue service and the fuzzer
 * (scripts/fuzz.ts) both decode with exactly these.
 */
export function decodeOptionsFor(spec: PreprocessSpec): DecodeOptions {
  return {
    maxPixels: LIMITS.maxPixels,
    maxPixelsFullDecode: LIMITS.maxPixelsFullDecode,
    maxCoefficientBytes: LIMITS.maxJpegCoefficientBytes,
    maxJpegScans: LIMITS.maxJpegScans,
    minShortSide: minDecodeShortSide(spec),
    region: (width, height, orientation) => preprocessRegion(width, height, orientation, spec),
  };
}

const mp = (pixels: number): string => `${(pixels / 1e6).toFixed(1)} MP`;

export async function decodeImage(bytes: Uint8Array, opts: DecodeOptions): Promise<DecodedImage> {
  return (await decodeImageWithInfo(bytes, opts)).image;
}

/** Like decodeImage, also returning the header facts (the stored size, even when decoded scaled). */
export async function decodeImageWithInfo(
  bytes: Uint8Array,
  opts: DecodeOptions,
): Promise<{ info: ImageInfo; image: DecodedImage }> {
  const info = probeImage(bytes);
  const { width, height } = info;
  if (width === 0 || height === 0) {
    throw new ApiError("invalid_image", `${info.format.toUpperCase()} declares an empty image (${width}x${height})`);
  }
  const pixels = width * height;
  if (pixels > opts.maxPixels) {
    throw new ApiError(
      "image_too_large",
      `image is ${width}x${height} = ${mp(pixels)}; the limit is ${mp(opts.maxPixels)}`,
    );
  }
  const fullLimit = opts.maxPixelsFullDecode ?? opts.maxPixels;
  if (info.format !== "jpeg" && pixels > fullLimit) {
    throw new ApiError(
      "image_too_large",
      `${info.format.toUpperCase()} image is ${width}x${height} = ${mp(pixels)}; ${info.format.toUpperCase()} is decoded at full resolution and the limit for it is ${mp(fullLimit)} (JPEGs up to ${mp(opts.maxPixels)} are accepted)`,
    );
  }

  // Outside the try below: a codec that cannot be instantiated is a server fault, not a bad image.
  if (info.format === "webp" && opts.prepareWebp) await opts.prepareWebp();

  let decoded: DecodedImage;
  try {
    decoded = await runCodec(bytes, info, opts);
  } catch (e) {
    if (isApiError(e) || e instanceof WebpDecoderNotInitialisedError) throw e;
    throw new ApiError("invalid_image", `${info.format.toUpperCase()} data is corrupt or truncated (${describe(e)})`);
  }

  const scale = decoded.scale ?? 1;
  const expectW = Math.ceil(width / scale);
  const expectH = Math.ceil(height / scale);
  if (decoded.width !== expectW || decoded.height !== expectH || decoded.data.length !== expectW * expectH * 3) {
    throw new ApiError(
      "invalid_image",
      `${info.format.toUpperCase()} header says ${width}x${height} but the image data decodes to ${decoded.width}x${decoded.height}`,
    );
  }
  return { info, image: decoded };
}

function runCodec(bytes: Uint8Array, info: ImageInfo, opts: DecodeOptions): Promise<DecodedImage> | DecodedImage {
  switch (info.format) {
    case "jpeg": {
      const region = opts.region;
      const { scaleDenom, ...image } = decodeJpegScaled(bytes, {
        minShortSide: opts.minShortSide ?? Number.POSITIVE_INFINITY,
        maxPixels: opts.maxPixels,
        ...(opts.maxCoefficientBytes === undefined ? {} : { maxCoefficientBytes: opts.maxCoefficientBytes }),
        ...(opts.maxJpegScans === undefined ? {} : { maxScans: opts.maxJpegScans }),
        ...(region ? { region: (w: number, h: number) => region(w, h, info.orientation) } : {}),
      });
      return { ...image, scale: scaleDenom };
    }
    case "png":
      return decodePng(bytes, info);
    case "webp":
      return decodeWebp(bytes, info);
  }
}

/** A short, safe description of a library error for the client message. */
function describe(e: unknown): string {
  const raw = e instanceof Error ? e.message : typeof e === "string" ? e : "decoder failure";
  // Library messages can embed offsets or data; keep them short and printable.
  return raw.replace(/[^\x20-\x7e]/g, "?").slice(0, 160) || "decoder failure";
}
