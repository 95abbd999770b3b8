import { LIMITS } from "../limits";
import { type LoadOptions, OverPrefetchBudget } from "./sources";

export interface PrefetchLimits {
  /** Loads running ahead of the consumer at once. */
  maxInFlight: number;
  /** Bytes loaded (or reserved for loads in flight) ahead of the item being classified. */
  maxBytes: number;
  /** Ready items handed out in a row without a turn of the event loop (see take()). */
  turnEvery: number;
}

/** Hands out a batch's items in order, each prepared in the background while earlier ones are classified. */
export interface Prefetcher<T> {
  /**
   * Item `i`, prepared (call with 0, 1, 2 ... in order), or that item's own
   * error: a failed load never affects another item.
   */
  take(i: number): Promise<T>;
}

/**
 * Loads item `i` (its bytes, and whatever I/O goes with them). Prefetches pass
 * `prefetchMaxBytes`: an image above it must end in OverPrefetchBudget.
 */
export type Prepare<T> = (i: number, opts: LoadOptions) => Promise<T>;

interface Slot<T> {
  /** Bytes this slot counts against the budget: its cap while in flight, its size once loaded, 0 once taken. */
  held: number;
  taken: boolean;
  settled: boolean;
  /** Resolves to undefined when the image was over the cap: it is loaded again when taken. */
  result: Promise<T | undefined>;
}

/**
 * Overlaps a job item's I/O (R2 get or URL fetch, then the cache lookup) with
 * classification, which is CPU: while item i is decoded and inferred, items
 * i+1... load. Bounded twice:
 *  - at most `maxInFlight` prefetches at once (they are subrequests, and a
 *    Worker has 6 simultaneous connections; the cache writes of the items
 *    being classified need some too);
 *  - at most `maxBytes` ahead of the consumer. Each prefetch may read up to
 *    maxBytes / maxInFlight; a bigger image stops early (R2: from its size,
 *    before the body; URL: from Content-Length or while streaming) and is
 *    loaded again, uncapped, when its turn comes, as it would be without
 *    prefetching. Once loaded, a slot counts its real size, so small images
 *    run far ahead. The item being classified is not counted (it was held
 *    before prefetching existed too).
 */
export function prefetchImages<T extends { bytes: Uint8Array }>(
  count: number,
  prepare: Prepare<T>,
  limits: PrefetchLimits = LIMITS.jobPrefetch,
): Prefetcher<T> {
  const cap = Math.floor(limits.maxBytes / limits.maxInFlight);
  const slots: Array<Slot<T> | undefined> = [];
  let next = 0; // next item to prefetch
  let inFlight = 0;
  let held = 0;
  let sinceTurn = 0;

  const pump = () => {
    while (next < count && inFlight < limits.maxInFlight && held + cap <= limits.maxBytes) {
      start(next++);
    }
  };

  const start = (i: number) => {
    const slot: Slot<T> = { held: cap, taken: false, settled: false, result: Promise.resolve(undefined) };
    held += cap;
    inFlight++;
    const settle = (bytes: number) => {
      slot.settled = true;
      inFlight--;
      if (!slot.taken) {
        held += bytes - slot.held;
        slot.held = bytes;
      }
      pump();
    };
    slot.result = prepare(i, { prefetchMaxBytes: cap }).then(
      (prepared) => {
        settle(prepared.bytes.byteLength);
        return prepared;
      },
      (e: unknown) => {
        settle(0);
        if (e instanceof OverPrefetchBudget) return undefined;
        throw e;
      },
    );
    // Observed when the item is taken; until then an early failure must not count as unhandled.
    slot.result.catch(() => undefined);
    slots[i] = slot;
  };

  pump();
  return {
    async take(i) {
      const slot = slots[i];
      if (next <= i) next = i + 1; // the consumer overtook the prefetcher: load this one directly
      if (slot && !slot.taken) {
        slot.taken = true;
        held -= slot.held;
        slot.held = 0;
      }
      pump();
      if (!slot) return prepare(i, {});
      // Classification is CPU that never returns to the event loop, so while it
      // runs, responses to the loads in flight, the batch's cache writes and any
      // other request to this isolate wait for a turn. Waiting for an item that
      // is not ready gives them one; a ready item still takes one while loads are
      // in flight, and at least every `turnEvery` items. Not after every item:
      // each turn costs something, and a batch's I/O is cheaper handled together.
      if (!slot.settled) sinceTurn = 0;
      else if (inFlight > 0 || ++sinceTurn >= limits.turnEvery) {
        sinceTurn = 0;
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      return slot.result.then((prepared) => prepared ?? prepare(i, {}));
    },
  };
}
