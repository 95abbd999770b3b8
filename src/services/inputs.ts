import { ApiError } from "../errors";
import { safeFetchImage, UrlFetchError } from "../security/safe-fetch";

/** An image as a request gave it: bytes in the body, or a URL to fetch. */
export type ImageInput = { kind: "bytes"; bytes: Uint8Array } | { kind: "url"; url: string };

export type FetchImage = (url: string) => Promise<Uint8Array>;

export async function resolveImage(input: ImageInput, fetchImage: FetchImage): Promise<Uint8Array> {
  return input.kind === "bytes" ? input.bytes : fetchImage(input.url);
}

/**
 * The one place an API request turns a URL into image bytes: the SSRF-safe
 * fetch (scheme, credentials, private hosts, re-checked redirects, deadline,
 * streamed byte cap, content-type and magic bytes). Its refusals are already
 * ApiErrors with specific codes; a transient failure (network error, origin
 * 5xx/429) becomes a 502 the client may retry.
 */
export async function fetchImageUrl(url: string): Promise<Uint8Array> {
  try {
    return (await safeFetchImage(url)).bytes;
  } catch (e) {
    if (e instanceof UrlFetchError && e.transient) throw new ApiError("source_unavailable", e.message);
    throw e;
  }
}
