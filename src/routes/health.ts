import { createRoute, z } from "@hono/zod-openapi";
import { router } from "../http/openapi";
import { ORT_VERSION } from "../inference/ort";
import { isLoaded } from "../inference/sessions";
import { listModels } from "../models/registry";

const Health = z
  .object({
    status: z.enum(["ok", "degraded"]),
    ort: z.string().openapi({ description: "onnxruntime-web version" }),
    models: z.array(
      z.object({
        id: z.string(),
        loaded: z.boolean(),
        inStorage: z
          .boolean()
          .optional()
          .openapi({ description: "deep check only: the file is in R2 with the manifest's size" }),
      }),
    ),
  })
  .openapi("Health");

const healthRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["health"],
  summary: "Liveness, or a deep check of the model files",
  description:
    "Liveness by default (cheap, no I/O). `?deep=1` also checks that every model file is present in R2 with the manifest's size, and answers 503 if not.",
  request: {
    query: z.object({
      deep: z.string().optional().openapi({ description: "present (any value) = check the model files in R2" }),
    }),
  },
  responses: {
    200: { description: "Healthy", content: { "application/json": { schema: Health } } },
    503: {
      description: "Deep check failed: a model file is missing or the wrong size",
      content: { "application/json": { schema: Health } },
    },
  },
});

export const healthRoutes = router().openapi(healthRoute, async (c) => {
  const models = listModels();
  if (c.req.valid("query").deep === undefined) {
    return c.json(
      {
        status: "ok" as const,
        ort: ORT_VERSION,
        models: models.map((m) => ({ id: m.manifest.id, loaded: isLoaded(m) })),
      },
      200,
    );
  }
  const checks = await Promise.all(
    models.map(async (m) => {
      try {
        const head = await c.env.MODELS.head(m.manifest.file.r2Key);
        const ok = head !== null && head.size === m.manifest.file.bytes;
        return { id: m.manifest.id, loaded: isLoaded(m), inStorage: ok };
      } catch {
        return { id: m.manifest.id, loaded: isLoaded(m), inStorage: false };
      }
    }),
  );
  const ok = checks.every((x) => x.inStorage);
  const body = { status: ok ? ("ok" as const) : ("degraded" as const), ort: ORT_VERSION, models: checks };
  return ok ? c.json(body, 200) : c.json(body, 503);
});
