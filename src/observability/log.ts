import type { RequestRecord } from "./record";

/**
 * One JSON line per request on stdout, which Workers Logs (and `wrangler tail`)
 * index by field. The level follows the status so 5xx can be alerted on.
 */
export function logRequest(record: RequestRecord): void {
  const level = record.status >= 500 ? "error" : record.status >= 400 ? "warn" : "info";
  console.log(JSON.stringify({ level, msg: "request", ...record }));
}
