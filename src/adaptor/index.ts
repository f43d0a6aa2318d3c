export {
  ADAPTOR_KEYS,
  PYTHON_REF,
  adaptorSpecSchema,
  describeSelector,
  describeStep,
  pathStepSchema,
  pythonAdaptorSpecSchema,
  selectAdaptorSpecSchema,
  selectorSchema,
  sliceStepSchema,
} from "./spec.js";
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
export { AdaptorError, toAdaptorSpec } from "./trace.js";
export type { Adaptor, AdaptorFn, AdaptorResult, PythonAdaptorRef, Traced } from "./trace.js";
