/** Summary statistics and the alternating runner every side-by-side comparison uses. */

export interface Summary {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile (no interpolation): with few samples p95 is the largest but one or so, never invented. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  return {
    n: s.length,
    median: median(s),
    p95: percentile(s, 95),
    min: s[0] ?? Number.NaN,
    max: s[s.length - 1] ?? Number.NaN,
    mean: s.reduce((a, b) => a + b, 0) / (s.length || 1),
  };
}

/** One contender in a side-by-side comparison: `run` performs one timed operation and returns milliseconds. */
export interface Contender {
  name: string;
  run: () => Promise<number>;
}

/**
 * Runs the contenders round-robin — A B C, then B C A, then C A B … — so slow
 * drift of a shared, loaded machine (thermal, other processes) hits every
 * contender alike, and no contender always runs right after the same one.
 * The first `warmup` rounds are discarded.
 */
export async function alternate(
  contenders: readonly Contender[],
  opts: { warmup: number; iterations: number; onRound?: (round: number) => void },
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(contenders.map((c) => [c.name, []]));
  const rounds = opts.warmup + opts.iterations;
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(round + k) % contenders.length] as Contender;
      const ms = await c.run();
      if (round >= opts.warmup) samples[c.name]?.push(ms);
    }
    opts.onRound?.(round);
  }
  return samples;
}

export const round2 = (x: number): number => Math.round(x * 100) / 100;
