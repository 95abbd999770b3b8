/**
 * Wires the pre-compiled codec wasm into the decoders. This is the only place a
 * codec .wasm is imported: wrangler compiles it at upload time (workerd cannot
 * compile wasm from bytes), while Node tests compile the same file themselves
 * and call the same init function.
 */
import webpDecoderWasm from "@jsquash/webp/codec/dec/webp_dec.wasm";
import { initWebpDecoder } from "./webp";

let ready: Promise<void> | undefined;

export function ensureCodecs(): Promise<void> {
  ready ??= initWebpDecoder(webpDecoderWasm).catch((e: unknown) => {
    ready = undefined; // a failed init is retried by the next WebP request, not cached forever
    throw e;
  });
  return ready;
}
