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
  embedding_unavailable: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  unknown_model: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  image_too_large: 413,
  unsupported_media_type: 415,
  invalid_image: 422,
  /** A URL given as the image answered with an error status (404, 403...), or too many redirects. */
  source_fetch_failed: 422,
  /** A URL given as the image could not be reached (network error, timeout, 5xx): worth retrying. */
  source_unavailable: 502,
  rate_limited: 429,
  model_unavailable: 503,
  auth_unavailable: 503,
  internal: 500,
  // Fetching an image from a client-supplied URL (src/security/safe-fetch.ts).
  // url_*: the URL itself is refused before any request is made (or a redirect
  // hop is). source_*: the origin's answer cannot be used.
  url_invalid: 400,
  url_too_long: 400,
  url_scheme_not_allowed: 400,
  url_credentials_not_allowed: 400,
  url_host_not_allowed: 403,
  source_timeout: 422,
  source_too_many_redirects: 422,
  source_bad_redirect: 422,
  source_not_image: 415,
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
