import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ApiError } from "../errors";
import { readJsonBody } from "../http/body";
import { type AppEnv, errorResponses, router, schemaRef, type ValidationResult, validationHook } from "../http/openapi";
import { Prediction } from "../http/schemas";
import { type ItemResult, JobRequest, type JobStatus as JobStatusType } from "../jobs/schema";
import { jobStub } from "../jobs/stub";
import { LIMITS } from "../limits";
import { getModel } from "../models/registry";

const JobStatus = z
  .object({
    id: z.string(),
    state: z.enum(["queued", "running", "done", "failed", "cancelled"]),
    model: z.string(),
    top_k: z.number().int(),
    counts: z.object({
      total: z.number().int(),
      pending: z.number().int(),
      done: z.number().int(),
      failed: z.number().int(),
      skipped: z.number().int(),
      cached: z.number().int(),
    }),
    total_final: z.boolean().openapi({ description: "false while a prefix is still being listed (total grows)" }),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
    elapsed_s: z.number().nullable(),
    images_per_s: z.number().nullable(),
    webhook: z
      .object({
        url: z.string(),
        delivered: z.boolean(),
        attempts: z.number().int(),
        last_error: z.string().nullable(),
      })
      .optional(),
    error: z.string().optional(),
  })
  .openapi("JobStatus");

const ItemSource = z.union([z.object({ url: z.string() }), z.object({ key: z.string() })]);
const JobItemResult = z
  .object({
    item: z.number().int().min(0),
    source: ItemSource,
    status: z.enum(["done", "failed", "skipped"]),
    sha256: z.string().optional(),
    cached: z.boolean().optional(),
    predictions: z.array(Prediction).optional(),
    error: z.object({ code: z.string(), message: z.string() }).optional(),
  })
  .openapi("JobItemResult");

// The tracker's TypeScript types and these schemas must describe the same JSON.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _statusMatches: Same<z.infer<typeof JobStatus>, JobStatusType> = true;
const _itemMatches: Same<z.infer<typeof JobItemResult>, ItemResult> = true;
void _statusMatches;
void _itemMatches;

const JobCreated = z
  .object({ id: z.string().uuid(), state: JobStatus.shape.state, status_url: z.string(), results_url: z.string() })
  .openapi("JobCreated");

const JobIdParams = z.object({ id: z.string().uuid().openapi({ description: "job id (from POST /v1/jobs)" }) });

/** A malformed job id names no job: 404, the same as an unknown one. */
function jobIdHook(result: ValidationResult, c: Context<AppEnv>): undefined {
  if (!result.success && result.target === "param") throw new ApiError("not_found", `no job ${c.req.param("id")}`);
  return validationHook(result);
}

const createJob = createRoute({
  method: "post",
  path: "/",
  tags: ["jobs"],
  summary: "Start a bulk tagging job",
  description:
    "Images from URLs, R2 keys in the images bucket, and/or a whole R2 prefix are tagged by queue consumers; poll the status or pass a webhook (HMAC-signed with your secret).",
  request: { body: { required: true, content: { "application/json": { schema: schemaRef("JobRequest") } } } },
  responses: {
    202: {
      description: "Accepted; the Location header is the status URL",
      headers: { Location: { schema: { type: "string" } } },
      content: { "application/json": { schema: JobCreated } },
    },
    ...errorResponses(
      "invalid_parameter",
      "bad_request",
      "empty_body",
      "unknown_model",
      "payload_too_large",
      "unsupported_media_type",
    ),
  },
});

const getJob = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["jobs"],
  summary: "A job's progress",
  request: { params: JobIdParams },
  responses: {
    200: { description: "Status and counts", content: { "application/json": { schema: JobStatus } } },
    ...errorResponses("not_found"),
  },
});

const jobResults = createRoute({
  method: "get",
  path: "/{id}/results",
  tags: ["jobs"],
  summary: "A page of a job's item results (NDJSON)",
  description:
    "One JSON object per line, in completion order. Pass X-Next-After back as `after` for the next page; an empty page while X-Job-State is terminal means you have everything.",
  request: {
    params: JobIdParams,
    query: z.object({
      after: z.coerce.number().int().min(0).default(0).openapi({ description: "cursor from X-Next-After" }),
      limit: z.coerce.number().int().min(1).max(LIMITS.resultsPage.max).default(LIMITS.resultsPage.default),
    }),
  },
  responses: {
    200: {
      description: "Item results, one per line",
      headers: {
        "X-Next-After": { description: "cursor for the next page", schema: { type: "string" } },
        "X-Job-State": { description: "the job's state when the page was read", schema: { type: "string" } },
      },
      content: { "application/x-ndjson": { schema: JobItemResult } },
    },
    ...errorResponses("invalid_parameter", "not_found"),
  },
});

const cancelJob = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["jobs"],
  summary: "Cancel a job (items not yet started are skipped)",
  request: { params: JobIdParams },
  responses: {
    200: { description: "The job's status after cancelling", content: { "application/json": { schema: JobStatus } } },
    ...errorResponses("not_found"),
  },
});

export const jobRoutes = router()
  .openapi(createJob, async (c) => {
    const req = await readJsonBody(c.req.raw, JobRequest);
    const model = getModel(req.model);
    const id = crypto.randomUUID();
    const status = await jobStub(c.env.JOBS, id).create({
      id,
      model: model.manifest.id,
      top_k: req.top_k,
      source: req.source,
      ...(req.webhook ? { webhook: req.webhook } : {}),
    });
    return c.json(
      { id, state: status.state, status_url: `/v1/jobs/${id}`, results_url: `/v1/jobs/${id}/results` },
      202,
      { location: `/v1/jobs/${id}` },
    );
  })
  .openapi(
    getJob,
    async (c) => {
      const { id } = c.req.valid("param");
      const status = await jobStub(c.env.JOBS, id).status();
      if (!status) throw new ApiError("not_found", `no job ${id}`);
      return c.json(status, 200);
    },
    jobIdHook,
  )
  .openapi(
    // zod-openapi's types reject a non-JSON, non-text body (NDJSON); the handler is
    // registered without its response schema and the spec gets the full route below.
    { ...jobResults, hide: true, responses: { 200: { description: "NDJSON" } } },
    async (c) => {
      const { id } = c.req.valid("param");
      const { after, limit } = c.req.valid("query");
      const stub = jobStub(c.env.JOBS, id);
      const status = await stub.status();
      if (!status) throw new ApiError("not_found", `no job ${id}`);
      const page = await stub.results(after, limit);
      const body = page.items.map((r) => `${JSON.stringify(r)}\n`).join("");
      return c.body(body, 200, {
        "content-type": "application/x-ndjson",
        // Opaque cursor for the next page; an empty page with a terminal job means "complete".
        "x-next-after": String(page.next),
        "x-job-state": status.state,
      });
    },
    jobIdHook,
  )
  .openapi(
    cancelJob,
    async (c) => {
      const { id } = c.req.valid("param");
      const status = await jobStub(c.env.JOBS, id).cancel();
      if (!status) throw new ApiError("not_found", `no job ${id}`);
      return c.json(status, 200);
    },
    jobIdHook,
  );

jobRoutes.openAPIRegistry.register("JobRequest", JobRequest);
jobRoutes.openAPIRegistry.registerPath(jobResults);
