/**
 * `textbrewer-ts/onnx`: serves an exported student from Node, without Python. The folder is one that
 * `model.save(dir, { tokenizer })` wrote, plus the ONNX file of `model.exportOnnx(join(dir, "model.onnx"))`; the text
 * is tokenised in Node from its tokenizer.json (@huggingface/tokenizers, pure JavaScript) and the graph runs in
 * onnxruntime-node on the CPU. Both are optional peer dependencies of the package, loaded on first use:
 *   ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install onnxruntime-node@1.30.0 @huggingface/tokenizers@0.2.0
 * (without that variable, onnxruntime-node's install script fetches CUDA binaries from outside the npm registry; its
 * CPU binaries are inside the package).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as Ort from "onnxruntime-node";

type OrtModule = typeof Ort;

/** Token ids of texts padded to the longest, as int64 rows of `dims` [batch, length]. */
export interface EncodedBatch {
  dims: [number, number];
  input_ids: BigInt64Array;
  attention_mask: BigInt64Array;
  token_type_ids?: BigInt64Array;
}

export interface OnnxStudentOptions {
  /** The ONNX file inside the folder (default "model.onnx"), or an absolute path. */
  model?: string;
  /** onnxruntime's intra-op threads (default: onnxruntime's choice). */
  threads?: number;
}

/** A peer dependency that is not installed: the message says what to install and how. */
export class OnnxPeerMissingError extends Error {
  override readonly name = "OnnxPeerMissingError";
}

async function importPeer<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw error;
    const env = name === "onnxruntime-node" ? "ONNXRUNTIME_NODE_INSTALL_CUDA=skip " : "";
    throw new OnnxPeerMissingError(
      `textbrewer-ts/onnx needs the optional peer dependency ${name}: ${env}npm install ${name}` +
        (name === "onnxruntime-node" ? "@1.30.0 (the variable skips a CUDA download from outside the npm registry)" : "@0.2.0"),
      { cause: error },
    );
  }
}

/**
 * onnxruntime leaves `.ses` and `mat-debug-<pid>.log` in the temp folder when it creates a session: it gets a folder of
 * its own (TMPDIR, read by the native library at that moment), removed afterwards.
 */
async function inPrivateTmpdir<T>(fn: () => Promise<T>): Promise<T> {
  const scratch = mkdtempSync(join(tmpdir(), "textbrewer-ort-"));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = scratch;
  try {
    return await fn();
  } finally {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(scratch, { recursive: true, force: true });
  }
}

function readJson(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new Error(`'${file}' does not exist; export the folder with model.save(dir, { tokenizer })`);
  return JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
}

interface JsTokenizer {
  encode(
    text: string,
    options?: { add_special_tokens?: boolean; return_token_type_ids?: boolean | null },
  ): {
    ids: number[];
    attention_mask: number[];
    token_type_ids?: number[];
  };
  token_to_id(token: string): number | undefined;
}

