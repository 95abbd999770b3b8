import { ApiError, isApiError } from "../errors";
import { LIMITS } from "../limits";
import { readAtMost } from "../util/stream";
import type { ItemRef } from "./schema";

/**
 * A fault worth retrying (R2 hiccup, origin 5xx, timeout). Anything else that
 * goes wrong while loading an image is the item's own problem (missing object,
 * 404, not an image) and fails the item without retries.
 */
export class TransientError extends Error {
  override name = "TransientError";
}

/** A permanent, per-item failure with a code for the results. */
export class ItemError extends Error {
  override name = "ItemError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export type ImageLoader = (ref: ItemRef) => Promise<Uint8Array>;

/** Loads an item's bytes from the images bucket or its URL. */
export function imageLoader(images: R2Bucket): ImageLoader {
  return (ref) => ("key" in ref ? loadFromR2(images, ref.key) : loadFromUrl(ref.url));
}

async function loadFromR2(images: R2Bucket, key: string): Promise<Uint8Array> {
  let object: R2ObjectBody | null;
  try {
    object = await images.get(key);
  } catch (e) {
    throw new TransientError(`R2 get ${key} failed: ${errorText(e)}`);
  }
  if (!object) throw new ItemError("source_not_found", `no object at key ${key} in the images bucket`);
  if (object.size > LIMITS.maxBodyBytes) {
    throw new ItemError("payload_too_large", `object is ${object.size} bytes; the limit is ${LIMITS.maxBodyBytes}`);
  }
  return new Uint8Array(await object.arrayBuffer());
}

async function loadFromUrl(url: string): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(LIMITS.urlFetch.timeoutMs), redirect: "follow" });
  } catch (e) {
    throw new TransientError(`fetching ${url} failed: ${errorText(e)}`);
  }
  if (res.status === 429 || res.status >= 500) {
    await res.body?.cancel();
    throw new TransientError(`fetching ${url}: HTTP ${res.status}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new ItemError("source_fetch_failed", `fetching ${url}: HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > LIMITS.maxBodyBytes) {
    await res.body?.cancel();
    throw new ItemError("payload_too_large", `${url} is ${declared} bytes; the limit is ${LIMITS.maxBodyBytes}`);
  }
  let bytes: Uint8Array | null;
  try {
    bytes = await readAtMost(res.body, LIMITS.maxBodyBytes);
  } catch (e) {
    throw new TransientError(`reading ${url} failed: ${errorText(e)}`);
  }
  if (!bytes) throw new ItemError("payload_too_large", `${url} exceeds ${LIMITS.maxBodyBytes} bytes`);
  return bytes;
}

/**
 * Sorts an error from loading + classifying an item into retry-or-fail:
 * client-class API errors (bad image, too large, unsupported) and ItemErrors
 * fail the item; 5xx API errors (model unavailable), TransientErrors and
 * unexpected exceptions are retried (and end in the dead-letter queue if they persist).
 */
export function classifyFailure(
  e: unknown,
): { retry: true; reason: string } | { retry: false; code: string; message: string } {
  if (e instanceof ItemError) return { retry: false, code: e.code, message: e.message };
  if (isApiError(e) && e.status < 500) return { retry: false, code: e.code, message: e.message };
  if (e instanceof ApiError || e instanceof TransientError) return { retry: true, reason: e.message };
  return { retry: true, reason: `unexpected: ${errorText(e)}` };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
