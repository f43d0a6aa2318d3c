/**
 * The selection rule of suggestLayerMap, on similarity matrices alone (no worker), so it is testable by itself.
 *
 * Teacher hidden states are indexed as the adaptor's `hidden` list: 0 is the embedding output, 1..L the layers.
 * 1. Groups. The teacher's layers 1..L are cut into `numLayers` contiguous groups; student layer i stands for group i
 *    and is matched to the group's last layer. The cut maximises Σ_j sim(j, end(group(j))): every teacher layer should
 *    resemble the layer its group hands on, so no group hides a large change of representation. sim is linear CKA,
 *    mixed with attention-map similarity: (cka + w·att) / (1 + w), w = attentionWeight (default 0.5).
 * 2. layerMap. Student layer i starts as the teacher layer l of its group [a, b] whose input and output look most like
 *    the group's: the largest cka(l-1, a-1) + cka(l, b) (layer l's module index is l-1).
 * 3. Matches. hidden_mse S0↔T0 (embeddings) and S_i↔T_end(i). When a student's similarity is given, the student layers
 *    1..k are instead matched to the teacher layers, strictly increasing with the last on the last, that maximise the
 *    sum of their CKA.
 */

export interface SimilarityMatrices {
  /** Linear CKA between teacher hidden states, [L+1][L+1]. */
  teacherCka: number[][];
  /** Attention-map similarity between teacher layers, [L][L] (layer 1 at index 0). */
  teacherAttention?: number[][];
  /** Linear CKA of student hidden states (rows, [k+1]) against teacher hidden states (columns, [L+1]). */
  crossCka?: number[][];
  crossAttention?: number[][];
}

export interface LayerSelection {
  /** Student layer i starts as teacher layer layerMap[i] (module index, 0-based): pass to createModel. */
  layerMap: number[];
  /** Per student layer, the teacher hidden-state indices [first, last] it stands for. */
  groups: [number, number][];
  /** Student hidden index → teacher hidden index, embeddings (0 ↔ 0) first. */
  pairs: [student: number, teacher: number][];
  /** The objective of the cut (higher is better), for comparison between choices. */
  score: number;
}

function check(name: string, m: number[][], rows: number, cols: number): void {
  if (m.length !== rows || m.some((r) => r.length !== cols || r.some((v) => !Number.isFinite(v)))) {
    throw new Error(`${name}: expected a ${rows}×${cols} matrix of finite numbers`);
  }
}

/** Cuts 1..L into k contiguous groups maximising Σ_j sim(j, end of j's group); returns the groups' ends. */
export function bestCut(sim: (j: number, end: number) => number, layers: number, k: number): { ends: number[]; score: number } {
  // cost[a][b]: the score of one group a..b
  const cost = (a: number, b: number): number => {
    let s = 0;
    for (let j = a; j <= b; j++) s += sim(j, b);
    return s;
  };
  const best: number[][] = Array.from({ length: k + 1 }, () => new Array<number>(layers + 1).fill(Number.NEGATIVE_INFINITY));
  const from: number[][] = Array.from({ length: k + 1 }, () => new Array<number>(layers + 1).fill(-1));
  best[0]![0] = 0;
  for (let i = 1; i <= k; i++) {
    for (let e = i; e <= layers - (k - i); e++) {
      for (let p = i - 1; p < e; p++) {
        const v = best[i - 1]![p]! + cost(p + 1, e);
        if (v > best[i]![e]!) {
          best[i]![e] = v;
          from[i]![e] = p;
        }
      }
    }
  }
  const ends: number[] = [];
  for (let i = k, e = layers; i > 0; i--) {
    ends.unshift(e);
    e = from[i]![e]!;
  }
  return { ends, score: best[k]![layers]! };
}

/** Student layers 1..k to teacher layers 1..L, strictly increasing, the last on L, maximising Σ cka. */
export function monotoneMatch(cross: number[][], layers: number, k: number): number[] {
  const best: number[][] = Array.from({ length: k + 1 }, () => new Array<number>(layers + 1).fill(Number.NEGATIVE_INFINITY));
  const from: number[][] = Array.from({ length: k + 1 }, () => new Array<number>(layers + 1).fill(-1));
  best[0]![0] = 0;
  for (let i = 1; i <= k; i++) {
    for (let t = i; t <= layers; t++) {
      for (let p = i - 1; p < t; p++) {
        const v = best[i - 1]![p]! + cross[i]![t]!;
        if (v > best[i]![t]!) {
          best[i]![t] = v;
          from[i]![t] = p;
        }
      }
    }
  }
  const out: number[] = [];
  for (let i = k, t = layers; i > 0; i--) {
    out.unshift(t);
    t = from[i]![t]!;
  }
  return out;
}

/** Applies the rule above. `numLayers` is the student's number of layers. */
export function selectLayers(m: SimilarityMatrices, numLayers: number, attentionWeight = 0.5): LayerSelection {
  const L = m.teacherCka.length - 1;
  if (!Number.isInteger(numLayers) || numLayers < 1 || numLayers > L) {
    throw new Error(`numLayers: ${numLayers} is not a student depth for a ${L}-layer teacher; use an integer in 1..${L}`);
  }
  if (!(attentionWeight >= 0)) throw new Error(`attentionWeight: ${attentionWeight} must be a number ≥ 0`);
  check("teacherCka", m.teacherCka, L + 1, L + 1);
  const att = m.teacherAttention;
  if (att) check("teacherAttention", att, L, L);
  const w = att ? attentionWeight : 0;
  const sim = (j: number, e: number): number => (m.teacherCka[j]![e]! + (w > 0 ? w * att![j - 1]![e - 1]! : 0)) / (1 + w);
  const { ends, score } = bestCut(sim, L, numLayers);
  const groups: [number, number][] = ends.map((e, i) => [i === 0 ? 1 : ends[i - 1]! + 1, e]);
  const cka = m.teacherCka;
  const layerMap = groups.map(([a, b]) => {
    let pick = a;
    for (let l = a + 1; l <= b; l++) {
      if (cka[l - 1]![a - 1]! + cka[l]![b]! > cka[pick - 1]![a - 1]! + cka[pick]![b]!) pick = l;
    }
    return pick - 1;
  });
  let targets = ends;
  if (m.crossCka) {
    check("crossCka", m.crossCka, numLayers + 1, L + 1);
    targets = monotoneMatch(m.crossCka, L, numLayers);
  }
  const pairs: [number, number][] = [[0, 0], ...targets.map((t, i): [number, number] => [i + 1, t])];
  return { layerMap, groups, pairs, score };
}
