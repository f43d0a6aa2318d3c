export { ConfigError, formatZodError, suggestName } from "./errors.js";
export type { ConfigProblem, FormatOptions } from "./errors.js";
export { TrainingConfig } from "./training-config.js";
export type { TrainingConfigInput } from "./training-config.js";
export type { SafeParseResult } from "./errors.js";
export {
  DistillationConfig,
  FEATURES,
  KD_LOSS_NAMES,
  MATCH_LOSS_NAMES,
  PROJECTION_KINDS,
  kdLossNames,
  matchLossNames,
} from "./distillation-config.js";
export type {
  DistillationConfigInput,
  IntermediateMatch,
  IntermediateMatchInput,
  LayerForm,
  Projection,
  ProjectionGroupOptions,
  TemperatureScheduler,
  TemperatureSchedulerInput,
} from "./distillation-config.js";
