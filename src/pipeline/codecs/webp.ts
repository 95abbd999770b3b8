/**
 * WebP -> packed RGB8 via jSquash's libwebp build.
 *
 * workerd forbids compiling WebAssembly from bytes, so the caller hands us a
 * pre-compiled WebAssembly.Module (imported as a module by the worker, or
 * compiled from the file in Node tests). jSquash's `init(module)` instantiates
 * it synchronously with `new WebAssembly.Instance`, which is allowed.
 *
 * Note: @jsquash/webp 1.5.0's decode.d.ts still declares the old signature
 * `init(moduleOptionOverrides?)`; the JS accepts `init(module, options?)`.
 * We call it through a correctly typed alias rather than suppressing errors.
 *
 * jSquash's own `decode()` would lazily call `init()` without a module, which
 * fetches the .wasm relative to import.meta.url - impossible in workerd - so
 * we refuse to decode until `initWebpDecoder` has run.
 */
import jsquashDecode, { init as jsquashInit } from "@jsquash/webp/decode";
import type { DecodedImage, ImageInfo } from "../types";

/** What the Emscripten glue returns (a DOM ImageData or its polyfill). */
interface RgbaImage {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

const initWithModule = jsquashInit as unknown as (module: WebAssembly.Module) => Promise<void>;

/** A server configuration bug, not a client error: deliberately not an ApiError (-> 500). */
export class WebpDecoderNotInitialisedError extends Error {
  constructor() {
    super("WebP decoder used before initWebpDecoder(module) was called");
    this.name = "WebpDecoderNotInitialisedError";
  }
}

let wasmModule: WebAssembly.Module | undefined;
let ready: Promise<void> | undefined;

/** Idempotent and memoised: concurrent and repeated calls share one instantiation. */
export function initWebpDecoder(module: WebAssembly.Module): Promise<void> {
  if (ready && module === wasmModule) return ready;
  wasmModule = module;
  ensureImageDataGlobal();
  const attempt = initWithModule(module);
  ready = attempt.catch((e: unknown) => {
    ready = undefined; // let a later call retry instead of caching the failure
    throw e;
  });
  return ready;
}

export function isWebpDecoderReady(): boolean {
  return ready !== undefined;
}

export async function decodeWebp(bytes: Uint8Array, info: ImageInfo): Promise<DecodedImage> {
  if (!ready || !wasmModule) throw new WebpDecoderNotInitialisedError();
  await ready;
  let image: RgbaImage;
  try {
    image = (await jsquashDecode(exactArrayBuffer(bytes))) as RgbaImage;
  } catch (e) {
    // An Emscripten abort (e.g. a failed allocation) leaves that instance
    // unusable; re-instantiate from the same compiled module for later calls.
    if (!(e instanceof Error && e.message === "Decoding error")) {
      ready = undefined;
      void initWebpDecoder(wasmModule).catch(() => undefined);
    }
    throw e;
  }
  const { width, height } = image;
  return { ...info, width, height, data: rgbaToRgbOverWhite(image.data, width * height) };
}

/**
 * Compacts RGBA into RGB in place (the write cursor never overtakes the read
 * cursor), so a large image never needs a second full-size buffer. The result
 * is a view on the first 3/4 of the RGBA buffer.
 */
function rgbaToRgbOverWhite(rgba: Uint8ClampedArray | Uint8Array, pixels: number): Uint8Array {
  const px = new Uint8Array(rgba.buffer, rgba.byteOffset, pixels * 4);
  for (let i = 0, o = 0; i < pixels * 4; i += 4, o += 3) {
    const a = px[i + 3] ?? 255;
    let r = px[i] ?? 0;
    let g = px[i + 1] ?? 0;
    let b = px[i + 2] ?? 0;
    if (a !== 255) {
      const w = (255 - a) * 255;
      r = Math.round((a * r + w) / 255);
      g = Math.round((a * g + w) / 255);
      b = Math.round((a * b + w) / 255);
    }
    px[o] = r;
    px[o + 1] = g;
    px[o + 2] = b;
  }
  return px.subarray(0, pixels * 3);
}

/** Embind copies the input; give it exactly these bytes, not the whole backing buffer. */
function exactArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  return bytes.slice().buffer;
}

/**
 * The Emscripten glue constructs `new ImageData(...)`. It polyfills ImageData
 * only when it recognises Node or Workers; make sure it exists either way.
 */
function ensureImageDataGlobal(): void {
  const g = globalThis as { ImageData?: unknown };
  if (typeof g.ImageData === "function") return;
  g.ImageData = class ImageDataShim {
    constructor(
      readonly data: Uint8ClampedArray,
      readonly width: number,
      readonly height: number,
    ) {}
  };
}
