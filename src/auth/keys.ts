/**
 * API keys: their format, their stored record and how both are derived. Shared
 * by the worker (verification) and scripts/keys.ts (creation, listing,
 * revocation), so the two can never disagree on a hash or a record shape.
 *
 * Only SHA-256(key) is ever stored. A key is 256 random bits, so a plain
 * (unsalted, fast) hash is enough: there is no dictionary to attack, and a
 * leaked KV namespace or secret list does not let anyone call the API.
 */
import { z } from "zod";
import { LIMITS } from "../limits";
import { toHex } from "../util/hash";

/** Prefix of generated keys: makes a leaked key recognisable to secret scanners and in support tickets. */
export const KEY_PREFIX = "et_";

/** KV name of a key's record. The KV name is the hash, so a lookup needs no secret comparison. */
export const kvName = (hash: string) => `key:${hash}`;
export const KV_LIST_PREFIX = "key:";

/**
 * Tiers select a Workers rate-limiting binding (LIMITS.rateLimits). A key
 * cannot carry arbitrary numbers because the binding's limit is fixed in
 * wrangler.toml; "unlimited" skips the check (internal tools, load tests).
 */
export const KeyTier = z.enum(["standard", "bulk", "unlimited"]);
export type KeyTier = z.infer<typeof KeyTier>;

/** The first 16 hex digits of the hash: safe to log and show, and enough to find the record by prefix. */
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "a lower-case hex SHA-256");
export const KeyId = z.string().regex(/^[0-9a-f]{16}$/, "16 lower-case hex digits");
export const keyIdOf = (hash: string) => hash.slice(0, 16);

/** The stored record (KV value, and its metadata too so that listing needs no reads). */
export const ApiKeyRecord = z.object({
  id: KeyId,
  name: z.string().min(1).max(100),
  created: z.iso.datetime(),
  revoked: z.iso.datetime().optional(),
  rate: KeyTier.default("standard"),
});
export type ApiKeyRecord = z.infer<typeof ApiKeyRecord>;

/**
 * RFC 6750 b64token, length-capped. Anything else in the header is refused
 * before hashing, so a client cannot make us hash megabytes.
 */
const TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
export function isPlausibleKey(token: string): boolean {
  return token.length >= LIMITS.apiKeyLength.min && token.length <= LIMITS.apiKeyLength.max && TOKEN.test(token);
}

export async function hashKey(key: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key))));
}

/** A new key: the prefix and 32 random bytes as base64url (46 characters). */
export function generateKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const b64 = btoa(String.fromCharCode(...bytes));
  return KEY_PREFIX + b64.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function newRecord(hash: string, name: string, rate: KeyTier, now = new Date()): ApiKeyRecord {
  return ApiKeyRecord.parse({ id: keyIdOf(hash), name, created: now.toISOString(), rate });
}

/** One API_KEY_HASHES entry: `<sha256 hex>` or `<sha256 hex>:<tier>`. */
const HashListEntry = z
  .string()
  .transform((s) => s.trim().toLowerCase())
  .pipe(
    z.string().regex(new RegExp(`^[0-9a-f]{64}(:(${KeyTier.options.join("|")}))?$`), "expected <sha256 hex>[:<tier>]"),
  )
  .transform((s) => {
    const [hash, tier] = s.split(":") as [string, KeyTier | undefined];
    return { hash, rate: tier ?? ("standard" as KeyTier) };
  });
export type HashListEntry = z.infer<typeof HashListEntry>;

/**
 * Parses the API_KEY_HASHES secret. A malformed entry is skipped and reported
 * (not fatal): one typo must not lock every other key out.
 */
export function parseHashList(raw: string | undefined): { entries: HashListEntry[]; errors: string[] } {
  const entries: HashListEntry[] = [];
  const errors: string[] = [];
  for (const [i, part] of (raw ?? "").split(",").entries()) {
    if (part.trim() === "") continue;
    const parsed = HashListEntry.safeParse(part);
    if (parsed.success) entries.push(parsed.data);
    else errors.push(`API_KEY_HASHES entry ${i + 1}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  }
  return { entries, errors };
}
