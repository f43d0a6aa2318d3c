/**
 * The training plan that train_configure sends once per run. Only its top-level frame is typed here: the keys every
 * plan has. The rest (the objective, the optimizer, schedules, AMP) passes through as the distillers and the loop
 * build it, and the worker's session reads it. Kept apart so that a full plan schema can replace this one alone.
 */
import { z } from "zod";
import { modelId } from "./wire-types.js";

export const trainPlan = z.looseObject({
  /** "distiller": a teacher and an objective; "trainer": the student's own loss (BasicTrainer). */
  strategy: z.enum(["distiller", "trainer"]),
  student: modelId,
});
export type TrainPlan = z.input<typeof trainPlan>;
