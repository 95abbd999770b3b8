/**
 * The worker under test with a real API key: `authedSelf` is SELF that sends
 * `Authorization: Bearer <TEST_API_KEY>` unless the request already carries an
 * Authorization header. The key is an ordinary record in the real local
 * API_KEYS namespace (tier "unlimited", so the many requests of the parity
 * tests are never rate limited), written the same way `npm run keys` writes
 * one. Auth is on in every test; nothing is bypassed.
 */
import { env, SELF } from "cloudflare:test";
import { ensureKey } from "../../../scripts/keys/store";

export const TEST_API_KEY = "et_test_workerd_unlimited_tier";

export const authedSelf = {
  async fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
    // Every call, not once: cheap locally, and immune to per-test storage resets.
    await ensureKey(env.API_KEYS, TEST_API_KEY, "workerd tests", "unlimited");
    const req = new Request(input, init);
    if (!req.headers.has("authorization")) req.headers.set("authorization", `Bearer ${TEST_API_KEY}`);
    return SELF.fetch(req);
  },
};
