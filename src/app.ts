import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, type ErrorCode, isApiError } from "./errors";
import { classifyRoutes } from "./routes/classify";
import { healthRoutes } from "./routes/health";
import { imageRoutes, tagRoutes } from "./routes/images";
import { jobRoutes } from "./routes/jobs";
import { modelRoutes } from "./routes/models";
import { uiRoutes } from "./routes/ui";

export const app = new Hono<{ Bindings: Env }>();

app.route("/healthz", healthRoutes);
app.route("/v1/models", modelRoutes);
app.route("/v1/classify", classifyRoutes);
app.route("/v1/jobs", jobRoutes);
app.route("/v1/images", imageRoutes);
app.route("/v1/tags", tagRoutes);
app.route("/", uiRoutes);

app.notFound((c) => {
  throw new ApiError("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
});

/**
 * The one error handler. ApiErrors carry their status; Hono's own exceptions
 * (e.g. a malformed request it rejected) keep theirs; anything else is a bug:
 * it is logged with its stack and the client gets a generic 500.
 */
app.onError((err, c) => {
  if (isApiError(err)) {
    return c.json({ error: { code: err.code, message: err.message } }, err.status, err.headers);
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code: ErrorCode =
      err.status === 404 ? "not_found" : err.status === 405 ? "method_not_allowed" : "bad_request";
    return c.json({ error: { code, message: err.message || "bad request" } }, err.status);
  }
  console.error("unhandled error", err);
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
});
