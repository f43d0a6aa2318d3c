export { Tensor, bytesPerElement } from "./tensor.js";
export type { DType, NestedArray, TensorStorage } from "./tensor.js";
