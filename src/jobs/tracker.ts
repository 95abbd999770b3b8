import { DurableObject } from "cloudflare:workers";
import { LIMITS } from "../limits";
import {
  type ItemOutcome,
  ItemRef,
  type ItemResult,
  type ItemStatus,
  type JobItemMessage,
  type JobState,
  type JobStatus,
  Prediction,
} from "./schema";
import { deliverWebhook } from "./webhook";

/**
 * One Durable Object per bulk job, with SQLite storage. It is the single
 * writer for the job, which is what makes the bookkeeping exact:
 *  - every item has one row; a consumer must `claim` it before working and
 *    `complete` it after, and both are conditional updates, so a redelivered
 *    or duplicated message can never count twice or overwrite a result;
 *  - counts are derived from the rows (never incremented), so they cannot drift;
 *  - its alarm pumps the job: lists the R2 prefix page by page, enqueues
 *    pending items in sendBatch chunks, sweeps items whose consumer never
 *    reported back, finishes the job and delivers the webhook with retries.
 *
 * Item states: pending -> queued -> running -> done | failed, or -> skipped
 * (cancelled before it ran). Retries go running -> queued.
 */

interface JobSpec {
  model: string;
  top_k: number;
  prefix?: string;
  webhook?: { url: string; secret: string };
}

export interface CreateJob {
  id: string;
  model: string;
  top_k: number;
  source: { urls?: string[]; keys?: string[]; prefix?: string };
  webhook?: { url: string; secret: string };
}

type JobRow = {
  id: string;
  spec: string;
  state: JobState;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  list_cursor: string | null;
  list_done: number;
  error: string | null;
  finish_seq: number;
  pump_errors: number;
  webhook_attempts: number;
  webhook_delivered: number;
  webhook_next_at: number | null;
  webhook_last_error: string | null;
};

const OUTSTANDING = "('pending','queued','running')";

