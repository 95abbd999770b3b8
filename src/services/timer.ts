/**
 * Wall-clock milliseconds per stage. Locally these are real; in production
 * Workers' clocks only advance across I/O, so pure-CPU stages read 0 there.
 */
export type StageTimings = Record<string, number>;

export type StageTimer = ReturnType<typeof stageTimer>;

export function stageTimer() {
  const start = performance.now();
  let last = start;
  const timings: StageTimings = {};
  const round = (ms: number) => Math.round(ms * 100) / 100;
  return {
    lap(stage: string) {
      const now = performance.now();
      timings[stage] = round(now - last);
      last = now;
    },
    set(stage: string, ms: number) {
      timings[stage] = round(ms);
    },
    done(): StageTimings {
      timings.total = round(performance.now() - start);
      return timings;
    },
  };
}
