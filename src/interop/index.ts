/**
 * `textbrewer-ts/interop`: Python outside the training worker. Checkpoints described without a worker, a pythonia
 * bridge for object-level calls, and the managed Python environment (what `npx textbrewer setup` and `doctor` run).
 */
export type { DoctorReport, PackageCheck, ResolvedPython, SetupOptions } from "../env/python-env.js";
export { doctor, formatDoctor, PythonEnvError, resolvePython, setupPythonEnv } from "../env/python-env.js";
export type { CheckpointInfo, TensorInfo } from "./inspect.js";
export { CheckpointInspectError, inspectCheckpoint } from "./inspect.js";
export type { PythonBridge, WithPythonOptions } from "./pythonia.js";
export { withPython } from "./pythonia.js";
