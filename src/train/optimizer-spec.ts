/** The optimizer and learning-rate schedule a run asks for (part of train() options and of the plan). */
import { z } from "zod";

const groupOptions = {
  lr: z.number().positive().optional(),
  weightDecay: z.number().min(0).optional(),
  betas: z.tuple([z.number(), z.number()]).optional(),
  eps: z.number().positive().optional(),
  momentum: z.number().min(0).optional(),
};

export const OptimizerSpec = z.strictObject({
  type: z.enum(["AdamW", "Adam", "SGD"]).default("AdamW"),
  ...groupOptions,
  lr: z.number().positive(),
  /** Parameter groups chosen by a regex searched in each parameter's name; first match wins, the rest use the defaults. */
  groups: z.array(z.strictObject({ pattern: z.string().min(1), ...groupOptions })).default([]),
});
export type OptimizerSpec = z.output<typeof OptimizerSpec>;
export type OptimizerSpecInput = z.input<typeof OptimizerSpec>;

/** The usual "no weight decay for bias and LayerNorm" group. */
export const NO_DECAY_GROUP = { pattern: "bias|LayerNorm\\.weight$|layer_norm\\.weight$", weightDecay: 0 } as const;

export const SchedulerSpec = z
  .strictObject({
    type: z.enum(["constant", "linear", "cosine"]),
    warmupSteps: z.int().min(0).optional(),
    warmupRatio: z.number().min(0).max(1).optional(),
    minLrRatio: z.number().min(0).max(1).optional(),
  })
  .refine((s) => s.warmupSteps === undefined || s.warmupRatio === undefined, {
    message: "give warmupSteps or warmupRatio, not both",
  });
export type SchedulerSpec = z.output<typeof SchedulerSpec>;
