/** Where the browser test's own `wrangler dev` listens, and where it keeps its state and log. */
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dirname, "../..");
/** BROWSER_TEST_PORT lets concurrent worktrees run the test side by side. */
export const PORT = Number(process.env.BROWSER_TEST_PORT ?? 8814);
export const BASE = `http://127.0.0.1:${PORT}`;
/** Local R2/KV/DO/queue state of the test server only (never the developer's .wrangler/state). */
export const PERSIST_DIR = join(REPO, ".wrangler", "browser-test");
export const RESULTS_DIR = join(REPO, "test-results");
export const DEV_LOG = join(RESULTS_DIR, "browser-wrangler-dev.log");
