/**
 * Fast checks of a checkpoint's files before any Python starts: the path exists, config.json is JSON, a safetensors
 * file holds all the bytes its header promises, a torch.save archive has its central directory. What these cannot
 * tell (a pickled object in a .pt file) is left to the Python side, which names the file too.
 */
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import { extname, join } from "node:path";

/** A checkpoint that is missing or holds a file that cannot be read; the message names the file and the cause. */
export class CheckpointInspectError extends Error {
  override readonly name = "CheckpointInspectError";

  constructor(
    /** The file (or folder) at fault. */
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const WEIGHT_FILES = ["model.safetensors", "pytorch_model.bin"];
const TORCH_EXTENSIONS = new Set([".pt", ".pth", ".bin"]);
/** safetensors refuses headers above 100 MB; a larger length means the first 8 bytes are not a header length. */
const MAX_SAFETENSORS_HEADER = 100_000_000;
/** The end-of-central-directory record sits in the last 22 bytes of a zip plus a comment of up to 65,535. */
const ZIP_TAIL = 22 + 65_535;

function fail(path: string, cause: string): never {
  throw new CheckpointInspectError(path, `'${path}' ${cause}`);
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  const n = readSync(fd, buffer, 0, length, position);
  return buffer.subarray(0, n);
}

function checkSafetensors(file: string, fd: number, size: number): void {
  if (size < 8) fail(file, `is not a valid safetensors file, it is truncated or damaged (${size} bytes)`);
  const headerLength = readAt(fd, 0, 8).readBigUInt64LE(0);
  if (headerLength > BigInt(MAX_SAFETENSORS_HEADER) || 8n + headerLength > BigInt(size)) {
    fail(file, `is not a valid safetensors file, it is truncated or damaged (header of ${headerLength} bytes, file of ${size})`);
  }
  let header: Record<string, { data_offsets?: [number, number] }>;
  try {
    header = JSON.parse(readAt(fd, 8, Number(headerLength)).toString("utf8"));
  } catch (error) {
    fail(file, `is not a valid safetensors file, its header is damaged (${(error as Error).message})`);
  }
  let dataEnd = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name !== "__metadata__" && Array.isArray(entry?.data_offsets)) dataEnd = Math.max(dataEnd, Number(entry.data_offsets[1]));
  }
  const available = size - 8 - Number(headerLength);
  if (dataEnd > available)
    fail(file, `is not a valid safetensors file, it is truncated (its tensors need ${dataEnd} bytes of data, it holds ${available})`);
}

function checkTorchFile(file: string, fd: number, size: number): void {
  const magic = readAt(fd, 0, 4);
  if (magic.equals(Buffer.from("PK\x03\x04", "latin1"))) {
    const tailStart = Math.max(0, size - ZIP_TAIL);
    if (readAt(fd, tailStart, size - tailStart).lastIndexOf(Buffer.from("PK\x05\x06", "latin1")) < 0) {
      fail(file, "is truncated or damaged (a torch.save archive without its central directory)");
    }
  } else if (magic[0] !== 0x80) {
    // neither a torch.save zip archive nor a legacy pickle (protocol 2+ starts with 0x80)
    fail(
      file,
      `is not a PyTorch file or is damaged (it starts with bytes ${[...magic].map((b) => b.toString(16).padStart(2, "0")).join(" ")})`,
    );
  }
}

/** Checks a weights file by its extension; other extensions are left to the Python side. */
export function checkWeightsFile(file: string): void {
  const extension = extname(file);
  if (extension !== ".safetensors" && !TORCH_EXTENSIONS.has(extension)) return;
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    fail(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  try {
    const { size } = fstatSync(fd);
    if (size === 0) fail(file, "is empty");
    if (extension === ".safetensors") checkSafetensors(file, fd, size);
    else checkTorchFile(file, fd, size);
  } finally {
    closeSync(fd);
  }
}

/**
 * A training checkpoint (gs{step}) keeps the student's Hugging Face folder in `model/`, beside the optimizer state:
 * the folder to read for a checkpoint path (the path itself for anything else).
 */
export function checkpointModelDir(path: string): string {
  if (!existsSync(path) || !statSync(path).isDirectory()) return path;
  if (existsSync(join(path, "config.json")) || WEIGHT_FILES.some((name) => existsSync(join(path, name)))) return path;
  const inner = join(path, "model");
  const holdsModel = existsSync(join(inner, "config.json")) || WEIGHT_FILES.some((name) => existsSync(join(inner, name)));
  return holdsModel ? inner : path;
}

/** Throws CheckpointInspectError for a checkpoint (file or HF folder) that is surely unreadable. */
export function checkCheckpointFiles(path: string): void {
  if (!existsSync(path)) fail(path, "does not exist");
  if (!statSync(path).isDirectory()) {
    checkWeightsFile(path);
    return;
  }
  const config = join(path, "config.json");
  if (existsSync(config)) {
    try {
      JSON.parse(readFileSync(config, "utf8"));
    } catch (error) {
      fail(config, `is not valid JSON (${(error as Error).message})`);
    }
  }
  const weights = WEIGHT_FILES.map((name) => join(path, name)).find((file) => existsSync(file));
  if (weights) checkWeightsFile(weights);
  else if (!readdirSync(path).some((name) => name.endsWith(".index.json"))) {
    fail(path, "is not a checkpoint folder (no model.safetensors or pytorch_model.bin)");
  }
}
