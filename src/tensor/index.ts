export type { DType, NestedArray, TensorStorage } from "./tensor.js";
export { bytesPerElement, Tensor } from "./tensor.js";
