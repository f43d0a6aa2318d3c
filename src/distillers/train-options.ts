/** Options of a distiller's train(): the loop's, plus the teacher-output cache. */
import { z } from "zod";
import type { DistillCache, TeacherCacheSpec } from "../cache/distill-cache.js";
import type { LoopOptions } from "../train/options.js";
import type { TokenizerHandle } from "../worker/tokenizer-handle.js";

export interface TrainOptions extends LoopOptions {
  /**
   * Teacher-output cache: a DistillCache (opened with DistillCache.open and maybe filled), or options to open one
   * for this run's teachers. `isCachingLogits: true` in the DistillationConfig means `{}` (memory only). Default off.
   */
  teacherCache?: DistillCache | TeacherCacheSpec | false;
  /**
   * The teacher's and the student's tokenizers: before training, the vocabulary preflight compares their tokens
   * (different tokenizers are refused unless kdLossType is "uld"). Without them only the logits' sizes are compared.
   */
  tokenizers?: { teacher: TokenizerHandle; student: TokenizerHandle };
}

/** The keys distillers add to the loop's options (their values are checked where they are used). */
export const distillerOptionKeys = { teacherCache: z.unknown().optional(), tokenizers: z.unknown().optional() } satisfies z.ZodRawShape;
