import { Hono } from "hono";
import { isLoaded } from "../inference/sessions";
import { getModel, listModels, type RegisteredModel } from "../models/registry";

/** The public view of a model: everything a user needs to judge it, including whether it is trained. */
function describe(model: RegisteredModel) {
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
    loaded: isLoaded(model),
  };
}

export const modelRoutes = new Hono<{ Bindings: Env }>()
  .get("/", (c) => c.json({ models: listModels().map(describe) }))
  .get("/:id", (c) => c.json(describe(getModel(c.req.param("id")))));
