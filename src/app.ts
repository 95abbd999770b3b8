import { HTTPException } from "hono/http-exception";
import { ApiError, type ErrorCode, isApiError } from "./errors";
import { router } from "./http/openapi";
import { classifyRoutes } from "./routes/classify";
import { docsRoutes, openApiDocument } from "./routes/docs";
import { embedRoutes } from "./routes/embed";
import { healthRoutes } from "./routes/health";
import { imageRoutes, tagRoutes } from "./routes/images";
import { jobRoutes } from "./routes/jobs";
import { modelRoutes } from "./routes/models";
import { uiRoutes } from "./routes/ui";

export const app = router();

app.route("/healthz", healthRoutes);
app.route("/v1/models", modelRoutes);
app.route("/v1/classify", classifyRoutes);
app.route("/v1/embed", embedRoutes);
app.route("/v1/jobs", jobRoutes);
app.route("/v1/images", imageRoutes);
app.route("/v1/tags", tagRoutes);
app.route("/", uiRoutes);

/** The spec is generated from the routes above on first request, then reused. */
let spec: ReturnType<typeof openApiDocument> | undefined;
app.get("/openapi.json", (c) => {
  spec ??= openApiDocument(app);
  return c.json(spec);
});
app.route("/docs", docsRoutes);

app.notFound((c) => {
  throw new ApiError("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`);
});

const HTTP_EXCEPTION_CODES: Partial<Record<number, ErrorCode>> = {
  404: "not_found",
  405: "method_not_allowed",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

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
    const code = HTTP_EXCEPTION_CODES[err.status] ?? "bad_request";
    return c.json({ error: { code, message: err.message || "bad request" } }, err.status);
  }
  console.error("unhandled error", err);
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
});
