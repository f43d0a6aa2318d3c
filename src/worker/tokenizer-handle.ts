import type { z } from "zod";
import type { Tensor } from "../tensor/tensor.js";
import type { PADDINGS, tokenizerDescription } from "./ops/tokenizers.js";
import type { WorkerLink } from "./worker-link.js";

export type Padding = (typeof PADDINGS)[number];

export interface EncodeOptions {
  /** Cut (and with padding "max_length", pad) to this many tokens, special tokens included. */
  maxLength?: number;
  /** "longest" (default): pad to the longest sequence of the call; "max_length": to maxLength. */
  padding?: Padding;
  /** Default true. */
  truncation?: boolean;
  /** Second segments (sentence pairs): token_type_ids 1 for them. */
  textPairs?: string[];
}

export interface EncodeWordsOptions {
  maxLength?: number;
  padding?: Padding;
  truncation?: boolean;
  /** Label every sub-token of a word, not only the first (default false: others get -100). */
  labelAllSubwords?: boolean;
}

/** What the worker says of a tokenizer it loaded. */
export type TokenizerDescription = z.output<typeof tokenizerDescription>;

/**
 * Options of `worker.loadTokenizer(path, options)`. `path` is a local folder, or a Hub id (`org/name`) read from the local
 * Hugging Face cache as for `loadModel` (never downloaded; one `ModelNotFoundError` when the cache lacks it).
 */
export interface LoadTokenizerOptions {
  /**
   * A folder whose tokenizer_config.json has an `auto_map` (or whose config.json names an AutoTokenizer class) ships
   * Python code; it is refused unless this is true, which lets transformers run that code. Only for code you trust.
   */
  trustRemoteCode?: boolean;
}

/** A Hugging Face fast tokenizer living in the worker; its results are int64 tensors, ready to be batches. */
export class TokenizerHandle {
  readonly id: string;
  readonly className: string;
  readonly vocabSize: number;
  readonly modelMaxLength: number | null;
  readonly padTokenId: number | null;
  readonly clsTokenId: number | null;
  readonly sepTokenId: number | null;
  readonly maskTokenId: number | null;
  readonly unkTokenId: number | null;
  readonly modelInputNames: readonly string[];
  private disposed = false;

  constructor(
    description: TokenizerDescription,
    /** The worker this tokenizer lives in. */
    readonly worker: WorkerLink,
  ) {
    this.id = description.handle;
    this.className = description.className;
    this.vocabSize = description.vocabSize;
    this.modelMaxLength = description.modelMaxLength;
    this.padTokenId = description.padTokenId;
    this.clsTokenId = description.clsTokenId;
    this.sepTokenId = description.sepTokenId;
    this.maskTokenId = description.maskTokenId;
    this.unkTokenId = description.unkTokenId;
    this.modelInputNames = description.modelInputNames;
  }

  /** Texts (and optional pairs) → { input_ids, attention_mask, token_type_ids? }, int64 [n, length]. */
  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Record<string, Tensor>> {
    return this.worker.call("tokenize", {
      tokenizer: this.live(),
      texts: [...texts],
      textPairs: options.textPairs ? [...options.textPairs] : null,
      maxLength: options.maxLength,
      padding: options.padding,
      truncation: options.truncation,
    });
  }

  /**
   * Pre-split words (token classification) → { input_ids, attention_mask, token_type_ids?, word_ids, labels? }.
   * `labels[i][w]` goes to the first sub-token of word w; other sub-tokens, special tokens and padding get -100.
   * `word_ids[i][t]` is the word of token t, -1 for special tokens and padding (a word cut by truncation has none).
   */
  async encodeWords(
    words: readonly (readonly string[])[],
    labels?: readonly (readonly number[])[] | null,
    options: EncodeWordsOptions = {},
  ): Promise<Record<string, Tensor>> {
    return this.worker.call("tokenize_words", {
      tokenizer: this.live(),
      words: words.map((w) => [...w]),
      labels: labels ? labels.map((l) => [...l]) : null,
      maxLength: options.maxLength,
      padding: options.padding,
      truncation: options.truncation,
      labelAllSubwords: options.labelAllSubwords,
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.worker.call("dispose_tokenizer", { tokenizer: this.live() });
    this.disposed = true;
  }

  /** The tokenizer's handle in the worker, for a request; throws once the tokenizer is disposed. */
  private live(): string {
    if (this.disposed) throw new Error(`tokenizer ${this.id} (${this.className}) was disposed`);
    return this.id;
  }
}
