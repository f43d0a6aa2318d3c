/**
 * The loss catalogue: the worker's built-in losses with their metadata, read from the losses.json the worker
 * generates from its @loss decorators, plus the user losses registered with registerLoss. The config validation
 * asks it which names exist and which layer form a match loss takes.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type LossKind = "kd" | "match";

export interface LossInfo {
  name: string;
  kind: LossKind;
  /** Match losses: one layer index ("single") or an [a, b] pair ("pair"); null: either (kd losses: null). */
  layers: "single" | "pair" | null;
  /** The adaptor keys the loss reads. */
  features: string[];
  /** Whether the loss applies its mask (matches: the student's inputs_mask). */
  mask: boolean;
  /** KD losses that learn from top-k teacher targets (teacherCache.topK). */
  sparse: boolean;
  /** KD losses that learn from sampled teacher targets (teacherCache.samples), as unbiased estimates. */
  sampled: boolean;
}

export const LOSS_CATALOGUE_PATH = fileURLToPath(new URL("../../python_worker/textbrewer_worker/losses.json", import.meta.url));

const BUILTIN: readonly LossInfo[] = (JSON.parse(readFileSync(LOSS_CATALOGUE_PATH, "utf8")) as { losses: LossInfo[] }).losses;
const user = new Map<string, LossInfo>();

const key = (kind: LossKind, name: string): string => `${kind}:${name}`;

/** The worker's built-in losses of one kind, in its registration order. */
export function builtinLosses(kind: LossKind): readonly LossInfo[] {
  return BUILTIN.filter((l) => l.kind === kind);
}

/** Built-in and registered loss names of one kind. */
export function lossNames(kind: LossKind): string[] {
  return [...builtinLosses(kind).map((l) => l.name), ...[...user.values()].filter((l) => l.kind === kind).map((l) => l.name)];
}

export function lossInfo(kind: LossKind, name: string): LossInfo | undefined {
  return BUILTIN.find((l) => l.kind === kind && l.name === name) ?? user.get(key(kind, name));
}

/** Adds a user loss's name (metadata unknown to TypeScript: the worker checks its layer form). Used by registerLoss. */
export function addUserLoss(kind: LossKind, name: string): void {
  if (builtinLosses(kind).some((l) => l.name === name)) {
    throw new Error(`registerLoss: '${name}' is a built-in ${kind} loss; give your loss another name`);
  }
  const features = kind === "kd" ? ["logits"] : ["hidden", "attention"];
  user.set(key(kind, name), { name, kind, layers: null, features, mask: kind === "match", sparse: false, sampled: false });
}
