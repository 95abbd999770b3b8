import { Hono } from "hono";
import { ApiError } from "../errors";
import { readImageBody } from "../http/body";
import { ImageTags, tagKey } from "../jobs/autotag";
import { ImageKey } from "../jobs/schema";
import { probeImage } from "../pipeline/decode";
import { sha256Hex } from "../util/hash";

const MIME = { jpeg: "image/jpeg", png: "image/png", webp: "image/webp" } as const;

function keyParam(raw: string): string {
  const parsed = ImageKey.safeParse(raw);
  if (!parsed.success) throw new ApiError("invalid_parameter", `invalid key: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

export const imageRoutes = new Hono<{ Bindings: Env }>()
  /** Upload into the images bucket (used by the CLI for local folders). Only real images are stored. */
  .put("/:key{.+}", async (c) => {
    const key = keyParam(c.req.param("key"));
    const bytes = await readImageBody(c.req.raw);
    const info = probeImage(bytes); // 415 / 422 before anything is stored
    const sha256 = await sha256Hex(bytes);
    await c.env.IMAGES.put(key, bytes, {
      httpMetadata: { contentType: MIME[info.format] },
      customMetadata: { sha256 },
    });
    return c.json(
      { key, bytes: bytes.byteLength, sha256, format: info.format, width: info.width, height: info.height },
      201,
    );
  });

export const tagRoutes = new Hono<{ Bindings: Env }>()
  /** Tags written by the auto-tagging consumer for an object in the images bucket. */
  .get("/:key{.+}", async (c) => {
    const key = keyParam(c.req.param("key"));
    const raw = await c.env.RESULTS.get(tagKey(key), "json");
    const parsed = ImageTags.safeParse(raw);
    if (raw === null || !parsed.success) throw new ApiError("not_found", `no tags for ${key} (yet)`);
    return c.json(parsed.data);
  });
