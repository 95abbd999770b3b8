import type { z } from "zod";
import { ApiError } from "../errors";
import { ImageUrl } from "../jobs/schema";
import { LIMITS } from "../limits";
import type { ImageInput } from "../services/inputs";
import { readAtMost } from "../util/stream";
import { ImageJson } from "./schemas";

const ACCEPTED =
  'send the image bytes with an image/* content type, multipart/form-data with an "image" field, or JSON {"image":"<base64>"} / {"url":"..."}';

/**
 * Reads the image bytes of an upload: the raw body (an image/* or
 * application/octet-stream content type) or the `image` field of a multipart
 * form. The size cap is enforced from Content-Length up front and again while
 * streaming, so a chunked upload cannot exceed it either.
 */
export async function readImageBody(req: Request): Promise<Uint8Array> {
  const type = contentType(req);
  if (!isMultipart(type) && !isRawImage(type)) {
    throw new ApiError(
      "unsupported_media_type",
      `content-type "${type}" is not accepted: send the image bytes with an image/* content type, or multipart/form-data with an "image" field`,
    );
  }
  const input = await readImageInput(req);
  if (input.kind !== "bytes") throw new ApiError("bad_request", 'this endpoint takes image bytes, not a "url"');
  return input.bytes;
}

/**
 * Reads the image of a classify or embed request, in any accepted form: raw
 * bytes, multipart (`image` file or `url` text field), or JSON with exactly one
 * of `image` (base64) and `url`. URLs are returned unfetched.
 */
export async function readImageInput(req: Request): Promise<ImageInput> {
  const type = contentType(req);
  if (isJson(type)) return parseImageJson(await readJson(req));
  if (!isMultipart(type) && !isRawImage(type)) {
    throw new ApiError("unsupported_media_type", `content-type "${type}" is not accepted: ${ACCEPTED}`);
  }
  const body = await readNonEmpty(req);
  if (!isMultipart(type)) return { kind: "bytes", bytes: body };

  const form = await parseForm(body, req);
  const file = form.get("image");
  const url = form.get("url");
  if (file !== null && url !== null) throw bothError();
  if (url !== null) {
    if (typeof url !== "string") throw new ApiError("bad_request", 'multipart field "url" must be text');
    return { kind: "url", url: parseUrl(url) };
  }
  if (file === null) throw new ApiError("bad_request", 'multipart body has no "image" field');
  return { kind: "bytes", bytes: await formFile(file) };
}

/**
 * Reads a batch: multipart with repeated `image` (file) and/or `url` (text)
 * fields in order, or JSON `{"images":[{"image"}|{"url"}, ...]}`. A malformed
 * envelope (no items, too many, unknown fields) fails the request; a bad item
 * (invalid base64, both image and url, empty file) becomes that item's error.
 */
export async function readBatchInput(req: Request): Promise<Array<ImageInput | ApiError>> {
  const type = contentType(req);
  let items: Array<() => Promise<ImageInput>>;
  if (isJson(type)) {
    const raw = await readJson(req);
    if (!isObject(raw) || !Array.isArray(raw.images) || Object.keys(raw).some((k) => k !== "images")) {
      throw new ApiError(
        "invalid_parameter",
        'the JSON body must be {"images": [{"image": "<base64>"} | {"url": "..."}, ...]}',
      );
    }
    items = raw.images.map((item) => async () => parseImageJson(item));
  } else if (isMultipart(type)) {
    const form = await parseForm(await readNonEmpty(req), req);
    items = [];
    for (const [name, value] of form.entries()) {
      if (name === "image") {
        items.push(async () => {
          if (typeof value === "string")
            throw new ApiError("bad_request", 'multipart field "image" must be a file, not text');
          return { kind: "bytes", bytes: await formFile(value) };
        });
      } else if (name === "url") {
        items.push(async () => {
          if (typeof value !== "string") throw new ApiError("bad_request", 'multipart field "url" must be text');
          return { kind: "url", url: parseUrl(value) };
        });
      } else {
        throw new ApiError("bad_request", `unknown multipart field "${name}": use "image" (file) or "url" (text)`);
      }
    }
  } else {
    throw new ApiError(
      "unsupported_media_type",
      `content-type "${type}" is not accepted: send multipart/form-data with "image"/"url" fields, or JSON {"images":[...]}`,
    );
  }
  if (items.length === 0) throw new ApiError("invalid_parameter", "the batch has no images");
  if (items.length > LIMITS.batchMaxItems) {
    throw new ApiError(
      "invalid_parameter",
      `a batch takes at most ${LIMITS.batchMaxItems} images; got ${items.length}`,
    );
  }
  const out: Array<ImageInput | ApiError> = [];
  for (const read of items) {
    try {
      out.push(await read());
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      out.push(e);
    }
  }
  return out;
}

