/** Options of a distiller's train(): the loop's, plus the teacher-output cache. */
import { z } from "zod";
import type { DistillCache, TeacherCacheSpec } from "../cache/distill-cache.js";
import type { LoopOptions } from "../train/options.js";

export interface TrainOptions extends LoopOptions {
  /**
   * Teacher-output cache: a DistillCache (opened with DistillCache.open and maybe filled), or options to open one
   * for this run's teachers. `isCachingLogits: true` in the DistillationConfig means `{}` (memory only). Default off.
   */
  teacherCache?: DistillCache | TeacherCacheSpec | false;
}

/** The keys distillers add to the loop's options (their values are checked where they are used). */
export const distillerOptionKeys = { teacherCache: z.unknown().optional() } satisfies z.ZodRawShape;
