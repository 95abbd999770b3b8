import type { Context } from "hono";
import { cacheTtl } from "../cache";
import { LIMITS } from "../limits";
import type { RegisteredModel } from "../models/registry";
import { sha256Hex } from "../util/hash";

/** Bump when the result JSON changes shape, so clients' stored ETags stop matching. */
const RESULT_FORMAT = "r1";

/**
 * A strong ETag for a result: everything that determines it (what was asked,
 * the exact image bytes, the exact model build, the parameters). Computed
 * before any inference, so a matching If-None-Match costs a hash, not a run.
 * The per-request `cached` flag and `timings_ms` are diagnostics that vary
 * between otherwise identical answers and are deliberately not part of it.
 */
export async function resultEtag(
  kind: "classify" | "embed",
  imageSha: string,
  model: RegisteredModel,
  params: Record<string, string | number>,
): Promise<string> {
  const parts = [
    RESULT_FORMAT,
    kind,
    model.versionKey,
    imageSha,
    ...Object.entries(params).map(([k, v]) => `${k}=${v}`),
  ];
  const digest = await sha256Hex(new TextEncoder().encode(parts.join("\n")));
  return `"${digest.slice(0, 40)}"`;
}

/** RFC 9110 If-None-Match: "*" or a list of (possibly weak) tags, compared weakly. */
export function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  const opaque = (t: string) => t.trim().replace(/^W\//, "");
  return header.split(",").some((t) => opaque(t) === opaque(etag));
}

/**
 * A result for uploaded bytes never changes for this model build, so it may be
 * kept as long as the KV cache keeps it; a URL's content can change, so its
 * result is only fresh for a few minutes.
 */
export function resultCacheControl(env: Env, fromUrl: boolean): string {
  const maxAge = fromUrl ? LIMITS.urlResultMaxAgeSeconds : cacheTtl(env.CACHE_TTL_SECONDS);
  return `public, max-age=${maxAge}`;
}

/** Headers for a result, and the 304 to send instead when the client already has it. */
export async function conditional(
  c: Context<{ Bindings: Env }>,
  tag: {
    kind: "classify" | "embed";
    imageSha: string;
    model: RegisteredModel;
    params: Record<string, string | number>;
  },
  fromUrl: boolean,
): Promise<{ headers: Record<string, string>; notModified: Response | undefined }> {
  const etag = await resultEtag(tag.kind, tag.imageSha, tag.model, tag.params);
  const headers = { etag, "cache-control": resultCacheControl(c.env, fromUrl) };
  const notModified = ifNoneMatch(c.req.header("if-none-match"), etag)
    ? new Response(null, { status: 304, headers })
    : undefined;
  return { headers, notModified };
}
