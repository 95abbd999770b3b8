/**
 * Who is calling: turns an `Authorization: Bearer <key>` header into a known,
 * unrevoked key, or an ApiError (401 missing/unknown, 403 revoked, 503 when
 * the key store cannot be read). Takes its stores as arguments so tests and
 * the middleware share one path.
 */
import { ApiError } from "../errors";
import { LIMITS } from "../limits";
import type { VerifiedKeyCache } from "./key-cache";
import { ApiKeyRecord, hashKey, isPlausibleKey, type KeyTier, keyIdOf, kvName, parseHashList } from "./keys";

export interface AuthenticatedKey {
  /** Hash prefix: safe to log, names the key in `npm run keys -- list`. */
  id: string;
  name: string;
  rate: KeyTier;
  source: "kv" | "secret";
}

export interface KeyStores {
  /** The API_KEYS namespace (optional: a deploy may use only the secret list). */
  kv?: KVNamespace;
  /** The API_KEY_HASHES secret. */
  hashList?: string;
  /** Keys already verified against KV by this isolate (the middleware passes one; see key-cache.ts). */
  verified?: VerifiedKeyCache;
}

/** RFC 6750: a 401 says which scheme to use, and `invalid_token` when a token was sent but is no good. */
const CHALLENGE = 'Bearer realm="edgetag"';
const unauthorized = (message: string, invalidToken: boolean) =>
  new ApiError("unauthorized", message, {
    "WWW-Authenticate": invalidToken ? `${CHALLENGE}, error="invalid_token"` : CHALLENGE,
  });

export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === "") {
    throw unauthorized("this endpoint needs an API key: send Authorization: Bearer <key>", false);
  }
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match) throw unauthorized("the Authorization header must be: Bearer <key>", true);
  const token = match[1] as string;
  if (!isPlausibleKey(token)) throw unauthorized("invalid API key", true);
  return token;
}

export async function authenticate(header: string | undefined, stores: KeyStores): Promise<AuthenticatedKey> {
  const token = bearerToken(header);
  const hash = await hashKey(token);

  // The secret list first: no I/O, and it keeps those keys working while KV is down.
  const fromSecret = matchHashList(hash, stores.hashList);
  if (fromSecret) return fromSecret;

  if (!stores.kv) throw unauthorized("invalid API key", true);
  const known = stores.verified?.get(hash);
  if (known) return known;
  let raw: unknown;
  try {
    // The KV name is the hash itself, so this lookup compares no secret:
    // its timing can at most reveal something about SHA-256(key), never the key.
    raw = await stores.kv.get(kvName(hash), { type: "json", cacheTtl: LIMITS.apiKeyCacheTtlSeconds });
  } catch (e) {
    // Fail closed: an unverifiable key is not a valid key. Clients retry.
    console.error(`auth: key store read failed: ${String(e)}`);
    throw new ApiError("auth_unavailable", "the API key store is unavailable; retry shortly", { "Retry-After": "5" });
  }
  if (raw === null) throw unauthorized("invalid API key", true);
  const record = ApiKeyRecord.safeParse(raw);
  if (!record.success || record.data.id !== keyIdOf(hash)) {
    // An operator error (hand-edited record); refuse rather than guess, and say so in the logs.
    console.error(`auth: malformed key record ${keyIdOf(hash)}; refusing it`);
    throw unauthorized("invalid API key", true);
  }
  if (record.data.revoked) throw new ApiError("forbidden", `API key ${record.data.id} was revoked`);
  const key: AuthenticatedKey = { id: record.data.id, name: record.data.name, rate: record.data.rate, source: "kv" };
  stores.verified?.set(hash, key);
  return key;
}

interface ParsedList {
  raw: string;
  entries: Array<{ hash: Uint8Array; id: string; rate: KeyTier }>;
}
let parsedList: ParsedList | undefined;

/** Parsed once per isolate per secret value; malformed entries are logged once. */
function hashList(raw: string): ParsedList {
  if (parsedList?.raw === raw) return parsedList;
  const { entries, errors } = parseHashList(raw);
  for (const e of errors) console.error(`auth: ${e} (skipped)`);
  parsedList = { raw, entries: entries.map((e) => ({ hash: fromHex(e.hash), id: keyIdOf(e.hash), rate: e.rate })) };
  return parsedList;
}

/**
 * Compares against every listed hash in constant time and without stopping at
 * a match, so neither which entry matched nor how much of it leaks by timing.
 */
function matchHashList(hashHex: string, raw: string | undefined): AuthenticatedKey | undefined {
  if (!raw) return undefined;
  const presented = fromHex(hashHex);
  let found: AuthenticatedKey | undefined;
  for (const entry of hashList(raw).entries) {
    if (crypto.subtle.timingSafeEqual(entry.hash, presented) && !found) {
      found = { id: entry.id, name: "API_KEY_HASHES", rate: entry.rate, source: "secret" };
    }
  }
  return found;
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
