/**
 * Outermost middleware: gives every request an id, and after the handler (or
 * the error handler) has answered, adds `x-request-id` and `Server-Timing`,
 * writes one structured log line and one Analytics Engine data point.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { logRequest } from "./log";
import { writeMetrics } from "./metrics";
import { type RequestRecord, summarize } from "./record";
import { requestIdFrom } from "./request-id";
import { serverTiming } from "./server-timing";

declare module "hono" {
  interface ContextVariableMap {
    requestId: string;
  }
}

export function observe(): MiddlewareHandler<{ Bindings: Env }> {
  return async (c, next) => {
    // Locally a real clock; in production it advances only across I/O (Spectre mitigation).
    const started = performance.now();
    const requestId = requestIdFrom(c.req.header("x-request-id"));
    c.set("requestId", requestId);
    await next();
    const summary = await summarize(c.res, c.req.path);
    const duration = Math.round((performance.now() - started) * 100) / 100;
    const key = c.get("apiKey");
    const record: RequestRecord = {
      request_id: requestId,
      method: c.req.method,
      route: routeOf(c),
      status: c.res.status,
      duration_ms: duration,
      ...(key && { key_id: key.id }),
      ...summary,
    };
    setHeaders(c, {
      "x-request-id": requestId,
      "server-timing": serverTiming(summary.stages_ms, duration),
    });
    logRequest(record);
    writeMetrics(c.env.METRICS, record);
  };
}

/** The pattern of the handler that matched (middleware are registered as method ALL). */
function routeOf(c: Context): string {
  const routes = matchedRoutes(c).filter((r) => r.method !== "ALL");
  return routes.at(-1)?.path ?? "(unmatched)";
}

/** Responses passed through from fetch() or R2 have immutable headers: copy those before setting. */
function setHeaders(c: Context, headers: Record<string, string>): void {
  try {
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  } catch {
    c.res = new Response(c.res.body, c.res);
    for (const [k, v] of Object.entries(headers)) c.res.headers.set(k, v);
  }
}
