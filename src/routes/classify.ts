import { createRoute, z } from "@hono/zod-openapi";
import { readBatchInput, readImageInput } from "../http/body";
import { conditional } from "../http/conditional";
import { serviceDeps } from "../http/deps";
import { errorResponses, IMAGE_INPUT_ERRORS, router, schemaRef } from "../http/openapi";
import {
  BatchForm,
  BatchJson,
  ImageFacts,
  ImageForm,
  ImageJson,
  MinScoreQuery,
  ModelInfo,
  ModelQuery,
  Prediction,
  Timings,
  TopKQuery,
} from "../http/schemas";
import { LIMITS } from "../limits";
import { getModel } from "../models/registry";
import { classifyBatch } from "../services/batch";
import { classify } from "../services/classify";
import { resolveImage } from "../services/inputs";
import { hashImage } from "../services/run";

const ClassifyQuery = z.object({ model: ModelQuery, top_k: TopKQuery, min_score: MinScoreQuery });

export const ClassifyResult = z
  .object({
    model: ModelInfo,
    predictions: z.array(Prediction),
    image: ImageFacts,
    cached: z.boolean().openapi({ description: "served from the KV result cache (no inference)" }),
    timings_ms: Timings,
  })
  .openapi("ClassifyResult");

const BatchItemResult = z
  .union([
    z.object({
      index: z.number().int().min(0),
      predictions: z.array(Prediction),
      image: ImageFacts,
      cached: z.boolean(),
      timings_ms: Timings,
    }),
    z.object({ index: z.number().int().min(0), error: z.object({ code: z.string(), message: z.string() }) }),
  ])
  .openapi("BatchItemResult");

const BatchResult = z
  .object({
    model: ModelInfo,
    counts: z.object({ total: z.number().int(), succeeded: z.number().int(), failed: z.number().int() }),
    results: z.array(BatchItemResult).openapi({ description: "one per image, in request order" }),
  })
  .openapi("BatchResult");

/** The body forms one image can take (classify and embed share them). */
export const imageBody = {
  required: true,
  description:
    'The image: raw bytes (image/jpeg, image/png, image/webp or application/octet-stream), multipart with an "image" file (or "url" text) field, or JSON with exactly one of "image" (base64) and "url".',
  content: {
    "image/*": { schema: { type: "string" as const, format: "binary" } },
    "application/octet-stream": { schema: { type: "string" as const, format: "binary" } },
    "multipart/form-data": { schema: schemaRef("ImageForm") },
    "application/json": { schema: schemaRef("ImageJson") },
  },
};

/** ETag and Cache-Control of a cacheable result; the same headers come with its 304. */
export const resultHeaders = {
  ETag: {
    description: "Strong validator: image sha256 + model build + parameters. Send it back as If-None-Match.",
    schema: { type: "string" as const },
  },
  "Cache-Control": {
    description: `public; max-age is the result cache TTL for uploaded bytes, ${LIMITS.urlResultMaxAgeSeconds} s for a URL`,
    schema: { type: "string" as const },
  },
};

export const ifNoneMatchHeader = z.object({
  "if-none-match": z
    .string()
    .optional()
    .openapi({ description: "An ETag from an earlier identical request: answered 304 without inference" }),
});

const classifyRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["classify"],
  summary: "Classify one image",
  description:
    "Decodes the image, runs the model and returns the top-k classes. Results are cached in KV by image sha256 + model build. Untrained models (trained: false) return labels that are not meaningful.",
  request: { query: ClassifyQuery, headers: ifNoneMatchHeader, body: imageBody },
  responses: {
    200: {
      description: "Predictions, best first",
      headers: resultHeaders,
      content: { "application/json": { schema: ClassifyResult } },
    },
    304: { description: "Not modified: the If-None-Match ETag is this result's", headers: resultHeaders },
    ...errorResponses(...IMAGE_INPUT_ERRORS),
  },
});

const batchRoute = createRoute({
  method: "post",
  path: "/batch",
  tags: ["classify"],
  summary: `Classify up to ${LIMITS.batchMaxItems} images in one request`,
  description:
    "Results come back in request order. An item that fails (bad base64, unreachable URL, not an image...) gets its own error and the others still succeed; a model that cannot load fails the whole request with 503.",
  request: {
    query: ClassifyQuery,
    body: {
      required: true,
      content: {
        "multipart/form-data": { schema: schemaRef("BatchForm") },
        "application/json": { schema: schemaRef("BatchJson") },
      },
    },
  },
  responses: {
    200: { description: "One result or error per image", content: { "application/json": { schema: BatchResult } } },
    ...errorResponses(
      "invalid_parameter",
      "bad_request",
      "empty_body",
      "unknown_model",
      "payload_too_large",
      "unsupported_media_type",
      "model_unavailable",
    ),
  },
});

export const classifyRoutes = router()
  .openapi(classifyRoute, async (c) => {
    const q = c.req.valid("query");
    const model = getModel(q.model);
    const input = await readImageInput(c.req.raw);
    const deps = serviceDeps(c);
    const bytes = await resolveImage(input, deps.fetchImage);
    const hash = await hashImage(bytes);
    const params = { top_k: q.top_k, min_score: q.min_score };
    const tag = { kind: "classify", imageSha: hash.sha256, model, params } as const;
    const { headers, notModified } = await conditional(c, tag, input.kind === "url");
    if (notModified) return notModified;
    const result = await classify({ bytes, hash, model, topK: q.top_k, minScore: q.min_score }, deps);
    return c.json(result, 200, headers);
  })
  .openapi(batchRoute, async (c) => {
    const q = c.req.valid("query");
    const model = getModel(q.model);
    const items = await readBatchInput(c.req.raw);
    const result = await classifyBatch(items, { model, topK: q.top_k, minScore: q.min_score }, serviceDeps(c));
    return c.json(result, 200);
  });

for (const [name, schema] of Object.entries({ ImageJson, ImageForm, BatchJson, BatchForm })) {
  classifyRoutes.openAPIRegistry.register(name, schema);
}
