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
export {
  DistillationConfig,
  FEATURES,
  KD_LOSS_NAMES,
  kdLossNames,
  MATCH_LOSS_NAMES,
  matchLossNames,
  PROJECTION_KINDS,
} from "./distillation-config.js";
export type { ConfigProblem, FormatOptions, SafeParseResult } from "./errors.js";
export { ConfigError, formatZodError, suggestName } from "./errors.js";
export type { TrainingConfigInput } from "./training-config.js";
export { TrainingConfig } from "./training-config.js";
