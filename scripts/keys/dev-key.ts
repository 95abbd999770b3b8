/**
 * The local development key. It is not a secret and grants nothing by itself:
 * the worker has no notion of a "dev key" (no flag, no variable, no code path).
 * It works only because `npm run models:seed` (run by `npm run dev`), the
 * benchmark and the browser test write its hash into their own *local* KV
 * state under .wrangler/. Nothing writes it to a real namespace (`npm run keys
 * -- create --remote` only ever mints random keys), so a deploy cannot accept it.
 */
export const DEV_API_KEY = "et_dev_local_only_not_a_secret";
export const DEV_KEY_NAME = "dev key (local state only)";

/**
 * The same idea for the benchmark and the load test, in their own state
 * (bench-results/state) only: tier "unlimited", so they measure the service
 * rather than the rate limiter.
 */
export const BENCH_API_KEY = "et_bench_local_only_not_a_secret";

/** What local tools send: EDGETAG_API_KEY when set, else the dev key. */
export function localApiKey(): string {
  return process.env.EDGETAG_API_KEY?.trim() || DEV_API_KEY;
}
