import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, router } from "../http/openapi";
import { isLoaded } from "../inference/sessions";
import { ModelManifest } from "../models/manifest";
import { getModel, listModels, type RegisteredModel } from "../models/registry";

const Manifest = ModelManifest.shape;

const ModelSummary = z
  .object({
    id: Manifest.id,
    version: Manifest.version,
    name: Manifest.name,
    description: Manifest.description,
    architecture: Manifest.architecture,
    trained: Manifest.trained.openapi({ description: "false = untrained weights: the labels are not meaningful" }),
    license: Manifest.license,
    source: Manifest.source,
    file: z.object({ sha256: z.string(), bytes: z.number().int().positive() }),
    input: Manifest.input,
    preprocess: Manifest.preprocess,
    output: Manifest.output,
    labels: z.object({ set: z.string(), count: z.number().int().positive() }),
    stats: Manifest.stats,
    quantization: Manifest.quantization,
    embedding: z
      .object({ available: z.boolean(), dim: z.number().int().positive().nullable() })
      .openapi({ description: "whether POST /v1/embed works with this model, and the vector length" }),
    loaded: z.boolean().openapi({ description: "a session is warm in the isolate that answered" }),
  })
  .openapi("ModelSummary");

const ModelDetail = ModelSummary.extend({
  fidelity: Manifest.fidelity.openapi({ description: "measured agreement figures, when the build recorded them" }),
}).openapi("ModelDetail");

/** The public view of a model: the whole manifest but its R2 key, plus whether it is trained, can embed, and is loaded. */
function summary(model: RegisteredModel): z.infer<typeof ModelSummary> {
  const m = model.manifest;
  return {
    id: m.id,
    version: m.version,
    name: m.name,
    description: m.description,
    architecture: m.architecture,
    trained: m.trained,
    license: m.license,
    source: m.source,
    file: { sha256: m.file.sha256, bytes: m.file.bytes },
    input: m.input,
    preprocess: m.preprocess,
    output: m.output,
    labels: { set: m.labels, count: m.numClasses },
    stats: m.stats,
    quantization: m.quantization,
    embedding: { available: m.output.features !== undefined, dim: m.output.features?.dim ?? null },
    loaded: isLoaded(model),
  };
}

const listRoute = createRoute({
  method: "get",
  path: "/",
  tags: ["models"],
  summary: "List the models",
  responses: {
    200: {
      description: "Every model this deployment serves",
      content: { "application/json": { schema: z.object({ models: z.array(ModelSummary) }).openapi("ModelList") } },
    },
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["models"],
  summary: "One model's full manifest",
  request: { params: z.object({ id: z.string().openapi({ example: "mobilenet-v2" }) }) },
  responses: {
    200: { description: "The model", content: { "application/json": { schema: ModelDetail } } },
    ...errorResponses("unknown_model"),
  },
});

export const modelRoutes = router()
  .openapi(listRoute, (c) => c.json({ models: listModels().map(summary) }, 200))
  .openapi(getRoute, (c) => {
    const model = getModel(c.req.valid("param").id);
    const { fidelity } = model.manifest;
    return c.json({ ...summary(model), ...(fidelity ? { fidelity } : {}) }, 200);
  });
