import type { z } from "zod";
import { ApiError } from "../errors";

/** Validates query parameters with zod; any problem is a 400 naming the parameter. */
export function parseQuery<S extends z.ZodType>(schema: S, url: string): z.infer<S> {
  const params = Object.fromEntries(new URL(url).searchParams);
  const result = schema.safeParse(params);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join(".") || "query";
    throw new ApiError("invalid_parameter", `invalid ${where}: ${issue?.message ?? "bad value"}`);
  }
  return result.data;
}
