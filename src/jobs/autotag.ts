import { z } from "zod";
import { LIMITS } from "../limits";
import { getModel } from "../models/registry";
import { type ClassifyDeps, classify } from "../services/classify";
import { retryDelaySeconds } from "./consumer";
import { Prediction, R2EventMessage } from "./schema";
import { classifyFailure, type ImageLoader } from "./sources";

/** Stored per tagged object in KV under tagKey(key). */
export const ImageTags = z.object({
  key: z.string(),
  etag: z.string().nullable(),
  model: z.object({ id: z.string(), version: z.string(), trained: z.boolean() }),
  sha256: z.string().optional(),
  predictions: z.array(Prediction).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  tagged_at: z.string(),
});
export type ImageTags = z.infer<typeof ImageTags>;

export const tagKey = (objectKey: string) => `tags:v1:${objectKey}`;

const CREATE_ACTIONS = new Set(["PutObject", "CopyObject", "CompleteMultipartUpload"]);

export interface AutotagDeps {
  load: ImageLoader;
  classify: ClassifyDeps;
  tags: KVNamespace;
  modelId: string;
  topK: number;
}

/**
 * R2 event notifications (object-create on the images bucket) -> tags in KV.
 * It goes through the same load + classify path as a bulk job item; a file
 * that is not a usable image gets a tags record with the error instead of
 * being retried forever.
 */
export async function consumeImageEvents(batch: MessageBatch<unknown>, deps: AutotagDeps): Promise<void> {
  const model = getModel(deps.modelId);
  for (const msg of batch.messages) {
    const parsed = R2EventMessage.safeParse(msg.body);
    if (!parsed.success || !CREATE_ACTIONS.has(parsed.data.action)) {
      msg.ack(); // deletions and unrelated events carry nothing to tag
      continue;
    }
    const { key, eTag } = parsed.data.object;
    const record: ImageTags = {
      key,
      etag: eTag ?? null,
      model: { id: model.manifest.id, version: model.manifest.version, trained: model.manifest.trained },
      tagged_at: new Date().toISOString(),
    };
    try {
      const bytes = await deps.load({ key });
      const result = await classify({ bytes, model, topK: deps.topK }, deps.classify);
      record.sha256 = result.image.sha256;
      record.predictions = result.predictions;
    } catch (e) {
      const verdict = classifyFailure(e);
      if (verdict.retry) {
        console.warn(`autotag: ${key}: ${verdict.reason}; retrying`);
        msg.retry({
          delaySeconds: retryDelaySeconds(msg.attempts, LIMITS.retryDelaySeconds.base, LIMITS.retryDelaySeconds.max),
        });
        continue;
      }
      record.error = { code: verdict.code, message: verdict.message };
    }
    try {
      await deps.tags.put(tagKey(key), JSON.stringify(record));
      msg.ack();
    } catch (e) {
      console.warn(`autotag: storing tags for ${key} failed: ${String(e)}`);
      msg.retry({
        delaySeconds: retryDelaySeconds(msg.attempts, LIMITS.retryDelaySeconds.base, LIMITS.retryDelaySeconds.max),
      });
    }
  }
}
