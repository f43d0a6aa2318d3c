/** The teacher service's typed error. */
import { WorkerError } from "../worker/errors.js";

/** A teacher service could not be reached, refused the client, died mid-run, or failed a batch; names its endpoint. */
export class TeacherServiceError extends Error {
  override readonly name = "TeacherServiceError";

  constructor(
    readonly endpoint: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  /** The student worker's report of a service failure, as this error; anything else unchanged. */
  static from(error: unknown, endpoint: string): unknown {
    if (error instanceof WorkerError && error.pythonType === "TeacherServiceError") {
      return new TeacherServiceError(endpoint, error.pythonMessage, { cause: error });
    }
    return error;
  }
}
