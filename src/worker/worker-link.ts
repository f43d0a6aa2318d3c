/**
 * What a model or tokenizer handle knows of the worker it lives in, and what a training run needs of it: sending
 * requests and the worker's facts. `Worker` implements it; the handles and the training code depend on this
 * interface rather than on worker.ts, which creates the handles (so the two do not import each other).
 */

export interface WorkerInfo {
  python: string;
  executable: string;
  torch: string;
  transformers: string;
  pyzmq: string;
  libzmq: string;
  numpy: string;
  cuda: boolean;
  cudaVersion: string | null;
  devices: string[];
  device: string;
  threads: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface WorkerLink {
  readonly info: WorkerInfo;
  /** Sends one request; resolves with its result (tensors as Tensor). See `Worker.call`. */
  call(op: string, args?: Record<string, unknown>, options?: CallOptions): Promise<unknown>;
  /** Calls a Python function "file.py:function" in the worker with keyword arguments. See `Worker.runPython`. */
  runPython(ref: string, args?: Record<string, unknown>, options?: CallOptions): Promise<unknown>;
}
