/**
 * The one error type the API throws. Every failure a client can cause maps to
 * one of these codes, and the single `onError` handler in app.ts turns it into
 * `{"error":{"code","message"}}` with the matching status. Anything that is not
 * an ApiError is a bug and becomes a 500 `internal` (logged, never leaked).
 */
export const ERROR_STATUS = {
  bad_request: 400,
  empty_body: 400,
  invalid_parameter: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  unknown_model: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  invalid_image: 422,
  rate_limited: 429,
  model_unavailable: 503,
  auth_unavailable: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class ApiError extends Error {
  readonly status: (typeof ERROR_STATUS)[ErrorCode];
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra response headers, e.g. Retry-After on 503 and 429, WWW-Authenticate on 401. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = ERROR_STATUS[code];
  }
}

export const isApiError = (e: unknown): e is ApiError => e instanceof ApiError;
