import { Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../errors";
import { parseQuery } from "../http/query";
import { JobRequest } from "../jobs/schema";
import { jobStub } from "../jobs/stub";
import { LIMITS } from "../limits";
import { getModel } from "../models/registry";

const JobId = z.string().uuid();

function jobIdParam(raw: string): string {
  if (!JobId.safeParse(raw).success) throw new ApiError("not_found", `no job ${raw}`);
  return raw;
}

const ResultsQuery = z.object({
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(LIMITS.resultsPage.max).default(LIMITS.resultsPage.default),
});

export const jobRoutes = new Hono<{ Bindings: Env }>()
  .post("/", async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/json")) {
      throw new ApiError("unsupported_media_type", "POST /v1/jobs takes a JSON body (content-type: application/json)");
    }
    let raw: unknown;
    try {
      raw = await c.req.json();
    } catch {
      throw new ApiError("bad_request", "request body is not valid JSON");
    }
    const parsed = JobRequest.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError("invalid_parameter", `invalid ${issue?.path.join(".") || "body"}: ${issue?.message}`);
    }
    const req = parsed.data;
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
  .get("/:id", async (c) => {
    const id = jobIdParam(c.req.param("id"));
    const status = await jobStub(c.env.JOBS, id).status();
    if (!status) throw new ApiError("not_found", `no job ${id}`);
    return c.json(status);
  })
  .get("/:id/results", async (c) => {
    const id = jobIdParam(c.req.param("id"));
    const { after, limit } = parseQuery(ResultsQuery, c.req.url);
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
  })
  .delete("/:id", async (c) => {
    const id = jobIdParam(c.req.param("id"));
    const status = await jobStub(c.env.JOBS, id).cancel();
    if (!status) throw new ApiError("not_found", `no job ${id}`);
    return c.json(status);
  });
