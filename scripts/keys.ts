/**
 * API key management. Keys are shown once, at creation; only their SHA-256 is stored.
 *
 *   npm run keys -- create --name <who> [--tier standard|bulk|unlimited] [--remote]
 *   npm run keys -- list [--remote]
 *   npm run keys -- revoke <id> [--remote]
 *   npm run keys -- hash            # reads a key on stdin, prints its API_KEY_HASHES entry
 *
 * Without --remote it works on the local KV state that `npm run dev` uses
 * (.wrangler/state). With --remote it does the local part (minting the key,
 * hashing) and prints the wrangler commands that write to your account's
 * API_KEYS namespace, like `npm run models:seed -- --remote`.
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { getPlatformProxy } from "wrangler";
import {
  type ApiKeyRecord,
  generateKey,
  hashKey,
  KeyId,
  KeyTier,
  KV_LIST_PREFIX,
  kvName,
  newRecord,
} from "../src/auth/keys";
import { createKey, listKeys, revokeKey } from "./keys/store";

const ROOT = resolve(import.meta.dirname, "..");
const USAGE = `usage: npm run keys -- create --name <who> [--tier ${KeyTier.options.join("|")}] [--remote]
       npm run keys -- list [--remote]
       npm run keys -- revoke <id> [--remote]
       npm run keys -- hash    (key on stdin -> its API_KEY_HASHES entry)`;

class UsageError extends Error {}

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

function putCommand(hash: string, record: ApiKeyRecord): string {
  const json = JSON.stringify(record);
  return `npx wrangler kv key put --binding API_KEYS --remote ${shellQuote(kvName(hash))} ${shellQuote(json)} --metadata ${shellQuote(json)}`;
}

async function withLocalKv<T>(fn: (kv: KVNamespace) => Promise<T>): Promise<T> {
  const proxy = await getPlatformProxy<{ API_KEYS: KVNamespace }>({
    configPath: join(ROOT, "wrangler.toml"),
    persist: true,
  });
  try {
    return await fn(proxy.env.API_KEYS);
  } finally {
    await proxy.dispose();
  }
}

function show(r: ApiKeyRecord): string {
  return `${r.id}  ${r.rate.padEnd(9)}  ${r.created}  ${r.revoked ? `REVOKED ${r.revoked}` : "active".padEnd(32)}  ${r.name}`;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").trim();
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      tier: { type: "string", default: "standard" },
      remote: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const remote = values.remote;

  switch (command) {
    case "create": {
      const name = values.name?.trim();
      if (!name || name.length > 100) throw new UsageError("create needs --name <who> (1-100 characters)");
      const tier = KeyTier.safeParse(values.tier);
      if (!tier.success) throw new UsageError(`--tier must be one of ${KeyTier.options.join(", ")}`);
      if (remote) {
        const key = generateKey();
        const hash = await hashKey(key);
        const record = newRecord(hash, name, tier.data);
        console.error("Store the key's hash in your account's API_KEYS namespace with:");
        console.error(`  ${putCommand(hash, record)}`);
        console.error(`or add this entry to the API_KEY_HASHES secret: ${hash}:${tier.data}`);
        console.error(`\nid ${record.id} (${tier.data}). The key, shown only now:`);
        console.log(key);
        return 0;
      }
      const created = await withLocalKv((kv) => createKey(kv, name, tier.data));
      console.error(`created ${created.record.id} (${tier.data}) in local KV. The key, shown only now:`);
      console.log(created.key);
      return 0;
    }
    case "list": {
      if (remote) {
        console.error("The records are in each key's metadata:");
        console.log(`npx wrangler kv key list --binding API_KEYS --remote --prefix ${KV_LIST_PREFIX}`);
        return 0;
      }
      const keys = await withLocalKv((kv) => listKeys(kv));
      if (keys.length === 0) console.error("no keys in local KV (npm run models:seed adds the dev key)");
      for (const k of keys) console.log(show(k.record));
      return 0;
    }
    case "revoke": {
      const id = KeyId.safeParse(rest[0]);
      if (!id.success) throw new UsageError("revoke needs the key's id (16 hex digits, from `list`)");
      if (remote) {
        const now = new Date().toISOString();
        console.log(`# 1. find the key's KV name (key:<hash>) and its record (the metadata):
npx wrangler kv key list --binding API_KEYS --remote --prefix ${KV_LIST_PREFIX}${id.data}
# 2. write the record back with "revoked" set (kept, so the key answers 403, not 401):
npx wrangler kv key put --binding API_KEYS --remote 'key:<hash>' '{"id":"${id.data}","name":"<name>","created":"<created>","rate":"<rate>","revoked":"${now}"}' --metadata '<the same JSON>'
# A key in the API_KEY_HASHES secret is revoked by removing its entry: wrangler secret put API_KEY_HASHES`);
        return 0;
      }
      const revoked = await withLocalKv((kv) => revokeKey(kv, id.data));
      console.log(show(revoked.record));
      return 0;
    }
    case "hash": {
      const key = await readStdin();
      if (!key) throw new UsageError("hash reads the key on stdin");
      const tier = KeyTier.safeParse(values.tier);
      if (!tier.success) throw new UsageError(`--tier must be one of ${KeyTier.options.join(", ")}`);
      console.log(`${await hashKey(key)}:${tier.data}`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof UsageError || (e instanceof Error && "code" in e && String(e.code).startsWith("ERR_PARSE_ARGS"))) {
      console.error(`${e.message}\n${USAGE}`);
      process.exit(2);
    }
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
