import { OpenAPIHono } from "@hono/zod-openapi";
import type { z } from "zod";
import { ApiError, ERROR_STATUS, type ErrorCode } from "../errors";
import { ErrorBody } from "./schemas";

export type AppEnv = { Bindings: Env };

/**
 * Validation failures of query, path and JSON inputs become the same ApiError
 * a hand-written check would throw, so the one onError handler answers them
 * with our `{"error":{"code","message"}}` envelope naming the field.
 */
export function validationHook(result: ValidationResult): undefined {
  if (result.success) return;
  const issue = (result.error as z.ZodError | undefined)?.issues[0];
  const where = issue?.path.join(".") || result.target;
  throw new ApiError("invalid_parameter", `invalid ${where}: ${issue?.message ?? "bad value"}`);
}

/** What zod-validator hands a hook (only the fields the hooks read). */
export interface ValidationResult {
  success: boolean;
  error?: unknown;
  target: string;
}

/** Every router is an OpenAPIHono with the shared hook, so routes, schemas and the spec cannot drift. */
export function router(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

const STATUS_TEXT: Partial<Record<number, string>> = {
  400: "Bad request: a parameter or the body is invalid",
  401: "Missing or unknown API key (WWW-Authenticate: Bearer)",
  403: "Revoked key, or an image URL naming a forbidden host",
  404: "Not found",
  413: "Too large",
  415: "Unsupported media type or image format",
  422: "The image (or the URL's content) cannot be used",
  502: "The image URL could not be reached",
  429: "Rate limited (Retry-After says when to try again)",
  503: "Model or key storage unavailable (Retry-After says when to try again)",
};

/** Everything that can go wrong with an image in the body or behind a URL, before and during inference. */
export const IMAGE_INPUT_ERRORS: readonly ErrorCode[] = [
  "invalid_parameter",
  "bad_request",
  "empty_body",
  "unknown_model",
  "payload_too_large",
  "image_too_large",
  "unsupported_media_type",
  "invalid_image",
  "url_invalid",
  "url_too_long",
  "url_scheme_not_allowed",
  "url_credentials_not_allowed",
  "url_host_not_allowed",
  "source_fetch_failed",
  "source_timeout",
  "source_too_many_redirects",
  "source_bad_redirect",
  "source_not_image",
  "source_unavailable",
  "model_unavailable",
];

/** OpenAPI error responses for the given codes, grouped by status, each listing its codes. */
export function errorResponses(...codes: ErrorCode[]) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<number, { description: string; content: { "application/json": { schema: typeof ErrorBody } } }> =
    {};
  for (const [status, list] of byStatus) {
    out[status] = {
      description: `${STATUS_TEXT[status] ?? "Error"} (code: ${list.join(", ")})`,
      content: { "application/json": { schema: ErrorBody } },
    };
  }
  return out;
}

/** A request body documented from a registered zod component, but read by our own capped reader. */
export const schemaRef = (name: string) => ({ $ref: `#/components/schemas/${name}` });
