import { z } from "zod";
import { LIMITS } from "../limits";
import { checkFetchUrlSync } from "../security/url-policy";

/**
 * Shapes that cross a boundary in the job system: the HTTP request that
 * creates a job, the queue messages, and the item results a job stores.
 * Everything is validated with zod where it enters (HTTP body, queue message,
 * Durable Object storage written by an older deploy).
 */

export const QUEUE_NAMES = {
  jobs: "edgetag-jobs",
  jobsDeadLetter: "edgetag-jobs-dlq",
  imageEvents: "edgetag-image-events",
} as const;

/** R2 object keys we accept from clients: printable, no "..", no leading slash. */
export const ImageKey = z
  .string()
  .min(1)
  .max(LIMITS.maxImageKeyLength)
  .regex(/^[A-Za-z0-9._-][A-Za-z0-9/._-]*$/, "R2 keys may use A-Z a-z 0-9 / . _ - and must not start with /")
  .refine((k) => !k.split("/").includes(".."), "R2 keys must not contain .. segments");

export const ImageUrl = z
  .string()
  .max(LIMITS.maxUrlLength)
  .url()
  .refine((u) => /^https?:\/\//i.test(u), "only http and https URLs can be fetched");

export const JobRequest = z
  .object({
    model: z.string().min(1).max(64).optional(),
    top_k: z.number().int().min(LIMITS.topK.min).max(LIMITS.topK.max).default(LIMITS.topK.default),
    source: z
      .object({
        urls: z.array(ImageUrl).max(LIMITS.maxJobListItems).optional(),
        keys: z.array(ImageKey).max(LIMITS.maxJobListItems).optional(),
        prefix: z.string().max(LIMITS.maxImageKeyLength).optional(),
      })
      .strict()
      .refine((s) => s.urls?.length || s.keys?.length || s.prefix !== undefined, {
        message: "source needs at least one of urls, keys or prefix",
      })
      .refine((s) => (s.urls?.length ?? 0) + (s.keys?.length ?? 0) <= LIMITS.maxJobListItems, {
        message: `at most ${LIMITS.maxJobListItems} urls and keys together`,
      }),
    webhook: z
      .object({
        url: ImageUrl.refine(
          (u) => {
            try {
              checkFetchUrlSync(u, {}, "webhook.url");
              return true;
            } catch {
              return false;
            }
          },
          { message: "webhook.url must be a public http(s) URL (no private, loopback or link-local hosts)" },
        ),
        secret: z.string().min(16, "webhook.secret must be at least 16 characters").max(256),
      })
      .strict()
      .optional(),
  })
  .strict();
export type JobRequest = z.infer<typeof JobRequest>;

export const ItemRef = z.union([z.object({ url: z.string() }).strict(), z.object({ key: z.string() }).strict()]);
export type ItemRef = z.infer<typeof ItemRef>;

/** One image of one job. Carries a reference, never image bytes (queue messages are capped at 128 KB). */
export const JobItemMessage = z
  .object({
    v: z.literal(1),
    job: z.string().uuid(),
    item: z.number().int().nonnegative(),
    ref: ItemRef,
    model: z.string(),
    top_k: z.number().int(),
  })
  .strict();
export type JobItemMessage = z.infer<typeof JobItemMessage>;

/** The body of an R2 event notification (object-create) delivered to a queue. */
export const R2EventMessage = z.object({
  bucket: z.string(),
  action: z.string(),
  object: z.object({ key: z.string(), size: z.number().optional(), eTag: z.string().optional() }),
  eventTime: z.string().optional(),
});
export type R2EventMessage = z.infer<typeof R2EventMessage>;

export const Prediction = z.object({ label: z.string(), index: z.number().int(), score: z.number() });

export type JobState = "queued" | "running" | "done" | "failed" | "cancelled";
export type ItemStatus = "done" | "failed" | "skipped";

/** What a consumer reports for one item. */
export interface ItemOutcome {
  item: number;
  status: "done" | "failed";
  sha256?: string;
  cached?: boolean;
  predictions?: z.infer<typeof Prediction>[];
  error?: { code: string; message: string };
}

/** One line of GET /v1/jobs/:id/results. */
export interface ItemResult {
  item: number;
  source: ItemRef;
  status: ItemStatus;
  sha256?: string;
  cached?: boolean;
  predictions?: z.infer<typeof Prediction>[];
  error?: { code: string; message: string };
}

export interface JobStatus {
  id: string;
  state: JobState;
  model: string;
  top_k: number;
  counts: { total: number; pending: number; done: number; failed: number; skipped: number; cached: number };
  /** false while a prefix is still being listed (counts.total grows meanwhile). */
  total_final: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  elapsed_s: number | null;
  images_per_s: number | null;
  webhook?: { url: string; delivered: boolean; attempts: number; last_error: string | null };
  error?: string;
}
