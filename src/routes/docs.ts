import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
import { DOCS_CSS, DOCS_HTML, DOCS_JS } from "../http/docs-page";
import type { AppEnv } from "../http/openapi";
import { LIMITS } from "../limits";

/** The OpenAPI 3.1 document of every route registered on `app`. */
export function openApiDocument(app: OpenAPIHono<AppEnv>) {
  return app.getOpenAPI31Document({
    openapi: "3.1.0",
    info: {
      title: "edgetag",
      version: "1",
      description: [
        "Image classification and embeddings at the edge: quantized ONNX models on Cloudflare Workers.",
        "",
        'Every error is JSON `{"error":{"code","message"}}` with a 4xx/5xx status.',
        `Limits: bodies up to ${LIMITS.maxBodyBytes / 1048576} MiB, images up to ${LIMITS.maxPixels} pixels (JPEG) / ${LIMITS.maxPixelsFullDecode} (PNG, WebP), top_k ${LIMITS.topK.min}-${LIMITS.topK.max}, ${LIMITS.batchMaxItems} images per batch.`,
        "Models with `trained: false` have untrained weights: their labels are not meaningful predictions.",
      ].join("\n"),
    },
    tags: [
      { name: "classify", description: "Top-k classes for an image, one or a batch" },
      { name: "embed", description: "Feature vectors for similarity search and dedup" },
      { name: "models", description: "What each model is, and whether it is trained" },
      { name: "jobs", description: "Bulk tagging through Queues, tracked by a Durable Object" },
      { name: "images", description: "The images bucket and its auto-tags" },
      { name: "health", description: "Liveness and model storage checks" },
    ],
  });
}

/**
 * An interactive reference that needs no CDN: a static page whose script reads
 * /openapi.json, renders every operation and sends real requests (files, JSON,
 * parameters). Script and styles are separate files so a strict
 * Content-Security-Policy (script-src 'self') still allows them.
 */
export const docsRoutes = new Hono<AppEnv>()
  .get("/", (c) => c.html(DOCS_HTML, 200, { "cache-control": "no-cache" }))
  .get("/docs.js", (c) =>
    c.body(DOCS_JS, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-cache" }),
  )
  .get("/docs.css", (c) =>
    c.body(DOCS_CSS, 200, { "content-type": "text/css; charset=utf-8", "cache-control": "no-cache" }),
  );
