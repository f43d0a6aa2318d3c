import type { Tensor } from "../tensor/tensor.js";
import type { WorkerLink } from "./worker-link.js";

export type Padding = "longest" | "max_length" | "do_not_pad";

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

export interface TokenizerDescription {
  handle: string;
  className: string;
  vocabSize: number;
  modelMaxLength: number | null;
  padTokenId: number | null;
  clsTokenId: number | null;
  sepTokenId: number | null;
  maskTokenId: number | null;
  unkTokenId: number | null;
  modelInputNames: string[];
}

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

type Call = (op: string, args?: Record<string, unknown>) => Promise<unknown>;

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
    private readonly call: Call,
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
    return (await this.invoke("tokenize", {
      texts: [...texts],
      textPairs: options.textPairs ? [...options.textPairs] : null,
      maxLength: options.maxLength ?? null,
      padding: options.padding ?? "longest",
      truncation: options.truncation ?? true,
    })) as Record<string, Tensor>;
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
    return (await this.invoke("tokenize_words", {
      words: words.map((w) => [...w]),
      labels: labels ? labels.map((l) => [...l]) : null,
      maxLength: options.maxLength ?? null,
      padding: options.padding ?? "longest",
      truncation: options.truncation ?? true,
      labelAllSubwords: options.labelAllSubwords ?? false,
    })) as Record<string, Tensor>;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    await this.invoke("dispose_tokenizer", {});
    this.disposed = true;
  }

  private invoke(op: string, args: Record<string, unknown>): Promise<unknown> {
    if (this.disposed) return Promise.reject(new Error(`tokenizer ${this.id} (${this.className}) was disposed`));
    return this.call(op, { ...args, tokenizer: this.id });
  }
}
