/**
 * The models this deployment serves. Each entry is pure data (a manifest and a
 * label file under models/); the list itself is generated from models/ by
 * `npm run models:import` / `npm run models:catalog`, so adding a model needs no
 * code change. Manifests are validated at isolate start, so a malformed one
 * fails loudly in tests and `wrangler deploy --dry-run`, not on a user's request.
 */

export { LABEL_SETS, MANIFEST_SOURCES } from "./catalog.generated";

/** Used when a request names no model. */
export const DEFAULT_MODEL_ID = "mobilenet-v2";