/** Reads a JSON body (capped like any body) and validates it with `schema`. */
export async function readJsonBody<S extends z.ZodType>(req: Request, schema: S): Promise<z.infer<S>> {
  const type = contentType(req);
  if (!isJson(type)) {
    throw new ApiError(
      "unsupported_media_type",
      `this endpoint takes a JSON body (content-type: application/json), not "${type}"`,
    );
  }
  const parsed = schema.safeParse(await readJson(req));
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data;
}

function parseImageJson(raw: unknown): ImageInput {
  if (!isObject(raw)) {
    throw new ApiError("invalid_parameter", 'expected a JSON object: {"image": "<base64>"} or {"url": "..."}');
  }
  if ("image" in raw && "url" in raw) throw bothError();
  if (!("image" in raw) && !("url" in raw)) {
    throw new ApiError(
      "invalid_parameter",
      'expected {"image": "<base64>"} or {"url": "..."}: neither field is present',
    );
  }
  // Validate against the branch the client meant, so the message names its field.
  const [byImage, byUrl] = ImageJson.options;
  if ("url" in raw) {
    const parsed = byUrl.safeParse(raw);
    if (!parsed.success) throw invalid(parsed.error);
    return { kind: "url", url: parsed.data.url };
  }
  const parsed = byImage.safeParse(raw);
  if (!parsed.success) throw invalid(parsed.error);
  return { kind: "bytes", bytes: decodeBase64(parsed.data.image) };
}

/**
 * Strict base64 (standard or URL-safe alphabet, padding optional, whitespace
 * ignored, an optional data: URL prefix): anything else is a 400 rather than
 * silently decoding garbage into bytes that then fail as "not an image".
 */
export function decodeBase64(text: string): Uint8Array {
  let s = text;
  const prefix = /^data:[^,]{0,200};base64,/i.exec(s);
  if (prefix) s = s.slice(prefix[0].length);
  s = s.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s) || s.length % 4 === 1 || (s.includes("=") && s.length % 4 !== 0)) {
    throw new ApiError("invalid_parameter", "invalid image: not valid base64");
  }
  if (s.length === 0) throw new ApiError("empty_body", "invalid image: the base64 string is empty");
  const binary = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function parseUrl(raw: string): string {
  const parsed = ImageUrl.safeParse(raw);
  if (!parsed.success) throw new ApiError("invalid_parameter", `invalid url: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function invalid(error: z.ZodError): ApiError {
  const issue = error.issues[0];
  return new ApiError(
    "invalid_parameter",
    `invalid ${issue?.path.join(".") || "body"}: ${issue?.message ?? "bad value"}`,
  );
}

function bothError(): ApiError {
  return new ApiError("invalid_parameter", "send either an image or a url, not both");
}

async function readJson(req: Request): Promise<unknown> {
  const body = await readNonEmpty(req);
  try {
    return JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new ApiError("bad_request", "request body is not valid JSON");
  }
}

async function parseForm(body: Uint8Array, req: Request): Promise<FormData> {
  try {
    return await new Response(body, { headers: { "content-type": req.headers.get("content-type") ?? "" } }).formData();
  } catch (e) {
    throw new ApiError("bad_request", `malformed multipart body: ${e instanceof Error ? e.message : String(e)}`);
  }
}

async function formFile(file: File | string): Promise<Uint8Array> {
  if (typeof file === "string") throw new ApiError("bad_request", 'multipart field "image" must be a file, not text');
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.byteLength === 0) throw new ApiError("empty_body", 'multipart field "image" is empty');
  return bytes;
}

async function readNonEmpty(req: Request): Promise<Uint8Array> {
  const body = await readCapped(req, LIMITS.maxBodyBytes);
  if (body.byteLength === 0) throw new ApiError("empty_body", "request body is empty: send an image");
  return body;
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

const contentType = (req: Request) => (req.headers.get("content-type") ?? "").toLowerCase().split(";")[0]?.trim() ?? "";
const isJson = (type: string) => /^application\/([a-z.-]+\+)?json$/.test(type);
const isMultipart = (type: string) => type === "multipart/form-data";
const isRawImage = (type: string) => type.startsWith("image/") || type === "application/octet-stream" || type === "";
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
