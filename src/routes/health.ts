import { Hono } from "hono";
import { ORT_VERSION } from "../inference/ort";
import { isLoaded } from "../inference/sessions";
import { listModels } from "../models/registry";

/**
 * Liveness by default (cheap, no I/O). `?deep=1` also checks that every model
 * file is present in R2 with the manifest's size, and answers 503 if not.
 */
export const healthRoutes = new Hono<{ Bindings: Env }>().get("/", async (c) => {
  const models = listModels();
  if (c.req.query("deep") === undefined) {
    return c.json({
      status: "ok",
      ort: ORT_VERSION,
      models: models.map((m) => ({ id: m.manifest.id, loaded: isLoaded(m) })),
    });
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
  return c.json({ status: ok ? "ok" : "degraded", ort: ORT_VERSION, models: checks }, ok ? 200 : 503);
});
