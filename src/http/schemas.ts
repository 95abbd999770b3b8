/**
 * The zod schemas at the HTTP edge that more than one route shares. They are
 * the single source for validation, for the handlers' types and for the
 * OpenAPI document (`.openapi("Name")` makes each a named component).
 */
import { z } from "@hono/zod-openapi";
import { ERROR_STATUS } from "../errors";
import { ImageUrl } from "../jobs/schema";
import { LIMITS } from "../limits";

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS, ...(keyof typeof ERROR_STATUS)[]]),
      message: z.string(),
    }),
  })
  .openapi("Error", {
    description: "Every failure has this shape; `code` is stable, `message` is for humans.",
    example: { error: { code: "unknown_model", message: 'unknown model "resnet-9000"; available: mobilenet-v2, ...' } },
  });

export const ModelInfo = z
  .object({
    id: z.string(),
    version: z.string(),
    trained: z.boolean().openapi({ description: "false = untrained weights: the labels are not meaningful" }),
    sha256: z.string().openapi({ description: "sha256 of the model file: identifies the exact build" }),
  })
  .openapi("ModelRef");

export const Prediction = z
  .object({ label: z.string(), index: z.number().int().min(0), score: z.number().min(0).max(1) })
  .openapi("Prediction");

export const ImageFacts = z
  .object({
    sha256: z.string(),
    width: z.number().int().positive().openapi({ description: "after EXIF orientation" }),
    height: z.number().int().positive(),
    format: z.enum(["jpeg", "png", "webp"]),
  })
  .openapi("ImageFacts");

export const Timings = z.record(z.string(), z.number()).openapi("Timings", {
  description:
    "Milliseconds per stage (hash, cache_read, decode, preprocess, model_wait, infer, postprocess, total; ort_init, model_fetch, session_create on a cold load, where ort_init and model_fetch run concurrently and both count from the start of the load).",
});

export const ModelQuery = z
  .string()
  .min(1)
  .max(64)
  .optional()
  .openapi({ description: "Model id (GET /v1/models); default mobilenet-v2", example: "mobilenet-v2-nsfw" });

const topKMessage = `top_k must be an integer from ${LIMITS.topK.min} to ${LIMITS.topK.max}`;
export const TopKQuery = z.coerce
  .number({ message: topKMessage })
  .int(topKMessage)
  .min(LIMITS.topK.min, `top_k must be at least ${LIMITS.topK.min}`)
  .max(LIMITS.topK.max, `top_k must be at most ${LIMITS.topK.max}`)
  .default(LIMITS.topK.default)
  .openapi({ description: "How many classes to return, best first" });

const minScoreMessage = "min_score must be a number from 0 to 1";
export const MinScoreQuery = z.coerce
  .number({ message: minScoreMessage })
  .min(0, minScoreMessage)
  .max(1, minScoreMessage)
  .default(0)
  // Spelled out: zod-to-openapi renders a coerced non-integer number as nullable.
  .openapi({
    type: "number",
    minimum: 0,
    maximum: 1,
    default: 0,
    description: "Drop predictions scoring below this (applied after top_k)",
  });

export const Base64Image = z.string().min(1).openapi({
  description: "The image file's bytes in base64 (standard or URL-safe alphabet; a data: URL prefix is accepted)",
  format: "byte",
  example: "iVBORw0KGgoAAAANSUhEUgAA...",
});

/** `{"image": "<base64>"}` or `{"url": "https://..."}`: exactly one of the two. */
export const ImageJson = z
  .union([
    z.object({ image: Base64Image }).strict(),
    z
      .object({
        url: ImageUrl.openapi({ description: "http(s) URL of the image", example: "https://example.com/cat.jpg" }),
      })
      .strict(),
  ])
  .openapi("ImageJson");

export const BatchJson = z
  .object({ images: z.array(ImageJson).min(1).max(LIMITS.batchMaxItems) })
  .strict()
  .openapi("BatchJson");

/** Multipart form of one image (documentation shape: the body reader streams and caps it). */
export const ImageForm = z
  .object({
    image: z.string().openapi({ format: "binary", description: "the image file" }),
  })
  .openapi("ImageForm");

export const BatchForm = z
  .object({
    image: z
      .array(z.string().openapi({ format: "binary" }))
      .optional()
      .openapi({ description: "repeat the field, one file per image" }),
    url: z.array(z.string()).optional().openapi({ description: "repeatable: image URLs, in order with the files" }),
  })
  .openapi("BatchForm", {
    description: `Up to ${LIMITS.batchMaxItems} "image" file fields and/or "url" text fields; results follow the fields' order.`,
  });
