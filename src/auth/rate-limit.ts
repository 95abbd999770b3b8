/**
 * Per-key rate limits through the Workers rate-limiting binding, one binding
 * per tier (the binding's limit is fixed in wrangler.toml, so a key picks a
 * tier rather than carrying numbers). Counted per key id, not per IP: the key
 * is what a quota belongs to.
 */
import { ApiError } from "../errors";
import { LIMITS } from "../limits";
import type { AuthenticatedKey } from "./verify";

export type RateLimitedTier = keyof typeof LIMITS.rateLimits;
export type Limiters = Partial<Record<RateLimitedTier, RateLimit>>;

let warnedMissing = false;

export async function enforceRateLimit(key: AuthenticatedKey, limiters: Limiters): Promise<void> {
  if (key.rate === "unlimited") return;
  const { limit, period, binding } = LIMITS.rateLimits[key.rate];
  const limiter = limiters[key.rate];
  if (!limiter) {
    if (!warnedMissing) console.error(`rate limit: no ${binding} binding; ${key.rate} keys are not limited`);
    warnedMissing = true;
    return;
  }
  let success: boolean;
  try {
    ({ success } = await limiter.limit({ key: key.id }));
  } catch (e) {
    // Fail open: the limiter protects capacity, and its own outage must not take the API down with it.
    console.error(`rate limit: ${binding} failed, letting the request through: ${String(e)}`);
    return;
  }
  if (!success) {
    // The binding does not say when its window ends; a whole period is a safe upper bound.
    throw new ApiError(
      "rate_limited",
      `API key ${key.id} is over its ${key.rate} limit of ${limit} requests per ${period} s`,
      { "Retry-After": String(period) },
    );
  }
}
