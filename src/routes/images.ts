import { createRoute, type RouteConfig, z } from "@hono/zod-openapi";
import { ApiError } from "../errors";
import { readImageBody } from "../http/body";
import { errorResponses, router } from "../http/openapi";
import { ImageTags, tagKey } from "../jobs/autotag";
import { ImageKey } from "../jobs/schema";
import { probeImage } from "../pipeline/decode";
import { sha256Hex } from "../util/hash";

const MIME = { jpeg: "image/jpeg", png: "image/png", webp: "image/webp" } as const;

const KeyParams = z.object({
  key: ImageKey.openapi({ description: "R2 key in the images bucket; may contain /", example: "photos/cat.jpg" }),
});

/**
 * Keys contain slashes, so Hono must route these paths as `:key{.+}`, which
 * is not an OpenAPI path: the handler is registered under the regex path
 * (hidden from the spec) and the spec gets the plain `{key}` path.
 */
function wildcardKey<R extends RouteConfig>(route: R): { routing: R & { hide: true }; documented: R } {
  return { routing: { ...route, path: route.path.replace("{key}", "{key{.+}}"), hide: true }, documented: route };
}

const Uploaded = z
  .object({
    key: z.string(),
    bytes: z.number().int().positive(),
    sha256: z.string(),
    format: z.enum(["jpeg", "png", "webp"]),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
  })
  .openapi("ImageUploaded");

const Tags = ImageTags.openapi("ImageTags");

const putImage = wildcardKey(
  createRoute({
    method: "put",
    path: "/{key}",
    tags: ["images"],
    summary: "Upload an image into the images bucket",
    description:
      "Only real JPEG, PNG or WebP images are stored (the header is probed first). Used by the CLI for local folders.",
    request: {
      params: KeyParams,
      body: {
        required: true,
        content: {
          "image/*": { schema: { type: "string", format: "binary" } },
          "application/octet-stream": { schema: { type: "string", format: "binary" } },
        },
      },
    },
    responses: {
      201: { description: "Stored", content: { "application/json": { schema: Uploaded } } },
      ...errorResponses(
        "invalid_parameter",
        "bad_request",
        "empty_body",
        "payload_too_large",
        "image_too_large",
        "unsupported_media_type",
        "invalid_image",
      ),
    },
  }),
);

const getTags = wildcardKey(
  createRoute({
    method: "get",
    path: "/{key}",
    tags: ["images"],
    summary: "Tags the auto-tagger wrote for an object in the images bucket",
    request: { params: KeyParams },
    responses: {
      200: {
        description: "The tags (or the error that stopped tagging)",
        content: { "application/json": { schema: Tags } },
      },
      ...errorResponses("invalid_parameter", "not_found"),
    },
  }),
);

export const imageRoutes = router().openapi(putImage.routing, async (c) => {
  const { key } = c.req.valid("param");
  const bytes = await readImageBody(c.req.raw);
  const info = probeImage(bytes); // 415 / 422 before anything is stored
  const sha256 = await sha256Hex(bytes);
  await c.env.IMAGES.put(key, bytes, { httpMetadata: { contentType: MIME[info.format] }, customMetadata: { sha256 } });
  return c.json(
    { key, bytes: bytes.byteLength, sha256, format: info.format, width: info.width, height: info.height },
    201,
  );
});
imageRoutes.openAPIRegistry.registerPath(putImage.documented);

export const tagRoutes = router().openapi(getTags.routing, async (c) => {
  const { key } = c.req.valid("param");
  const raw = await c.env.RESULTS.get(tagKey(key), "json");
  const parsed = ImageTags.safeParse(raw);
  if (raw === null || !parsed.success) throw new ApiError("not_found", `no tags for ${key} (yet)`);
  return c.json(parsed.data, 200);
});
tagRoutes.openAPIRegistry.registerPath(getTags.documented);
