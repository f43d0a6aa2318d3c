/**
 * `textbrewer-ts/service`: the teacher as a service. Teachers run in a worker process of their own; students'
 * workers read their outputs directly. Pass a started service (or a connection to one) where a distiller or
 * `DistillCache.open` takes a teacher.
 */
export { TeacherServiceError } from "./errors.js";
export type { ServedTeachers } from "./served-teachers.js";
export { isServedTeachers } from "./served-teachers.js";
export type { ClientOptions, ConnectOptions, ServiceDType, TeacherServiceOptions, TeacherServiceStats } from "./teacher-service.js";
export { TeacherConnection, TeacherService } from "./teacher-service.js";
