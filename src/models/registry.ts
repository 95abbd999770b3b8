import { ApiError } from "../errors";
import { sha256Hex } from "../util/hash";
import { DEFAULT_MODEL_ID, LABEL_SETS, MANIFEST_SOURCES } from "./catalog";
import { ModelManifest } from "./manifest";

/** A manifest joined with its resolved label list. */
export interface RegisteredModel {
  manifest: ModelManifest;
  labels: readonly string[];
  /** Identifies this exact model build: sessions and cache entries are keyed by it. */
  versionKey: string;
}

function register(source: unknown): RegisteredModel {
  const manifest = ModelManifest.parse(source);
  const labels = LABEL_SETS[manifest.labels];
  if (!labels) throw new Error(`model ${manifest.id}: unknown label set ${manifest.labels}`);
  if (labels.length !== manifest.numClasses) {
    throw new Error(`model ${manifest.id}: ${labels.length} labels for ${manifest.numClasses} classes`);
  }
  return { manifest, labels, versionKey: `${manifest.id}@${manifest.file.sha256}` };
}

const MODELS: ReadonlyMap<string, RegisteredModel> = new Map(
  MANIFEST_SOURCES.map((s) => {
    const m = register(s);
    return [m.manifest.id, m] as const;
  }),
);
if (!MODELS.has(DEFAULT_MODEL_ID)) throw new Error(`default model ${DEFAULT_MODEL_ID} is not in the catalog`);

export function listModels(): RegisteredModel[] {
  return [...MODELS.values()];
}

/** Resolves a model id from a request; an unknown id is the client's mistake (404). */
export function getModel(id: string | undefined): RegisteredModel {
  const model = MODELS.get(id ?? DEFAULT_MODEL_ID);
  if (!model) {
    throw new ApiError(
      "unknown_model",
      `unknown model "${id}"; available: ${[...MODELS.keys()].join(", ")} (see GET /v1/models)`,
    );
  }
  return model;
}

/** How long a client should wait before retrying a model that is not available. */
const RETRY_AFTER_SECONDS = "30";

/**
 * Fetches a model file from R2 and verifies its size and sha256 against the
 * manifest before anyone may build a session from it: a truncated upload or a
 * stale object under the same key must never be served as the model.
 */
export async function fetchModelBytes(bucket: R2Bucket, manifest: ModelManifest): Promise<Uint8Array> {
  const { r2Key, sha256, bytes: size } = manifest.file;
  let object: R2ObjectBody | null;
  try {
    object = await bucket.get(r2Key);
  } catch (e) {
    throw new ApiError("model_unavailable", `model ${manifest.id}: model storage (R2) failed: ${String(e)}`, {
      "Retry-After": RETRY_AFTER_SECONDS,
    });
  }
  if (!object) {
    throw new ApiError(
      "model_unavailable",
      `model ${manifest.id}: file ${r2Key} is missing from the models bucket (upload it with "npm run models:seed")`,
      { "Retry-After": RETRY_AFTER_SECONDS },
    );
  }
  const data = new Uint8Array(await object.arrayBuffer());
  const actual = data.byteLength === size ? await sha256Hex(data) : `(size ${data.byteLength}, expected ${size})`;
  if (actual !== sha256) {
    throw new ApiError(
      "model_unavailable",
      `model ${manifest.id}: file ${r2Key} is corrupt: sha256 ${actual} does not match the manifest's ${sha256}`,
      { "Retry-After": RETRY_AFTER_SECONDS },
    );
  }
  return data;
}
