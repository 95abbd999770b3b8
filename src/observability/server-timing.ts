/**
 * `Server-Timing` from the classify result's per-stage timings plus the whole
 * request as the worker saw it. Browsers show it in their network panel. Stage
 * names are fixed identifiers from the service; anything that is not a valid
 * token or a finite number is dropped rather than escaped.
 */
const TOKEN = /^[A-Za-z0-9_.-]+$/;

export function serverTiming(stages: Record<string, number> | undefined, requestMs: number): string {
  const parts: string[] = [];
  for (const [name, ms] of Object.entries(stages ?? {})) {
    if (TOKEN.test(name) && Number.isFinite(ms) && ms >= 0) parts.push(`${name};dur=${ms}`);
  }
  parts.push(`request;dur=${requestMs};desc="worker, whole request"`);
  return parts.join(", ");
}
