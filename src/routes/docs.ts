import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
import { isPublic } from "../auth/middleware";
import { DOCS_CSS, DOCS_HTML, DOCS_JS } from "../http/docs-page";
import { type AppEnv, errorResponses } from "../http/openapi";
import { LIMITS } from "../limits";

/** The OpenAPI 3.1 document of every route registered on `app`. */
export function openApiDocument(app: OpenAPIHono<AppEnv>) {
  return withSecurity(
    app.getOpenAPI31Document({
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
    }),
  );
}

type OpenApiDoc = ReturnType<OpenAPIHono<AppEnv>["getOpenAPI31Document"]>;

/**
 * Declares the bearer-key scheme and marks each operation the way the auth
 * middleware treats it, from the same isPublic() rule, so the spec cannot
 * claim a route is open when the middleware guards it (or the reverse).
 */
function withSecurity(doc: OpenApiDoc): OpenApiDoc {
  doc.components = {
    ...doc.components,
    securitySchemes: {
      bearerAuth: { type: "http", scheme: "bearer", description: "An API key from `npm run keys -- create`" },
    },
  };
  const authErrors = errorResponses("unauthorized", "forbidden", "rate_limited", "auth_unavailable");
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const concrete = path.replace(/\{[^}]+\}/g, "x");
    for (const method of ["get", "put", "post", "delete"] as const) {
      const op = item?.[method];
      if (!op) continue;
      if (!concrete.startsWith("/v1/") || isPublic(method.toUpperCase(), concrete)) {
        op.security = [];
        continue;
      }
      op.security = [{ bearerAuth: [] }];
      op.responses = { ...authErrors, ...op.responses };
    }
  }
  return doc;
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
