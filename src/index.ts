import { app } from "./app";
import { cacheTtl } from "./cache";
import { consumeImageEvents } from "./jobs/autotag";
import { consumeDeadLetters, consumeJobBatch } from "./jobs/consumer";
import { QUEUE_NAMES } from "./jobs/schema";
import { imageLoader } from "./jobs/sources";
import { LIMITS } from "./limits";
import type { ClassifyDeps } from "./services/classify";

export { JobTracker } from "./jobs/tracker";

function classifyDeps(env: Env, ctx: ExecutionContext): ClassifyDeps {
  return {
    models: env.MODELS,
    cache: env.RESULTS,
    cacheTtlSeconds: cacheTtl(env.CACHE_TTL_SECONDS),
    waitUntil: (p) => ctx.waitUntil(p),
  };
}

function positiveNumber(raw: string | undefined, fallback: number): number {
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}

export default {
  fetch: app.fetch,

  /** One worker consumes three queues; the queue name says which flow a batch belongs to. */
  async queue(batch, env, ctx) {
    switch (batch.queue) {
      case QUEUE_NAMES.jobs:
        return consumeJobBatch(
          batch,
          { jobs: env.JOBS, load: imageLoader(env.IMAGES), classify: classifyDeps(env, ctx) },
          {
            base: positiveNumber(env.JOB_RETRY_BASE_SECONDS, LIMITS.retryDelaySeconds.base),
            max: LIMITS.retryDelaySeconds.max,
          },
        );
      case QUEUE_NAMES.jobsDeadLetter:
        return consumeDeadLetters(batch, env.JOBS);
      case QUEUE_NAMES.imageEvents:
        return consumeImageEvents(batch, {
          load: imageLoader(env.IMAGES),
          classify: classifyDeps(env, ctx),
          tags: env.RESULTS,
          modelId: env.AUTOTAG_MODEL,
          topK: LIMITS.topK.default,
        });
      default:
        console.error(`queue: no consumer for ${batch.queue}; retrying later`);
        batch.retryAll();
    }
  },
} satisfies ExportedHandler<Env>;
