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

/**
 * URL items go through the SSRF-safe fetch. Its refusals (forbidden host,
 * not an image, too large, 4xx origin) fail the item for good; origin 5xx/429,
 * network errors and timeouts are retried.
 */
async function loadFromUrl(url: string): Promise<Uint8Array> {
  try {
    return (await safeFetchImage(url)).bytes;
  } catch (e) {
    if (e instanceof UrlFetchError) {
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
