import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { requireApiKey } from "./auth/middleware";
import { ApiError, type ErrorCode, isApiError } from "./errors";
import { router } from "./http/openapi";
import { observe } from "./observability/middleware";
import { classifyRoutes } from "./routes/classify";
import { docsRoutes, openApiDocument } from "./routes/docs";
import { embedRoutes } from "./routes/embed";
import { healthRoutes } from "./routes/health";
import { imageRoutes, tagRoutes } from "./routes/images";
import { jobRoutes } from "./routes/jobs";
import { modelRoutes } from "./routes/models";
import { uiRoutes } from "./routes/ui";

export const app = router();

// Cross-cutting middleware, before any route (Hono runs them in registration order):
// request id + Server-Timing + one log line + metrics for everything, then API keys
// and per-key rate limits for /v1/* (default deny; src/auth/middleware.ts lists the public exceptions).
app.use("*", observe());
app.use("/v1/*", requireApiKey());

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

// Returned through the error handler rather than thrown: Hono does not catch what notFound
// throws inside the middleware chain, so a thrown 404 would skip observe() (no x-request-id, no log line).
app.notFound((c) =>
  errorResponse(new ApiError("not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`), c),
);

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
app.onError(errorResponse);

function errorResponse(err: Error, c: Context) {
  if (isApiError(err)) {
    return c.json({ error: { code: err.code, message: err.message } }, err.status, err.headers);
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code = HTTP_EXCEPTION_CODES[err.status] ?? "bad_request";
    return c.json({ error: { code, message: err.message || "bad request" } }, err.status);
  }
  console.error("unhandled error", err);
  return c.json({ error: { code: "internal", message: "internal error" } }, 500);
}
