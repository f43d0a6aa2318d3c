/**
 * Tiny causal language models and tokenizers for the LLM tests, built on the spot with the worker's interpreter:
 * random GPT-2s of given vocabularies, and word-level or BPE tokenizers trained on a few texts.
 */
import { Tensor } from "../../src/index.js";
import { runPython } from "./fixtures.js";

export interface TinyGpt2Options {
  vocab: number;
  layers?: number;
  hidden?: number;
  seed?: number;
  /** std of the initial weights (GPT-2's 0.02; larger gives a peakier random distribution) */
  initRange?: number;
}

/** Random-initialised GPT2LMHeadModels (no dropout), each saved with save_pretrained into its folder (one process). */
export async function makeTinyGpt2s(models: Record<string, TinyGpt2Options>): Promise<void> {
  const code = `
import sys, json, torch
from transformers import GPT2Config, GPT2LMHeadModel
for folder, o in json.loads(sys.argv[1]).items():
    torch.manual_seed(o.get("seed", 0))
    cfg = GPT2Config(vocab_size=o["vocab"], n_positions=64, n_embd=o.get("hidden", 16), n_layer=o.get("layers", 1),
                     n_head=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     initializer_range=o.get("initRange", 0.02))
    GPT2LMHeadModel(cfg).save_pretrained(folder, safe_serialization=True)
`;
  await runPython(code, [JSON.stringify(models)]);
}

/**
 * Fast tokenizers trained on `texts`, each saved into its folder (one process): "word" (one id per word) or "bpe"
 * (sub-word pieces, up to vocabSize); "<pad>" is id 0 and the padding token.
 */
export async function makeTrainedTokenizers(
  tokenizers: Record<string, { kind: "word" | "bpe"; vocabSize?: number }>,
  texts: readonly string[],
): Promise<void> {
  const code = `
import sys, json
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
texts = json.loads(sys.argv[2])
for folder, o in json.loads(sys.argv[1]).items():
    if o["kind"] == "word":
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        trainer = trainers.WordLevelTrainer(special_tokens=["<pad>", "<unk>"])
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        trainer = trainers.BpeTrainer(vocab_size=o.get("vocabSize", 200), special_tokens=["<pad>", "<unk>"])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                            model_input_names=["input_ids", "attention_mask"]).save_pretrained(folder)
`;
  await runPython(code, [JSON.stringify(tokenizers), JSON.stringify(texts)]);
}

/** A causal-LM batch from an encoding: labels are the input ids, −100 on the padding (every real token a target). */
export function withLabels(encoding: Record<string, Tensor>): Record<string, Tensor> {
  const ids = encoding.input_ids!.toArray() as bigint[][];
  const mask = encoding.attention_mask!.toArray() as bigint[][];
  const labels = ids.map((row, b) => row.map((id, i) => (mask[b]![i] === 0n ? -100n : id)));
  return { input_ids: encoding.input_ids!, attention_mask: encoding.attention_mask!, labels: Tensor.from(labels, "int64") };
}
