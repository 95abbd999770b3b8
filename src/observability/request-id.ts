import { LIMITS } from "../limits";

/**
 * Echo a caller's x-request-id when it looks like an id (so a client or proxy
 * can correlate its own logs with ours), otherwise mint a fresh one. Anything
 * long or odd is replaced rather than trusted: it ends up in our logs.
 */
const SANE = /^[A-Za-z0-9._:@/+=-]+$/;

export function requestIdFrom(header: string | null | undefined): string {
  if (header && header.length <= LIMITS.maxRequestIdLength && SANE.test(header)) return header;
  return crypto.randomUUID();
}
