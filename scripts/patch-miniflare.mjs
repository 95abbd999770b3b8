#!/usr/bin/env node
/**
 * Works around a miniflare bug that stalls local queues (wrangler dev and the
 * vitest pool both use miniflare).
 *
 * The queue broker's `#flush` awaits a few things outside its try/catch, e.g.
 * the loopback call that prints "QUEUE <name> n/m". When one of them rejects
 * (seen here as "Network connection lost"), `#flush` rejects and never resets
 * `#pendingFlush`, so that queue is never flushed again: a bulk job stops at
 * its first batch until wrangler dev restarts.
 *
 * This wraps `#flush` so a failure is logged, the pending flag is cleared and
 * the remaining messages are scheduled again. It is idempotent, and if
 * miniflare's code no longer looks as expected it changes nothing and says so.
 * It runs on `npm install` / `npm ci` (postinstall).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const targets = [
  join(root, "node_modules/miniflare/dist/src/workers/queues/broker.worker.js"),
  // @cloudflare/vitest-pool-workers pins the same miniflare; npm may nest a copy.
  join(
    root,
    "node_modules/@cloudflare/vitest-pool-workers/node_modules/miniflare/dist/src/workers/queues/broker.worker.js",
  ),
  join(root, "node_modules/wrangler/node_modules/miniflare/dist/src/workers/queues/broker.worker.js"),
];
const MARK = "/* edgetag: flush guard */";
const FLUSH = "#flush = async () => {";
const SCHEDULE = "this.timers.setTimeout(this.#flush, delay)";
const GUARD = `${MARK} #flushGuarded = async () => { try { await this.#flush(); } catch (e) { try { await this.logWithLevel(LogLevel.ERROR, "queue broker: flush failed, rescheduling: " + String(e)); } catch {} this.#pendingFlush = void 0; if (this.#messages.length > 0) this.#ensurePendingFlush(); } };\n  `;

let patched = 0;
for (const file of targets) {
  if (!existsSync(file)) continue;
  const src = readFileSync(file, "utf8");
  if (src.includes(MARK)) {
    patched++;
    continue;
  }
  if (!src.includes(FLUSH) || !src.includes(SCHEDULE)) {
    console.warn(`patch-miniflare: ${file} does not look as expected; left unpatched`);
    continue;
  }
  writeFileSync(
    file,
    src.replace(FLUSH, GUARD + FLUSH).replace(SCHEDULE, "this.timers.setTimeout(this.#flushGuarded, delay)"),
  );
  patched++;
}
console.log(`patch-miniflare: queue broker flush guard in place (${patched} file${patched === 1 ? "" : "s"})`);
