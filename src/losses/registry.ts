/** User losses written in Python, registered from TypeScript and imported once by the worker. */
import { PYTHON_REF } from "../adaptor/spec.js";
import { addUserLoss } from "./catalogue.js";

export interface CustomLoss {
  name: string;
  /** "kd": fn(logits_S, logits_T, temperature); "match": fn(feat_S, feat_T, mask=None). */
  kind: "kd" | "match";
  /**
   * "path/to/file.py:function" (relative to the worker's working directory) or "package.module:function". The
   * function may declare its metadata with the worker's `@loss(name, kind=..., layers="single" | "pair")`
   * decorator; the worker then checks the matches' layer forms against it when training starts.
   */
  python: string;
}

const registered = new Map<string, CustomLoss>();

/** The one way to add a loss: makes `name` usable as kdLossType (kind "kd") or as a match's loss (kind "match"). */
export function registerLoss(loss: CustomLoss): void {
  if (typeof loss.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(loss.name)) {
    throw new Error(`registerLoss: name '${String(loss.name)}' must be an identifier (letters, digits, '_', '.', '-')`);
  }
  if (loss.kind !== "kd" && loss.kind !== "match")
    throw new Error(`registerLoss: kind must be "kd" or "match", got '${String(loss.kind)}'`);
  if (!PYTHON_REF.test(loss.python) && !/^[A-Za-z_][\w.]*:[A-Za-z_]\w*$/.test(loss.python)) {
    throw new Error(`registerLoss: python '${loss.python}' should be "file.py:function" or "package.module:function"`);
  }
  const key = `${loss.kind}:${loss.name}`;
  const previous = registered.get(key);
  if (previous && previous.python !== loss.python) {
    throw new Error(`registerLoss: the ${loss.kind} loss '${loss.name}' is already registered from ${previous.python}`);
  }
  addUserLoss(loss.kind, loss.name);
  registered.set(key, { name: loss.name, kind: loss.kind, python: loss.python });
}

/** The plan entries the worker imports at configure time. */
export function customLossPlan(): CustomLoss[] {
  return [...registered.values()].map(({ kind, name, python }) => ({ kind, name, python }));
}
