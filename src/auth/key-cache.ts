/**
 * Keys this isolate has verified against KV, remembered for a short while so
 * a busy key costs one KV read per isolate per TTL instead of one per request:
 * KV reads are billed per call (the edge cache's `cacheTtl` saves latency,
 * not the read), and each one is a round trip before any work starts. Only
 * positive answers are kept: an unknown or revoked key is read again every
 * time, so creating a key takes effect at once, and only revocation can lag
 * (by this TTL on top of KV's own; see LIMITS.apiKeyIsolateCacheSeconds).
 */
import type { AuthenticatedKey } from "./verify";

export class VerifiedKeyCache {
  private readonly entries = new Map<string, { key: AuthenticatedKey; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    // Date.now(), not performance.now(): in production both stand still during
    // CPU work and advance with I/O, which is all a TTL needs.
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** The key verified under this hash, unless its entry has expired. */
  get(hash: string): AuthenticatedKey | undefined {
    const entry = this.entries.get(hash);
    if (!entry) return undefined;
    if (this.now() >= entry.until) {
      this.entries.delete(hash);
      return undefined;
    }
    return entry.key;
  }

  set(hash: string, key: AuthenticatedKey): void {
    this.entries.delete(hash); // re-inserted last: Map order is insertion order, oldest first
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(hash, { key, until: this.now() + this.ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}
