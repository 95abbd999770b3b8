import { getModel } from "../models/registry";
import { type ClassifyDeps, classify, lookupCache } from "../services/classify";
import { prefetchImages } from "./prefetch";
import { type ItemOutcome, JobItemMessage } from "./schema";
import { classifyFailure, type ImageLoader } from "./sources";
import { jobStub } from "./stub";
import type { JobTracker } from "./tracker";

export interface JobConsumerDeps {
  jobs: DurableObjectNamespace<JobTracker>;
  load: ImageLoader;
  classify: ClassifyDeps;
}

/** Delay before the nth retry of a transient fault: 5 s, 10 s, 20 s ... capped at 5 min. */
export function retryDelaySeconds(attempts: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.max(0, attempts - 1));
}

/**
 * Consumes a batch of job items inside one isolate (so every item reuses the
 * warm session). Per job in the batch: one `claim` round trip decides which
 * messages to work on (duplicates and cancelled items are acked unprocessed),
 * then each item is classified through the same service as POST /v1/classify
 * (so classifications land in the shared KV cache; embeddings are not written) while the next items' bytes and
 * cache lookups load in the background (src/jobs/prefetch.ts), and one
 * `complete` round trip records the outcomes before the messages are acked.
 */
export async function consumeJobBatch(
  batch: MessageBatch<unknown>,
  deps: JobConsumerDeps,
  retry: { base: number; max: number },
): Promise<void> {
  const byJob = new Map<string, Array<{ msg: Message<unknown>; body: JobItemMessage }>>();
  for (const msg of batch.messages) {
    const parsed = JobItemMessage.safeParse(msg.body);
    if (!parsed.success) {
      // Cannot be attributed to a job or retried into validity: drop it loudly.
      console.error(`jobs: dropping malformed message ${msg.id}: ${parsed.error.message}`);
      msg.ack();
      continue;
    }
    const list = byJob.get(parsed.data.job) ?? [];
    list.push({ msg, body: parsed.data });
    byJob.set(parsed.data.job, list);
  }

  for (const [jobId, entries] of byJob) {
    const stub = jobStub(deps.jobs, jobId);
    let granted: Set<number>;
    try {
      granted = new Set(await stub.claim(entries.map((e) => ({ item: e.body.item, token: e.msg.id }))));
    } catch (e) {
      // The job's Durable Object is unreachable: try the whole group again later.
      for (const { msg } of entries)
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, retry.base, retry.max) });
      console.warn(`jobs: claim failed for job ${jobId}: ${String(e)}`);
      continue;
    }

    const work = entries.filter(({ msg, body }) => {
      if (granted.has(body.item)) return true;
      msg.ack(); // already finished, held by a live duplicate, or cancelled
      return false;
    });
    // Later items load (bytes, then the cache lookup) while earlier ones are
    // classified; each keeps its own error, thrown below as if loaded here.
    const items = prefetchImages(work.length, async (i, opts) => {
      const { body } = work[i] as (typeof work)[number];
      const bytes = await deps.load(body.ref, opts);
      const model = getModel(body.model);
      return { bytes, model, lookup: await lookupCache(bytes, model, deps.classify) };
    });
    /** (model, image) pairs classified earlier in this batch: a lookup made before they finished is stale. */
    const seen = new Set<string>();
    const outcomes: Array<{ msg: Message<unknown>; outcome: ItemOutcome }> = [];
    const retries: Array<{ msg: Message<unknown>; item: number; reason: string }> = [];
    for (const [i, { msg, body }] of work.entries()) {
      try {
        const { bytes, model, lookup } = await items.take(i);
        const pair = `${model.manifest.id}:${lookup.hash.sha256}`;
        // A duplicate of an earlier item reads the cache again (as it did without prefetching).
        const fresh = lookup.hit !== undefined || !seen.has(pair);
        seen.add(pair);
        const result = await classify(
          {
            bytes,
            model,
            topK: body.top_k,
            ...(fresh ? { lookup } : { hash: lookup.hash }),
            // Jobs return classifications only: the embedding would be ~7 KB of every entry, read by nobody.
            fill: { embedding: false },
          },
          deps.classify,
        );
        outcomes.push({
          msg,
          outcome: {
            item: body.item,
            status: "done",
            sha256: result.image.sha256,
            cached: result.cached,
            predictions: result.predictions,
          },
        });
      } catch (e) {
        const verdict = classifyFailure(e);
        if (verdict.retry) retries.push({ msg, item: body.item, reason: verdict.reason });
        else {
          outcomes.push({
            msg,
            outcome: { item: body.item, status: "failed", error: { code: verdict.code, message: verdict.message } },
          });
        }
      }
    }

    try {
      if (outcomes.length) await stub.complete(outcomes.map((o) => o.outcome));
      for (const { msg } of outcomes) msg.ack();
    } catch (e) {
      // Not recorded: redeliver; the claim token (message id) lets the same message proceed again.
      console.warn(`jobs: complete failed for job ${jobId}: ${String(e)}`);
      for (const { msg } of outcomes)
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, retry.base, retry.max) });
    }
    if (retries.length) {
      try {
        await stub.release(retries.map((r) => ({ item: r.item, error: r.reason })));
      } catch (e) {
        console.warn(`jobs: release failed for job ${jobId}: ${String(e)}`);
      }
      for (const { msg } of retries)
        msg.retry({ delaySeconds: retryDelaySeconds(msg.attempts, retry.base, retry.max) });
    }
  }
}

/** Dead letters: items whose messages exhausted max_retries are failed in their job, so the job finishes. */
export async function consumeDeadLetters(
  batch: MessageBatch<unknown>,
  jobs: DurableObjectNamespace<JobTracker>,
): Promise<void> {
  const byJob = new Map<string, Array<{ msg: Message<unknown>; item: number }>>();
  for (const msg of batch.messages) {
    const parsed = JobItemMessage.safeParse(msg.body);
    if (!parsed.success) {
      console.error(`jobs-dlq: dropping malformed message ${msg.id}`);
      msg.ack();
      continue;
    }
    const list = byJob.get(parsed.data.job) ?? [];
    list.push({ msg, item: parsed.data.item });
    byJob.set(parsed.data.job, list);
  }
  for (const [jobId, entries] of byJob) {
    try {
      await jobStub(jobs, jobId).deadLetter(entries.map((e) => e.item));
      for (const { msg } of entries) msg.ack();
    } catch (e) {
      console.warn(`jobs-dlq: recording failed for job ${jobId}: ${String(e)}`);
      for (const { msg } of entries) msg.retry({ delaySeconds: 30 });
    }
  }
}
