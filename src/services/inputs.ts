import { ApiError, isApiError } from "../errors";
import { ItemError, imageLoader, TransientError } from "../jobs/sources";

/** An image as a request gave it: bytes in the body, or a URL to fetch. */
export type ImageInput = { kind: "bytes"; bytes: Uint8Array } | { kind: "url"; url: string };

export type FetchImage = (url: string) => Promise<Uint8Array>;

export async function resolveImage(input: ImageInput, fetchImage: FetchImage): Promise<Uint8Array> {
  return input.kind === "bytes" ? input.bytes : fetchImage(input.url);
}

/**
 * The one place an API request turns a URL into image bytes. It reuses the
 * bulk jobs' loader (timeout, redirect cap, streamed size cap) and maps its
 * verdicts onto API errors: the origin's 4xx is the caller's problem (422),
 * an unreachable or failing origin is a 502 worth retrying.
 */
export async function fetchImageUrl(url: string, images: R2Bucket): Promise<Uint8Array> {
  try {
    return await imageLoader(images)({ url });
  } catch (e) {
    if (isApiError(e)) throw e;
    if (e instanceof ItemError) {
      throw new ApiError(e.code === "payload_too_large" ? "payload_too_large" : "source_fetch_failed", e.message);
    }
    if (e instanceof TransientError) throw new ApiError("source_unavailable", e.message);
    throw e;
  }
}
