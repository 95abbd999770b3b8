import { Hono } from "hono";
import { z } from "zod";
import { cacheTtl } from "../cache";
import { readImageBody } from "../http/body";
import { parseQuery } from "../http/query";
import { LIMITS } from "../limits";
import { getModel } from "../models/registry";
import { classify } from "../services/classify";

const ClassifyQuery = z.object({
  model: z.string().min(1).max(64).optional(),
  top_k: z.coerce
    .number({ message: `top_k must be an integer from ${LIMITS.topK.min} to ${LIMITS.topK.max}` })
    .int(`top_k must be an integer from ${LIMITS.topK.min} to ${LIMITS.topK.max}`)
    .min(LIMITS.topK.min, `top_k must be at least ${LIMITS.topK.min}`)
    .max(LIMITS.topK.max, `top_k must be at most ${LIMITS.topK.max}`)
    .default(LIMITS.topK.default),
});

export const classifyRoutes = new Hono<{ Bindings: Env }>().post("/", async (c) => {
  const query = parseQuery(ClassifyQuery, c.req.url);
  const model = getModel(query.model);
  const bytes = await readImageBody(c.req.raw);
  const result = await classify(
    { bytes, model, topK: query.top_k },
    {
      models: c.env.MODELS,
      cache: c.env.RESULTS,
      cacheTtlSeconds: cacheTtl(c.env.CACHE_TTL_SECONDS),
      waitUntil: (p) => c.executionCtx.waitUntil(p),
    },
  );
  return c.json(result);
});
