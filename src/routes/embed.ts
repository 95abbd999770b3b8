import { createRoute, z } from "@hono/zod-openapi";
import { readImageInput } from "../http/body";
import { conditional } from "../http/conditional";
import { serviceDeps } from "../http/deps";
import { errorResponses, IMAGE_INPUT_ERRORS, router } from "../http/openapi";
import { ImageFacts, ModelInfo, ModelQuery, Timings } from "../http/schemas";
import { getModel } from "../models/registry";
import { embed, requireEmbeddable } from "../services/embed";
import { resolveImage } from "../services/inputs";
import { hashImage } from "../services/run";
import { ifNoneMatchHeader, imageBody, resultHeaders } from "./classify";

export const EmbedResult = z
  .object({
    model: ModelInfo,
    dim: z.number().int().positive(),
    embedding: z.array(z.number()).openapi({
      description: "The pooled penultimate features, L2-normalised: dot products are cosine similarities",
    }),
    image: ImageFacts,
    cached: z.boolean(),
    timings_ms: Timings,
  })
  .openapi("EmbedResult");

const embedRoute = createRoute({
  method: "post",
  path: "/",
  tags: ["embed"],
  summary: "Embed one image (feature vector for similarity search and dedup)",
  description:
    "Returns the model's pooled penultimate feature vector (Keras include_top=False), L2-normalised. Only models whose manifest names a features output can embed (see `embedding` in GET /v1/models). Same body forms, caching and ETag as classify; one inference caches both (one KV entry per model build and image).",
  request: { query: z.object({ model: ModelQuery }), headers: ifNoneMatchHeader, body: imageBody },
  responses: {
    200: {
      description: "The embedding",
      headers: resultHeaders,
      content: { "application/json": { schema: EmbedResult } },
    },
    304: { description: "Not modified: the If-None-Match ETag is this result's", headers: resultHeaders },
    ...errorResponses(...IMAGE_INPUT_ERRORS, "embedding_unavailable"),
  },
});

export const embedRoutes = router().openapi(embedRoute, async (c) => {
  const model = getModel(c.req.valid("query").model);
  requireEmbeddable(model); // before reading (or fetching) an image it cannot use
  const input = await readImageInput(c.req.raw);
  const deps = serviceDeps(c);
  const bytes = await resolveImage(input, deps.fetchImage);
  const hash = await hashImage(bytes);
  const tag = { kind: "embed", imageSha: hash.sha256, model, params: {} } as const;
  const { headers, notModified } = await conditional(c, tag, input.kind === "url");
  if (notModified) return notModified;
  return c.json(await embed({ bytes, hash, model }, deps), 200, headers);
});
