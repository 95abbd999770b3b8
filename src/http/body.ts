import { ApiError } from "../errors";
import { LIMITS } from "../limits";
import { readAtMost } from "../util/stream";

/**
 * Reads the image bytes of a classify request: either the raw body (an image/*
 * or application/octet-stream content type) or the `image` field of a
 * multipart form. The size cap is enforced from Content-Length up front and
 * again while streaming, so a chunked upload cannot exceed it either.
 */
export async function readImageBody(req: Request): Promise<Uint8Array> {
  const type = (req.headers.get("content-type") ?? "").toLowerCase();
  const isMultipart = type.startsWith("multipart/form-data");
  if (!isMultipart && !type.startsWith("image/") && !type.startsWith("application/octet-stream") && type !== "") {
    throw new ApiError(
      "unsupported_media_type",
      `content-type "${type.split(";")[0]}" is not accepted: send the image bytes with an image/* content type, or multipart/form-data with an "image" field`,
    );
  }
  const body = await readCapped(req, LIMITS.maxBodyBytes);
  if (body.byteLength === 0) throw new ApiError("empty_body", "request body is empty: send an image");
  if (!isMultipart) return body;

  let form: FormData;
  try {
    form = await new Response(body, { headers: { "content-type": type } }).formData();
  } catch (e) {
    throw new ApiError("bad_request", `malformed multipart body: ${e instanceof Error ? e.message : String(e)}`);
  }
  const field = form.get("image");
  if (field === null) throw new ApiError("bad_request", 'multipart body has no "image" field');
  if (typeof field === "string") throw new ApiError("bad_request", 'multipart field "image" must be a file, not text');
  const bytes = new Uint8Array(await field.arrayBuffer());
  if (bytes.byteLength === 0) throw new ApiError("empty_body", 'multipart field "image" is empty');
  return bytes;
}

async function readCapped(req: Request, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  const bytes = await readAtMost(req.body, max);
  if (!bytes) throw tooLarge(max);
  return bytes;
}

function tooLarge(max: number): ApiError {
  return new ApiError("payload_too_large", `request body exceeds ${max} bytes (${(max / 1048576).toFixed(0)} MiB)`);
}
