/**
 * What a distiller needs of teachers that live in a teacher service: how many, their adaptors (applied on the
 * service side), and the link its student's worker opens. `TeacherService` (local) and the connection that
 * `TeacherService.connect()` returns (remote) both are one; pass either where a teacher handle goes.
 */
import type { AdaptorSpec } from "../adaptor/index.js";
import type { TeacherServiceLinkInput } from "../train/plan.js";
import type { ModelHandle } from "../worker/model-handle.js";

export interface ServedTeachers {
  readonly kind: "teacher-service";
  /** Where students' workers connect. */
  readonly endpoint: string;
  readonly teacherCount: number;
  /** The service's teacher adaptors, one per teacher, applied where the teachers run. */
  readonly adaptorT: readonly AdaptorSpec[];
  /**
   * The teachers as models in the service's worker when this script started the service (what the teacher cache
   * fingerprints and `DistillCache.fill` runs); null for a connection to a service started elsewhere.
   */
  readonly teacherModels: readonly ModelHandle[] | null;
  /** The link a student's worker opens for one run (CURVE keys are made and allow-listed here when needed). */
  link(): Promise<TeacherServiceLinkInput>;
}

export function isServedTeachers(value: unknown): value is ServedTeachers {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "teacher-service";
}
