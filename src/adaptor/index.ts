export type {
  AdaptorKey,
  AdaptorSpec,
  ListSelector,
  PathSelector,
  PathStep,
  PythonAdaptorSpec,
  SelectAdaptorSpec,
  Selector,
  SliceStep,
} from "./spec.js";
export {
  ADAPTOR_KEYS,
  adaptorSpecSchema,
  describeSelector,
  describeStep,
  PYTHON_REF,
  pathStepSchema,
  pythonAdaptorSpecSchema,
  selectAdaptorSpecSchema,
  selectorSchema,
  sliceStepSchema,
} from "./spec.js";
export type { Adaptor, AdaptorFn, AdaptorResult, PythonAdaptorRef, Traced } from "./trace.js";
export { AdaptorError, toAdaptorSpec } from "./trace.js";
