/**
 * Every limit the service enforces, in one place (the README lists them).
 * They are deliberately conservative for a 128 MB isolate: the ORT wasm heap
 * holds both models (~45 MB of fp32 weights after dequantisation at load),
 * leaving the rest for one decoded image and its resampling buffers.
 */
export const LIMITS = {
  /** Largest request body accepted, raw or multipart (bytes). */
  maxBodyBytes: 20 * 1024 * 1024,
  /**
   * Largest image accepted, in pixels, checked from the header before decoding.
   * 16.8 MP admits 12 MP phone photos (4032x3024) and 4096x4096, and keeps the
   * RGB8 decode buffer under ~50 MB.
   */
  maxPixels: 4096 * 4096,
  /**
   * PNG and WebP have no reduced-scale decode: their decoders hold the whole
   * image several times over (~8-12 bytes per pixel), so they get a smaller
   * budget. 2048x2048 keeps that under ~50 MB.
   */
  maxPixelsFullDecode: 2048 * 2048,
  /**
   * Progressive JPEGs must keep every DCT coefficient (128 B per 8x8 block per
   * component) until the last scan: 48 MiB admits a 12 MP 4:2:0 photo.
   * Baseline JPEGs stream and never allocate this.
   */
  maxJpegCoefficientBytes: 48 * 1024 * 1024,
  /**
   * Scans per JPEG. A progressive AC scan can sweep every block with a few
   * bytes of end-of-band runs, so scan count, not file size, bounds decode
   * time. libjpeg's default progression writes 10; 100 leaves room for
   * unusual encoders.
   */
  maxJpegScans: 100,
  topK: { min: 1, max: 20, default: 5 },
  /** Images per POST /v1/classify/batch (all in one body, itself capped at maxBodyBytes). */
  batchMaxItems: 16,
  /**
   * Cache-Control max-age of a result whose image came as a URL: what the URL
   * serves may change. A result for uploaded bytes is fixed for the model build
   * and gets the KV cache TTL instead.
   */
  urlResultMaxAgeSeconds: 300,
  /** Predictions stored per cache entry, so any top_k up to the maximum is a cache hit. */
  cachedPredictions: 20,
  /** Default TTL of a cached result when CACHE_TTL_SECONDS is unset or invalid. */
  defaultCacheTtlSeconds: 7 * 24 * 3600,
  /** KV rejects expirationTtl below 60 seconds. */
  minCacheTtlSeconds: 60,
  /** Longest R2 key accepted for uploads and job sources (R2 allows 1024 bytes). */
  maxImageKeyLength: 512,
  /** Longest image URL accepted (job sources, classify by URL, and every redirect target). */
  maxUrlLength: 2048,
  /** urls + keys listed inline in one POST /v1/jobs (a prefix has no limit). */
  maxJobListItems: 10_000,
  /** Results per page of GET /v1/jobs/:id/results. */
  resultsPage: { default: 500, max: 1000 },
  /**
   * Job consumer prefetch (src/jobs/prefetch.ts): images of a batch load while
   * earlier ones are classified. At most 4 loads at once (a Worker has 6
   * simultaneous connections; the cache writes need some too),
   * and at most 8 MiB held ahead of it: the 12 MP memory peak is already near
   * the 128 MB isolate limit. Each prefetch may read maxBytes / maxInFlight
   * (2 MiB); a bigger image loads when its turn comes, as without prefetching.
   * turnEvery: the consumer gives the event loop a turn at least every 4 items,
   * so one batch never holds the isolate for more than a few inferences.
   */
  jobPrefetch: { maxInFlight: 4, maxBytes: 8 * 1024 * 1024, turnEvery: 4 },
  /** Messages per Queue sendBatch (the platform's limit is 100 messages / 256 KB). */
  queueSendBatch: 100,
  /** Items a job tracker lists or enqueues per alarm run before re-arming itself. */
  trackerPumpItems: 1000,
  /**
   * An item claimed by a consumer that has not reported back after this long is
   * presumed lost (crashed isolate) and re-enqueued; after `maxSweeps` of those
   * it is failed, so a job can never hang in "running".
   */
  itemLeaseMs: 10 * 60_000,
  /** A queued item not even claimed within this long is re-enqueued (queue retries can take minutes). */
  queuedLeaseMs: 30 * 60_000,
  maxSweeps: 3,
  /** A failed listing/enqueue round is retried after this (doubling), and the job fails after maxPumpErrors in a row. */
  pumpRetryMs: 5_000,
  maxPumpErrors: 8,
  /** How often a job with outstanding items wakes up to sweep. */
  sweepIntervalMs: 60_000,
  /** Consumer retry delay for transient faults: base * 2^(attempt-1), capped. */
  retryDelaySeconds: { base: 5, max: 300 },
  /**
   * Fetching an image URL (src/security/safe-fetch.ts). The timeout covers the
   * whole exchange: every redirect hop and reading the body. Redirects are
   * followed by hand so each hop is re-checked; maxBytes is enforced while
   * streaming, so a missing or lying Content-Length cannot get past it.
   */
  urlFetch: { timeoutMs: 15_000, maxRedirects: 5, maxBytes: 20 * 1024 * 1024 },
  /** Completion webhook: attempts, first delay (doubling). */
  webhook: { attempts: 6, firstDelayMs: 5_000, timeoutMs: 10_000 },
  /** First and largest back-off after a model fails to load (ms), doubling in between. */
  modelRetryBackoffMs: { initial: 2_000, max: 60_000 },
  /** A bearer token outside this length is refused before it is hashed (generated keys are 46 characters). */
  apiKeyLength: { min: 16, max: 256 },
  /**
   * Seconds a KV edge location may keep serving a key record it has read
   * (KV's minimum), so a cold isolate's first read of a busy key is usually
   * answered from the location's cache.
   */
  apiKeyCacheTtlSeconds: 30,
  /**
   * Seconds an isolate reuses a key it verified (src/auth/key-cache.ts), so a
   * busy key costs one billed KV read per isolate per this long, not one per
   * request. Revoking a key takes effect within this plus apiKeyCacheTtlSeconds
   * (60 s, as before the isolate cache existed), plus KV's own propagation.
   */
  apiKeyIsolateCacheSeconds: 30,
  /** At most this many verified keys per isolate (the oldest entry goes first). */
  apiKeyIsolateCacheEntries: 1000,
  /**
   * Per-key request budgets, one Workers rate-limiting binding per tier; the
   * [[ratelimits]] entries in wrangler.toml must carry the same numbers (a node
   * test checks). The platform offers only 10 s and 60 s windows, and counts
   * per location, so these are abuse limits, not exact quotas. Keys of the
   * "unlimited" tier (internal tools, load tests) skip the check.
   */
  rateLimits: {
    standard: { binding: "RATE_LIMIT_STANDARD", limit: 120, period: 60 },
    bulk: { binding: "RATE_LIMIT_BULK", limit: 600, period: 10 },
  },
  /** Longest client-supplied x-request-id echoed back; anything longer (or odd) gets a fresh id. */
  maxRequestIdLength: 128,
} as const;
