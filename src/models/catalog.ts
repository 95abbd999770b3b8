/**
 * The models this deployment serves. Each entry is pure data (a manifest and a
 * label file under models/); adding a model means adding its folder and one
 * line here. Manifests are validated at isolate start, so a malformed one fails
 * loudly in tests and `wrangler deploy --dry-run`, not on a user's request.
 */

import densenet121 from "../../models/densenet-121/manifest.json";
import imagenet1k from "../../models/labels/imagenet-1k.json";
import nsfw5 from "../../models/labels/nsfw-5.json";
import mobilenetV2 from "../../models/mobilenet-v2/manifest.json";
import mobilenetV2Nsfw from "../../models/mobilenet-v2-nsfw/manifest.json";

export const MANIFEST_SOURCES: readonly unknown[] = [mobilenetV2, densenet121, mobilenetV2Nsfw];

export const LABEL_SETS: Readonly<Record<string, readonly string[]>> = {
  "imagenet-1k": imagenet1k,
  "nsfw-5": nsfw5,
};

/** Used when a request names no model. */
export const DEFAULT_MODEL_ID = "mobilenet-v2";
