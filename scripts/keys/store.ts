/**
 * API key records in a KV namespace (local state through getPlatformProxy, or
 * a test's binding). The same record shape and hashing as the worker
 * (src/auth/keys.ts); only hashes are written.
 */
import {
  ApiKeyRecord,
  generateKey,
  hashKey,
  type KeyTier,
  KV_LIST_PREFIX,
  keyIdOf,
  kvName,
  newRecord,
} from "../../src/auth/keys";
import { DEV_API_KEY, DEV_KEY_NAME } from "./dev-key";

export interface StoredKey {
  hash: string;
  record: ApiKeyRecord;
}

/** The record is also the metadata, so `list` needs no per-key reads. */
async function write(kv: KVNamespace, hash: string, record: ApiKeyRecord): Promise<void> {
  await kv.put(kvName(hash), JSON.stringify(record), { metadata: record });
}

/** Mints a key, stores its hash, and returns the key: the only time it exists outside the caller's hands. */
export async function createKey(kv: KVNamespace, name: string, rate: KeyTier): Promise<{ key: string } & StoredKey> {
  const key = generateKey();
  const hash = await hashKey(key);
  const record = newRecord(hash, name, rate);
  await write(kv, hash, record);
  return { key, hash, record };
}

/** Stores a given key (dev and test keys, whose value is fixed); leaves an existing record alone. */
export async function ensureKey(kv: KVNamespace, key: string, name: string, rate: KeyTier): Promise<StoredKey> {
  const hash = await hashKey(key);
  const existing = ApiKeyRecord.safeParse(await kv.get(kvName(hash), "json"));
  if (existing.success) return { hash, record: existing.data };
  const record = newRecord(hash, name, rate);
  await write(kv, hash, record);
  return { hash, record };
}

export function seedDevKey(kv: KVNamespace): Promise<StoredKey> {
  return ensureKey(kv, DEV_API_KEY, DEV_KEY_NAME, "bulk");
}

export async function listKeys(kv: KVNamespace, idPrefix = ""): Promise<StoredKey[]> {
  const out: StoredKey[] = [];
  let cursor: string | undefined;
  do {
    const page: KVNamespaceListResult<unknown> = await kv.list({
      prefix: KV_LIST_PREFIX + idPrefix,
      ...(cursor && { cursor }),
    });
    for (const k of page.keys) {
      const hash = k.name.slice(KV_LIST_PREFIX.length);
      const record = ApiKeyRecord.safeParse(k.metadata ?? (await kv.get(k.name, "json")));
      if (record.success) out.push({ hash, record: record.data });
      else console.error(`skipping malformed record ${k.name.slice(0, KV_LIST_PREFIX.length + 16)}…`);
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

/** Marks a key revoked (kept, not deleted: a revoked key gets 403 and stays listed for the audit trail). */
export async function revokeKey(kv: KVNamespace, id: string, now = new Date()): Promise<StoredKey> {
  const matches = await listKeys(kv, id);
  const found = matches.find((m) => keyIdOf(m.hash) === id);
  if (!found) throw new Error(`no API key with id ${id}`);
  if (found.record.revoked) return found;
  const record = ApiKeyRecord.parse({ ...found.record, revoked: now.toISOString() });
  await write(kv, found.hash, record);
  return { hash: found.hash, record };
}
