/** Evaluation metrics: accuracy, argmax over logits, and entity-level precision/recall/F1 for BIO tags (conlleval). */
import type { Tensor } from "../tensor/tensor.js";

/** Row-wise argmax of a [n, k] (or [..., k]) float tensor: one class id per row. */
export function argmax(logits: Tensor): number[] {
  const k = logits.shape[logits.shape.length - 1]!;
  if (!k) throw new Error("argmax: empty last dimension");
  const data = logits.data as ArrayLike<number>;
  if (typeof logits.data[0] === "bigint") throw new Error("argmax: expected a float tensor");
  const out: number[] = [];
  for (let r = 0; r < data.length / k; r++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = Number(data[r * k + j]);
      if (v > bestValue) {
        bestValue = v;
        best = j;
      }
    }
    out.push(best);
  }
  return out;
}

/** Fraction of equal entries (0 for empty input). */
export function accuracy(predictions: readonly number[], labels: readonly number[]): number {
  if (predictions.length !== labels.length) throw new Error(`accuracy: ${predictions.length} predictions for ${labels.length} labels`);
  if (!labels.length) return 0;
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) right++;
  return right / labels.length;
}

export interface Entity {
  type: string;
  /** First word, inclusive. */
  start: number;
  /** Last word, exclusive. */
  end: number;
}

/**
 * Entities of a BIO tag sequence, read as conlleval does: an entity starts at B-X, or at I-X after a tag that is not
 * of type X; it continues over I-X and ends at anything else.
 */
export function bioEntities(tags: readonly string[]): Entity[] {
  const out: Entity[] = [];
  let current: Entity | null = null;
  tags.forEach((tag, i) => {
    const prefix = tag.slice(0, 2);
    const type = tag.length > 2 ? tag.slice(2) : "";
    const continues = current !== null && prefix === "I-" && type === current.type;
    if (current && !continues) {
      current.end = i;
      out.push(current);
      current = null;
    }
    if (!continues && (prefix === "B-" || prefix === "I-")) current = { type, start: i, end: i + 1 };
  });
  if (current) {
    (current as Entity).end = tags.length;
    out.push(current);
  }
  return out;
}

export interface PRF {
  precision: number;
  recall: number;
  f1: number;
  /** Gold entities. */
  support: number;
  predicted: number;
  correct: number;
}

export interface EntityScores extends PRF {
  perType: Record<string, PRF>;
}

function prf(correct: number, predicted: number, support: number): PRF {
  const precision = predicted ? correct / predicted : 0;
  const recall = support ? correct / support : 0;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f1, support, predicted, correct };
}

/** Entity-level micro precision/recall/F1 (exact span and type), overall and per type. */
export function entityF1(gold: readonly (readonly string[])[], predicted: readonly (readonly string[])[]): EntityScores {
  if (gold.length !== predicted.length) throw new Error(`entityF1: ${predicted.length} predicted sentences for ${gold.length} gold`);
  const counts = new Map<string, { correct: number; predicted: number; support: number }>();
  const bucket = (t: string) => {
    let c = counts.get(t);
    if (!c) {
      c = { correct: 0, predicted: 0, support: 0 };
      counts.set(t, c);
    }
    return c;
  };
  gold.forEach((g, i) => {
    const p = predicted[i]!;
    if (p.length !== g.length) throw new Error(`entityF1: sentence ${i} has ${p.length} predicted tags for ${g.length} words`);
    const goldEntities = bioEntities(g);
    const key = (e: Entity) => `${e.type}:${e.start}:${e.end}`;
    const goldKeys = new Set(goldEntities.map(key));
    for (const e of goldEntities) bucket(e.type).support++;
    for (const e of bioEntities(p)) {
      bucket(e.type).predicted++;
      if (goldKeys.has(key(e))) bucket(e.type).correct++;
    }
  });
  let correct = 0;
  let npred = 0;
  let support = 0;
  const perType: Record<string, PRF> = {};
  for (const type of [...counts.keys()].sort()) {
    const c = counts.get(type)!;
    perType[type] = prf(c.correct, c.predicted, c.support);
    correct += c.correct;
    npred += c.predicted;
    support += c.support;
  }
  return { ...prf(correct, npred, support), perType };
}

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  if (!values.length) throw new Error("median: empty list");
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