export class JobTracker extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS job (
        id TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL,
        created_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
        list_cursor TEXT, list_done INTEGER NOT NULL, error TEXT,
        finish_seq INTEGER NOT NULL DEFAULT 0, pump_errors INTEGER NOT NULL DEFAULT 0,
        webhook_attempts INTEGER NOT NULL DEFAULT 0, webhook_delivered INTEGER NOT NULL DEFAULT 0,
        webhook_next_at INTEGER, webhook_last_error TEXT
      );
      CREATE TABLE IF NOT EXISTS items (
        idx INTEGER PRIMARY KEY, ref TEXT NOT NULL, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, sweeps INTEGER NOT NULL DEFAULT 0,
        enqueued_at INTEGER, claimed_at INTEGER, claim_token TEXT,
        seq INTEGER, sha256 TEXT, cached INTEGER, result TEXT, error TEXT
      );
      CREATE INDEX IF NOT EXISTS items_state ON items(state);
      CREATE INDEX IF NOT EXISTS items_seq ON items(seq);
    `);
  }

  // ------------------------------------------------------------------ RPC --

  /** Creates the job (idempotent: a second call returns the existing status). */
  async create(req: CreateJob): Promise<JobStatus> {
    if (!this.row()) {
      const spec: JobSpec = { model: req.model, top_k: req.top_k };
      if (req.source.prefix !== undefined) spec.prefix = req.source.prefix;
      if (req.webhook) spec.webhook = req.webhook;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(
          "INSERT INTO job (id, spec, state, created_at, list_cursor, list_done) VALUES (?, ?, 'queued', ?, NULL, ?)",
          req.id,
          JSON.stringify(spec),
          Date.now(),
          req.source.prefix === undefined ? 1 : 0,
        );
        const refs: ItemRef[] = [
          ...(req.source.urls ?? []).map((url) => ({ url })),
          ...(req.source.keys ?? []).map((key) => ({ key })),
        ];
        this.insertItems(refs);
      });
      await this.ctx.storage.setAlarm(Date.now());
    }
    return this.status() as JobStatus;
  }

  status(): JobStatus | null {
    const job = this.row();
    if (!job) return null;
    const spec = JSON.parse(job.spec) as JobSpec;
    const counts = { total: 0, pending: 0, done: 0, failed: 0, skipped: 0, cached: 0 };
    for (const r of this.sql.exec<{ state: string; n: number; cached: number }>(
      "SELECT state, COUNT(*) AS n, SUM(COALESCE(cached, 0)) AS cached FROM items GROUP BY state",
    )) {
      counts.total += r.n;
      if (r.state === "done" || r.state === "failed" || r.state === "skipped") counts[r.state] += r.n;
      else counts.pending += r.n;
      counts.cached += r.cached ?? 0;
    }
    const end = job.finished_at ?? Date.now();
    const elapsed = job.started_at === null ? null : Math.max(0, end - job.started_at) / 1000;
    const processed = counts.done + counts.failed;
    const status: JobStatus = {
      id: job.id,
      state: job.state,
      model: spec.model,
      top_k: spec.top_k,
      counts,
      total_final: job.list_done === 1,
      created_at: new Date(job.created_at).toISOString(),
      started_at: job.started_at === null ? null : new Date(job.started_at).toISOString(),
      finished_at: job.finished_at === null ? null : new Date(job.finished_at).toISOString(),
      elapsed_s: elapsed,
      images_per_s: elapsed && elapsed > 0 ? Math.round((processed / elapsed) * 100) / 100 : null,
    };
    if (spec.webhook) {
      status.webhook = {
        url: spec.webhook.url,
        delivered: job.webhook_delivered === 1,
        attempts: job.webhook_attempts,
        last_error: job.webhook_last_error,
      };
    }
    if (job.error) status.error = job.error;
    return status;
  }

  /**
   * A consumer asks to work on items. An item is handed out when it is not
   * finished and not held by another live claim; the message id is the claim
   * token, so the queue redelivering the *same* message proceeds while a
   * duplicate copy (another message for the same item) is skipped.
   */
  async claim(claims: Array<{ item: number; token: string }>): Promise<number[]> {
    const job = this.row();
    if (!job) return [];
    const now = Date.now();
    const granted: number[] = [];
    this.ctx.storage.transactionSync(() => {
      for (const { item, token } of claims) {
        const row = this.sql
          .exec<{ state: string; claim_token: string | null; claimed_at: number | null }>(
            "SELECT state, claim_token, claimed_at FROM items WHERE idx = ?",
            item,
          )
          .toArray()[0];
        if (!row || row.state === "done" || row.state === "failed" || row.state === "skipped") continue;
        if (job.state === "cancelled" || job.state === "failed") continue;
        const live = row.state === "running" && row.claimed_at !== null && now - row.claimed_at < LIMITS.itemLeaseMs;
        if (live && row.claim_token !== token) continue;
        this.sql.exec(
          "UPDATE items SET state = 'running', claim_token = ?, claimed_at = ?, attempts = attempts + 1 WHERE idx = ?",
          token,
          now,
          item,
        );
        granted.push(item);
      }
      if (granted.length && job.state === "queued") {
        this.sql.exec("UPDATE job SET state = 'running', started_at = COALESCE(started_at, ?)", now);
      }
    });
    return granted;
  }

  /** Records finished items. Only the first outcome of an item counts. */
  async complete(outcomes: ItemOutcome[]): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const o of outcomes) this.finishItem(o.item, o.status, o);
    });
    await this.afterProgress();
  }

  /** Items a consumer will retry (transient fault): back to queued, keeping the reason. */
  async release(items: Array<{ item: number; error: string }>): Promise<void> {
    for (const { item, error } of items) {
      this.sql.exec("UPDATE items SET state = 'queued', error = ? WHERE idx = ? AND state = 'running'", error, item);
    }
  }

  /** Items whose messages exhausted their retries (delivered by the dead-letter consumer). */
  async deadLetter(items: number[]): Promise<void> {
    this.ctx.storage.transactionSync(() => {
      for (const item of items) {
        const row = this.sql
          .exec<{ attempts: number; error: string | null }>("SELECT attempts, error FROM items WHERE idx = ?", item)
          .toArray()[0];
        if (!row) continue;
        this.finishItem(item, "failed", {
          error: {
            code: "retries_exhausted",
            message: `gave up after ${row.attempts} attempts${row.error ? `: ${row.error}` : ""}`,
          },
        });
      }
    });
    await this.afterProgress();
  }

  /** Cancels: items not yet running are skipped; running ones may still finish. */
  async cancel(): Promise<JobStatus | null> {
    const job = this.row();
    if (!job) return null;
    if (job.state === "queued" || job.state === "running") {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec("UPDATE job SET state = 'cancelled', list_done = 1");
        for (const { idx } of this.sql
          .exec<{ idx: number }>("SELECT idx FROM items WHERE state IN ('pending','queued') ORDER BY idx")
          .toArray()) {
          this.finishItem(idx, "skipped", {});
        }
      });
      await this.afterProgress();
    }
    return this.status();
  }

  /**
   * Finished items in the order they finished, after the cursor `after`
   * (a finish sequence number, not an item index: items finish out of order,
   * and paging by index would skip late finishers).
   */
  results(after: number, limit: number): { items: ItemResult[]; next: number } {
    const rows = this.sql
      .exec<{
        idx: number;
        ref: string;
        state: ItemStatus;
        seq: number;
        sha256: string | null;
        cached: number | null;
        result: string | null;
        error: string | null;
      }>(
        `SELECT idx, ref, state, seq, sha256, cached, result, error FROM items
         WHERE seq > ? ORDER BY seq LIMIT ?`,
        after,
        limit,
      )
      .toArray();
    const items = rows.map((r) => {
      const out: ItemResult = { item: r.idx, source: ItemRef.parse(JSON.parse(r.ref)), status: r.state };
      if (r.sha256) out.sha256 = r.sha256;
      if (r.cached !== null) out.cached = r.cached === 1;
      if (r.result) {
        const parsed = Prediction.array().safeParse(JSON.parse(r.result));
        if (parsed.success) out.predictions = parsed.data;
      }
      if (r.state !== "done" && r.error) out.error = JSON.parse(r.error) as { code: string; message: string };
      return out;
    });
    return { items, next: rows.length ? (rows[rows.length - 1]?.seq ?? after) : after };
  }

  // ---------------------------------------------------------------- alarm --

  override async alarm(): Promise<void> {
    await this.pump(Date.now());
  }

  /**
   * One round of work; `now` is a parameter so tests can sweep "ten minutes
   * later". It never throws: a failing R2 listing or queue send is retried on
   * the next round with back-off, and after `maxPumpErrors` consecutive
   * failures the job is failed rather than left running forever (the platform
   * stops retrying an alarm that keeps throwing).
   */
  async pump(now: number): Promise<void> {
    const job = this.row();
    if (!job) return;
    const spec = JSON.parse(job.spec) as JobSpec;
    const active = job.state === "queued" || job.state === "running";
    // Sweep first so that items taken back from a silent consumer are re-sent in this same round.
    this.sweep(now);
    let failed = false;
    if (active) {
      try {
        if (job.list_done === 0) await this.listPage(job, spec);
        await this.enqueuePending(job.id, spec, now);
        if (job.pump_errors) this.sql.exec("UPDATE job SET pump_errors = 0");
      } catch (e) {
        failed = true;
        this.pumpFailed(job, e);
      }
    }
    this.maybeFinish(now);
    await this.maybeDeliverWebhook(spec, now);
    // Scheduled on the real clock even when a test passes a future `now`.
    await this.rearm(Date.now(), failed ? LIMITS.pumpRetryMs * 2 ** Math.min(job.pump_errors, 5) : 0);
  }

  // ------------------------------------------------------------- internals --

  private row(): JobRow | undefined {
    return this.sql.exec<JobRow>("SELECT * FROM job LIMIT 1").toArray()[0];
  }

  private insertItems(refs: ItemRef[]): void {
    const next = this.sql.exec<{ n: number }>("SELECT COALESCE(MAX(idx), -1) + 1 AS n FROM items").one().n;
    refs.forEach((ref, i) => {
      this.sql.exec("INSERT INTO items (idx, ref, state) VALUES (?, ?, 'pending')", next + i, JSON.stringify(ref));
    });
  }

  /** Moves an item to a terminal state unless it already is in one (first outcome wins). */
  private finishItem(item: number, status: ItemStatus, o: Partial<ItemOutcome>): void {
    const row = this.sql.exec<{ state: string }>("SELECT state FROM items WHERE idx = ?", item).toArray()[0];
    if (!row || row.state === "done" || row.state === "failed" || row.state === "skipped") return;
    const seq = this.sql
      .exec<{ seq: number }>("UPDATE job SET finish_seq = finish_seq + 1 RETURNING finish_seq AS seq")
      .one().seq;
    this.sql.exec(
      "UPDATE items SET state = ?, seq = ?, sha256 = ?, cached = ?, result = ?, error = ? WHERE idx = ?",
      status,
      seq,
      o.sha256 ?? null,
      o.cached === undefined ? null : o.cached ? 1 : 0,
      o.predictions ? JSON.stringify(o.predictions) : null,
      o.error ? JSON.stringify(o.error) : null,
      item,
    );
  }

  /** Lists one page of the prefix and turns its keys into items. */
  private async listPage(job: JobRow, spec: JobSpec): Promise<void> {
    const page = await this.env.IMAGES.list({
      prefix: spec.prefix ?? "",
      limit: LIMITS.trackerPumpItems,
      ...(job.list_cursor ? { cursor: job.list_cursor } : {}),
    });
    this.ctx.storage.transactionSync(() => {
      // "Folder" placeholder objects are not images.
      this.insertItems(page.objects.filter((o) => !o.key.endsWith("/")).map((o) => ({ key: o.key })));
      const cursor = page.truncated ? page.cursor : null;
      this.sql.exec("UPDATE job SET list_cursor = ?, list_done = ?", cursor, cursor ? 0 : 1);
    });
  }

  /** Sends pending items to the queue, 100 per sendBatch; sends first, then marks, so a crash re-sends (claims dedupe). */
  private async enqueuePending(jobId: string, spec: JobSpec, now: number): Promise<void> {
    const rows = this.sql
      .exec<{ idx: number; ref: string }>(
        "SELECT idx, ref FROM items WHERE state = 'pending' ORDER BY idx LIMIT ?",
        LIMITS.trackerPumpItems,
      )
      .toArray();
    for (let i = 0; i < rows.length; i += LIMITS.queueSendBatch) {
      const chunk = rows.slice(i, i + LIMITS.queueSendBatch);
      const messages = chunk.map(
        (r): MessageSendRequest<JobItemMessage> => ({
          body: {
            v: 1,
            job: jobId,
            item: r.idx,
            ref: ItemRef.parse(JSON.parse(r.ref)),
            model: spec.model,
            top_k: spec.top_k,
          },
          contentType: "json",
        }),
      );
      await this.env.JOB_QUEUE.sendBatch(messages);
      for (const r of chunk) {
        this.sql.exec(
          "UPDATE items SET state = 'queued', enqueued_at = ? WHERE idx = ? AND state = 'pending'",
          now,
          r.idx,
        );
      }
    }
  }

  /** Items whose consumer went silent go back to pending (re-enqueued), and fail after maxSweeps. */
  private sweep(now: number): void {
    const stale = this.sql
      .exec<{ idx: number; sweeps: number }>(
        `SELECT idx, sweeps FROM items WHERE
           (state = 'running' AND claimed_at < ?) OR (state = 'queued' AND enqueued_at < ?)`,
        now - LIMITS.itemLeaseMs,
        now - LIMITS.queuedLeaseMs,
      )
      .toArray();
    if (!stale.length) return;
    this.ctx.storage.transactionSync(() => {
      for (const { idx, sweeps } of stale) {
        if (sweeps + 1 >= LIMITS.maxSweeps) {
          this.finishItem(idx, "failed", {
            error: { code: "lost", message: `no consumer reported back after ${sweeps + 1} deliveries` },
          });
        } else {
          this.sql.exec(
            "UPDATE items SET state = 'pending', sweeps = sweeps + 1, claim_token = NULL WHERE idx = ?",
            idx,
          );
        }
      }
    });
  }

  private pumpFailed(job: JobRow, e: unknown): void {
    const errors = job.pump_errors + 1;
    const message = e instanceof Error ? e.message : String(e);
    console.warn(`job ${job.id}: pump failed (${errors}): ${message}`);
    if (errors < LIMITS.maxPumpErrors) {
      this.sql.exec("UPDATE job SET pump_errors = ?", errors);
      return;
    }
    // Give up: the job fails; items never sent are skipped, items in flight may still finish.
    this.ctx.storage.transactionSync(() => {
      this.sql.exec(
        "UPDATE job SET state = 'failed', list_done = 1, pump_errors = ?, error = ?",
        errors,
        `gave up after ${errors} failed attempts to list or enqueue: ${message}`,
      );
      for (const { idx } of this.sql
        .exec<{ idx: number }>("SELECT idx FROM items WHERE state = 'pending' ORDER BY idx")
        .toArray()) {
        this.finishItem(idx, "skipped", { error: { code: "job_failed", message } });
      }
    });
  }

  private maybeFinish(now: number): boolean {
    const job = this.row();
    if (!job || job.finished_at !== null || job.list_done === 0) return false;
    const outstanding = this.sql
      .exec<{ n: number }>(`SELECT COUNT(*) AS n FROM items WHERE state IN ${OUTSTANDING}`)
      .one().n;
    if (outstanding > 0) return false;
    const state = job.state === "cancelled" || job.state === "failed" ? job.state : "done";
    this.sql.exec("UPDATE job SET state = ?, finished_at = ?, started_at = COALESCE(started_at, ?)", state, now, now);
    return true;
  }

  /** After items finish: close the job if that was the last one, and let the alarm send the webhook. */
  private async afterProgress(): Promise<void> {
    if (this.maybeFinish(Date.now())) await this.ctx.storage.setAlarm(Date.now());
  }

  private async maybeDeliverWebhook(spec: JobSpec, now: number): Promise<void> {
    const job = this.row();
    if (!job || !spec.webhook || job.finished_at === null || job.webhook_delivered === 1) return;
    if (job.webhook_attempts >= LIMITS.webhook.attempts) return;
    if (job.webhook_next_at !== null && now < job.webhook_next_at) return;
    const summary = this.status() as JobStatus;
    delete summary.webhook;
    const result = await deliverWebhook(spec.webhook, summary);
    const attempts = job.webhook_attempts + 1;
    if (result.ok) {
      this.sql.exec("UPDATE job SET webhook_delivered = 1, webhook_attempts = ?, webhook_last_error = NULL", attempts);
    } else {
      const next = now + LIMITS.webhook.firstDelayMs * 2 ** (attempts - 1);
      this.sql.exec(
        "UPDATE job SET webhook_attempts = ?, webhook_next_at = ?, webhook_last_error = ?",
        attempts,
        next,
        result.error,
      );
    }
  }

  private async rearm(now: number, delayMs: number): Promise<void> {
    const job = this.row();
    if (!job) return;
    const spec = JSON.parse(job.spec) as JobSpec;
    const count = (where: string) =>
      this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM items WHERE ${where}`).one().n;
    const active = job.state === "queued" || job.state === "running";
    let at: number | null = null;
    if (active && (job.list_done === 0 || count("state = 'pending'") > 0)) at = now + delayMs;
    else if (count(`state IN ${OUTSTANDING}`) > 0) at = now + LIMITS.sweepIntervalMs;
    else if (
      spec.webhook &&
      job.finished_at !== null &&
      !job.webhook_delivered &&
      job.webhook_attempts < LIMITS.webhook.attempts
    ) {
      at = job.webhook_next_at ?? now;
    }
    if (at === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(at);
  }
}
