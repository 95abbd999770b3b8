/**
 * Request metrics in Workers Analytics Engine (the METRICS binding; optional:
 * without it nothing is written and nothing breaks). One data point per
 * request. Analytics Engine columns are positional, so the layout is fixed here
 * and documented for SQL queries:
 *
 *   index1  key id (the sampling key: a busy key cannot drown out the others)
 *   blob1   route pattern      blob2 method      blob3 model ("" if none)
 *   blob4   cache (hit|miss|mixed|"")             blob5 error code ("" if none)
 *   double1 status             double2 duration_ms
 *   double3 images classified  double4 cache hits (1 or 0; batches: 1 if all hit)
 *   double5 is 4xx (1/0)       double6 is 5xx (1/0)
 *   double7 decode_ms          double8 preprocess_ms    double9 infer_ms
 *
 * e.g. SELECT blob3 AS model, SUM(_sample_interval * double3) AS images
 *      FROM edgetag_requests WHERE timestamp > NOW() - INTERVAL '1' DAY GROUP BY model
 */
import type { RequestRecord } from "./record";

export function dataPoint(r: RequestRecord): AnalyticsEngineDataPoint {
  const ok = r.status >= 200 && r.status < 300;
  return {
    indexes: [r.key_id ?? "anonymous"],
    blobs: [r.route, r.method, r.model ?? "", r.cache ?? "", r.error ?? ""],
    doubles: [
      r.status,
      r.duration_ms,
      ok ? (r.items ?? 0) : 0,
      ok && r.cache === "hit" ? 1 : 0,
      r.status >= 400 && r.status < 500 ? 1 : 0,
      r.status >= 500 ? 1 : 0,
      r.stages_ms?.decode ?? 0,
      r.stages_ms?.preprocess ?? 0,
      r.stages_ms?.infer ?? 0,
    ],
  };
}

export function writeMetrics(dataset: AnalyticsEngineDataset | undefined, r: RequestRecord): void {
  if (!dataset) return;
  try {
    // Fire and forget by design: writeDataPoint is synchronous and never blocks the response.
    dataset.writeDataPoint(dataPoint(r));
  } catch (e) {
    console.warn(`metrics: writeDataPoint failed: ${String(e)}`);
  }
}
