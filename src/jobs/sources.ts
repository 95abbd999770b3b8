import { ApiError, isApiError } from "../errors";
import { LIMITS } from "../limits";
import { safeFetchImage, UrlFetchError } from "../security/safe-fetch";
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

/**
 * Not a failure: a prefetch (src/jobs/prefetch.ts) found the image bigger
 * than its share of the prefetch budget and stopped. The consumer loads the
 * item again, without that cap, when its turn comes.
 */
export class OverPrefetchBudget extends Error {
  override name = "OverPrefetchBudget";
}

export interface LoadOptions {
  /** Prefetch cap, below the real size limits: a bigger image ends in OverPrefetchBudget. */
  prefetchMaxBytes?: number;
}

export type ImageLoader = (ref: ItemRef, opts?: LoadOptions) => Promise<Uint8Array>;

/** Loads an item's bytes from the images bucket or its URL. */
export function imageLoader(images: R2Bucket): ImageLoader {
  return (ref, opts) =>
    "key" in ref ? loadFromR2(images, ref.key, opts?.prefetchMaxBytes) : loadFromUrl(ref.url, opts?.prefetchMaxBytes);
}

async function loadFromR2(images: R2Bucket, key: string, prefetchMaxBytes?: number): Promise<Uint8Array> {
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
  if (prefetchMaxBytes !== undefined && object.size > prefetchMaxBytes) {
    await object.body.cancel().catch(() => undefined);
    throw new OverPrefetchBudget(`object is ${object.size} bytes; the prefetch cap is ${prefetchMaxBytes}`);
  }
  return new Uint8Array(await object.arrayBuffer());
}

/**
 * URL items go through the SSRF-safe fetch. Its refusals (forbidden host,
 * not an image, too large, 4xx origin) fail the item for good; origin 5xx/429,
 * network errors and timeouts are retried. A prefetch passes a cap below the
 * real limit, so "too large" then only means "load it again without the cap".
 */
async function loadFromUrl(url: string, prefetchMaxBytes?: number): Promise<Uint8Array> {
  const capped = prefetchMaxBytes !== undefined && prefetchMaxBytes < LIMITS.urlFetch.maxBytes;
  try {
    return (await safeFetchImage(url, capped ? { maxBytes: prefetchMaxBytes } : {})).bytes;
  } catch (e) {
    if (e instanceof UrlFetchError) {
      if (capped && e.code === "payload_too_large") throw new OverPrefetchBudget(e.message);
      if (e.transient) throw new TransientError(e.message);
      throw new ItemError(e.code, e.message);
    }
    throw e;
  }
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
