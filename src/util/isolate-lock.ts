/**
 * Coordination between concurrent requests in one isolate WITHOUT sharing
 * promises. workerd ties a promise's continuations to the request that
 * created it: a request awaiting a promise created (or chained) by another
 * request can hang forever once that other request ends. So waiters poll plain
 * module state with their own timers instead of awaiting someone else's promise.
 *
 * Pattern: `while (busy()) await sleep(2);` immediately followed, with no
 * await in between, by taking the resource, so the last check and the claim
 * happen in one synchronous step (nothing else can run in between).
 */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A mutex for one isolate. A holder whose request was cancelled mid-way never
 * releases it, so a lock held longer than `staleMs` is taken over.
 */
export class IsolateMutex {
  private heldSince: number | null = null;
  constructor(private readonly staleMs: number) {}

  private held(): boolean {
    return this.heldSince !== null && Date.now() - this.heldSince < this.staleMs;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    while (this.held()) await sleep(2);
    const mine = Date.now();
    this.heldSince = mine;
    try {
      return await fn();
    } finally {
      if (this.heldSince === mine) this.heldSince = null;
    }
  }
}
