/** Prints a benchmark's result on stdout and keeps a copy in runs/bench/<name>.json (npm's banner shares stdout). */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function emitResult(name: string, result: unknown): void {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const dir = process.env.BENCH_OUT_DIR ?? join("runs", "bench");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, text);
  process.stdout.write(text);
  process.stderr.write(`result written to ${path}\n`);
}
