/** One entry of the op catalogue: the schema of an op's args and the schema of its result. */
import type { z } from "zod";

export interface OpSpec<A extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly args: A;
  readonly result: R;
}

export function defineOp<A extends z.ZodType, R extends z.ZodType>(args: A, result: R): OpSpec<A, R> {
  return { args, result };
}
