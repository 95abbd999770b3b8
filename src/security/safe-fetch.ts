/**
 * Fetches an image from a client-supplied URL without letting the client
 * point the service at things it must not reach or make it hold more than it
 * should. Used for job URLs and for classify-by-URL.
 *
 *  1. The URL and every redirect target pass `checkFetchUrl` (scheme,
 *     credentials, length, host policy). Redirects are followed by hand
 *     (`redirect: "manual"`), at most `maxRedirects` of them, because an
 *     automatically followed redirect would skip the host check.
 *  2. One deadline covers all hops and the body.
 *  3. The origin must answer 2xx with an image/* or application/octet-stream
 *     Content-Type (none at all counts as octet-stream, RFC 9110 §8.3), and the
 *     body is read with a byte cap while streaming.
 *  4. The bytes must be an image we decode, by magic bytes (probe.ts): the
 *     Content-Type alone proves nothing.
 *
 * Every failure is a UrlFetchError (an ApiError with a 4xx status) whose
 * `transient` flag tells a job consumer whether to retry.
 */
import { isApiError } from "../errors";
import { LIMITS } from "../limits";
import { probeImage } from "../pipeline/codecs/probe";
import type { ImageInfo } from "../pipeline/types";
import { readAtMost } from "../util/stream";
import { checkFetchUrl, shortUrl, UrlFetchError, type UrlPolicyOptions } from "./url-policy";

export { UrlFetchError } from "./url-policy";

/** The subset of `fetch` this module uses; tests inject a transport (see test/node/safe-fetch.test.ts). */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface SafeFetchOptions extends UrlPolicyOptions {
  timeoutMs?: number;
  maxRedirects?: number;
  maxBytes?: number;
  /** Aborts the fetch from outside (e.g. the request was cancelled). */
  signal?: AbortSignal;
  /**
   * The transport, `globalThis.fetch` by default. Code-only (never read from
   * env or config): tests use it to reach a local server under a public-looking
   * host name, so the policy itself never needs a loopback exception.
   */
  fetch?: FetchLike;
}

export interface FetchedImage {
  bytes: Uint8Array;
  /** Header facts from the magic-byte probe (format, stored size). */
  info: ImageInfo;
  /** The URL that finally answered, after redirects. */
  url: string;
  redirects: number;
  contentType: string | null;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = "edgetag/0.1 (image classification; fetches one image per request)";

export async function safeFetchImage(rawUrl: string, opts: SafeFetchOptions = {}): Promise<FetchedImage> {
  const timeoutMs = opts.timeoutMs ?? LIMITS.urlFetch.timeoutMs;
  const maxRedirects = opts.maxRedirects ?? LIMITS.urlFetch.maxRedirects;
  const maxBytes = opts.maxBytes ?? LIMITS.urlFetch.maxBytes;
  const transport: FetchLike = opts.fetch ?? ((url, init) => fetch(url, init));

  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const onOuterAbort = () => deadline.abort();
  opts.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const timedOut = () => deadline.signal.aborted && !opts.signal?.aborted;
  const timeoutError = () =>
    new UrlFetchError("source_timeout", `fetching the image took longer than ${timeoutMs / 1000} s`, true);

  try {
    let url = await checkFetchUrl(rawUrl, opts);
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await transport(url.href, {
          method: "GET",
          redirect: "manual",
          signal: deadline.signal,
          headers: { accept: "image/*, application/octet-stream;q=0.5", "user-agent": USER_AGENT },
        });
      } catch (e) {
        if (timedOut()) throw timeoutError();
        if (opts.signal?.aborted) throw opts.signal.reason ?? e;
        throw new UrlFetchError(
          "source_fetch_failed",
          `fetching ${shortUrl(url.href)} failed: ${e instanceof Error ? e.message : String(e)}`,
          true,
        );
      }

      if (REDIRECTS.has(res.status)) {
        await discard(res);
        const location = res.headers.get("location");
        if (!location) {
          throw new UrlFetchError(
            "source_bad_redirect",
            `${shortUrl(url.href)} answered ${res.status} without a Location`,
          );
        }
        if (hop + 1 > maxRedirects) {
          throw new UrlFetchError(
            "source_too_many_redirects",
            `more than ${maxRedirects} redirects (last from ${shortUrl(url.href)})`,
          );
        }
        let next: string;
        try {
          next = new URL(location, url).href;
        } catch {
          throw new UrlFetchError(
            "source_bad_redirect",
            `${shortUrl(url.href)} redirected to an invalid URL "${shortUrl(location)}"`,
          );
        }
        url = await checkFetchUrl(next, opts, `redirect target #${hop + 1}`);
        continue;
      }

      if (!res.ok) {
        await discard(res);
        const transient = res.status === 429 || res.status >= 500;
        throw new UrlFetchError(
          "source_fetch_failed",
          `fetching ${shortUrl(url.href)}: the origin answered HTTP ${res.status}`,
          transient,
        );
      }

      const contentType = res.headers.get("content-type");
      const media = (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
      if (media !== "" && !media.startsWith("image/") && media !== "application/octet-stream") {
        await discard(res);
        throw new UrlFetchError(
          "source_not_image",
          `${shortUrl(url.href)} is "${media.slice(0, 60)}", not an image (expected image/* or application/octet-stream)`,
        );
      }

      const declared = Number(res.headers.get("content-length") ?? Number.NaN);
      if (Number.isFinite(declared) && declared > maxBytes) {
        await discard(res);
        throw new UrlFetchError(
          "payload_too_large",
          `${shortUrl(url.href)} is ${declared} bytes; the limit is ${maxBytes}`,
        );
      }

      const bytes = await readBody(res, maxBytes, deadline.signal).catch((e: unknown) => {
        if (timedOut()) throw timeoutError();
        if (opts.signal?.aborted) throw opts.signal.reason ?? e;
        throw new UrlFetchError(
          "source_fetch_failed",
          `reading ${shortUrl(url.href)} failed: ${e instanceof Error ? e.message : String(e)}`,
          true,
        );
      });
      if (!bytes) {
        throw new UrlFetchError("payload_too_large", `${shortUrl(url.href)} is larger than ${maxBytes} bytes`);
      }

      let info: ImageInfo;
      try {
        info = probeImage(bytes);
      } catch (e) {
        // 415 unsupported / 422 invalid header, with the format named: keep it,
        // but say where the bytes came from.
        if (isApiError(e)) throw new UrlFetchError(e.code, `${shortUrl(url.href)}: ${e.message}`);
        throw e;
      }
      return { bytes, info, url: url.href, redirects: hop, contentType };
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onOuterAbort);
  }
}

/** Reads the body under the byte cap; rejects when the deadline fires even if the stream ignores the signal. */
async function readBody(res: Response, max: number, signal: AbortSignal): Promise<Uint8Array | null> {
  const reading = readAtMost(res.body, max);
  if (signal.aborted) throw new Error("aborted");
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  reading.catch(() => undefined); // if the deadline wins, the read's own rejection is expected
  try {
    return await Promise.race([reading, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** Releases a response body we will not read (keeps connections from leaking). */
async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // already closed or errored: nothing to release
  }
}
