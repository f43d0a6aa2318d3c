/**
 * A fine-tuned teacher kept between runs: `<dir>/teacher.json` names the best checkpoint (relative to `dir`) and a
 * fingerprint of what made it (source, settings, training set). A run whose fingerprint matches reuses the checkpoint.
 * The sentiment demo writes the same file (with `devAccuracy`) in runs/demo/teacher.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const TEACHER_MARKER = "teacher.json";

export interface TeacherMarker {
  fingerprint: string;
  /** The checkpoint folder, relative to the marker's folder. */
  checkpoint: string;
  step?: number;
  teacherSource?: string;
  /** The dev score the checkpoint was chosen by (devAccuracy in the sentiment demo, devF1 in the NER example). */
  devAccuracy?: number;
  devF1?: number;
}

export function fingerprintOf(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex");
}

/** The marker in `dir` when its checkpoint exists (and, given a fingerprint, when it matches); otherwise null. */
export function readTeacherMarker(dir: string, fingerprint?: string): TeacherMarker | null {
  const path = join(dir, TEACHER_MARKER);
  if (!existsSync(path)) return null;
  let marker: TeacherMarker;
  try {
    marker = JSON.parse(readFileSync(path, "utf8")) as TeacherMarker;
  } catch {
    return null;
  }
  if (
    typeof marker.checkpoint !== "string" ||
    !(existsSync(join(dir, marker.checkpoint, "model", "config.json")) || existsSync(join(dir, marker.checkpoint, "config.json")))
  )
    return null;
  if (fingerprint !== undefined && marker.fingerprint !== fingerprint) return null;
  return marker;
}

export function writeTeacherMarker(dir: string, marker: TeacherMarker): void {
  writeFileSync(join(dir, TEACHER_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}