/** A student exported to ONNX with its tokenizer: texts in, logits out, in Node. */
export class OnnxStudent {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    private readonly tokenizer: JsTokenizer,
    private readonly padId: number,
    private readonly maxLength: number | null,
    /** Label names by logit index (config.json's id2label); null when the folder has none. */
    readonly labels: string[] | null,
  ) {}

  /** Loads `dir`/model.onnx with the folder's tokenizer.json, tokenizer_config.json and config.json. */
  static async load(dir: string, options: OnnxStudentOptions = {}): Promise<OnnxStudent> {
    const ort = await importPeer("onnxruntime-node", () => import("onnxruntime-node"));
    const { Tokenizer } = await importPeer("@huggingface/tokenizers", () => import("@huggingface/tokenizers"));
    const modelFile = options.model?.startsWith("/") ? options.model : join(dir, options.model ?? "model.onnx");
    if (!existsSync(modelFile)) throw new Error(`'${modelFile}' does not exist; write it with model.exportOnnx(path)`);
    const tokenizerJson = readJson(join(dir, "tokenizer.json"));
    const tokenizerConfig = readJson(join(dir, "tokenizer_config.json"));
    const config = existsSync(join(dir, "config.json")) ? readJson(join(dir, "config.json")) : {};
    const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig) as unknown as JsTokenizer;
    const padToken = typeof tokenizerConfig.pad_token === "string" ? tokenizerConfig.pad_token : "[PAD]";
    const padId = tokenizer.token_to_id(padToken) ?? 0;
    const declared = Number(tokenizerConfig.model_max_length);
    const maxLength = Number.isInteger(declared) && declared > 0 && declared < 1e9 ? declared : null;
    const id2label = config.id2label as Record<string, string> | undefined;
    const labels = id2label
      ? Object.keys(id2label)
          .sort((a, b) => Number(a) - Number(b))
          .map((k) => id2label[k]!)
      : null;
    const session = await inPrivateTmpdir(() =>
      ort.InferenceSession.create(modelFile, {
        executionProviders: ["cpu"],
        ...(options.threads ? { intraOpNumThreads: options.threads, interOpNumThreads: 1 } : {}),
      }),
    );
    return new OnnxStudent(ort, session, tokenizer, padId, maxLength, labels);
  }

  /** The graph's input names (e.g. input_ids, attention_mask, token_type_ids). */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Tokenises texts as the Python tokenizer does (special tokens, truncation to model_max_length), padded to the longest. */
  encode(texts: readonly string[]): EncodedBatch {
    const rows = texts.map((text) => {
      const e = this.tokenizer.encode(text, { return_token_type_ids: true });
      const n = this.maxLength === null ? e.ids.length : Math.min(e.ids.length, this.maxLength);
      return { ids: e.ids.slice(0, n), mask: e.attention_mask.slice(0, n), types: (e.token_type_ids ?? []).slice(0, n) };
    });
    const length = Math.max(1, ...rows.map((r) => r.ids.length));
    const batch: EncodedBatch = {
      dims: [texts.length, length],
      input_ids: new BigInt64Array(texts.length * length).fill(BigInt(this.padId)),
      attention_mask: new BigInt64Array(texts.length * length),
      token_type_ids: new BigInt64Array(texts.length * length),
    };
    rows.forEach((r, i) => {
      for (let j = 0; j < r.ids.length; j++) {
        batch.input_ids[i * length + j] = BigInt(r.ids[j]!);
        batch.attention_mask[i * length + j] = BigInt(r.mask[j] ?? 1);
        batch.token_type_ids![i * length + j] = BigInt(r.types[j] ?? 0);
      }
    });
    return batch;
  }

  /** Runs the graph on an encoded batch; returns the output (e.g. logits) as rows. */
  async run(batch: EncodedBatch): Promise<number[][]> {
    const feeds: Record<string, Ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const data = batch[name as "input_ids" | "attention_mask" | "token_type_ids"];
      if (data === undefined) throw new Error(`the ONNX graph wants input '${name}', which encode() does not make`);
      feeds[name] = new this.ort.Tensor("int64", data, batch.dims);
    }
    const results = await this.session.run(feeds);
    const out = results[this.session.outputNames[0]!]!;
    const values = out.data as Float32Array;
    const [rows] = out.dims as number[];
    const width = values.length / rows!;
    return Array.from({ length: rows! }, (_, i) => Array.from(values.subarray(i * width, (i + 1) * width)));
  }

  /** Texts → logits rows. */
  async logits(texts: readonly string[]): Promise<number[][]> {
    return this.run(this.encode(texts));
  }

  /** Texts → the top label (name from config.json, else its index) and its softmax probability. */
  async classify(texts: readonly string[]): Promise<Array<{ label: string; score: number }>> {
    return (await this.logits(texts)).map((row) => {
      const top = row.indexOf(Math.max(...row));
      const exps = row.map((v) => Math.exp(v - row[top]!));
      return { label: this.labels?.[top] ?? String(top), score: 1 / exps.reduce((a, b) => a + b, 0) };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
