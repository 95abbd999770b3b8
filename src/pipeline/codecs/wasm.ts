/**
 * Wires the pre-compiled codec wasm into the decoders. This is the only place a
 * codec .wasm is imported: wrangler compiles it at upload time (workerd cannot
 * compile wasm from bytes), while Node tests compile the same file themselves
 * and call the same init function.
 */
import webpDecoderWasm from "@jsquash/webp/codec/dec/webp_dec.wasm";
import { sleep } from "../../util/isolate-lock";
import { initWebpDecoder, isWebpDecoderReady } from "./webp";

let initialising = false;

/**
 * Concurrent requests poll instead of awaiting the initialising request's
 * promise (see util/isolate-lock.ts); a failed init is retried by the next
 * request rather than cached forever.
 */
export async function ensureCodecs(): Promise<void> {
  while (initialising) await sleep(2);
  if (isWebpDecoderReady()) return;
  initialising = true;
  try {
    await initWebpDecoder(webpDecoderWasm);
  } finally {
    initialising = false;
  }
}
