import type { JobTracker } from "./tracker";

/** The Durable Object of one job, addressed by the job's id. */
export function jobStub(ns: DurableObjectNamespace<JobTracker>, jobId: string): DurableObjectStub<JobTracker> {
  return ns.get(ns.idFromName(jobId));
}
