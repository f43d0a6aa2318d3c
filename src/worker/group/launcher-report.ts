/**
 * Reading what torchrun (torch.distributed.run) writes on stderr: the line its agent logs when a rank process
 * fails, and the prefix (`[rank3]:`, the local rank, with `--role rank --tee 3`) it puts before every line a rank writes.
 */
import { constants } from "node:os";

export interface RankFailure {
  localRank: number;
  exitCode: number | null;
  signal: string | null;
  pid: number;
}

// torch/distributed/elastic/multiprocessing/api.py: "failed (exitcode: -9) local_rank: 1 (pid: 29428) of binary: …"
const FAILED = /failed \(exitcode: (-?\d+)\) local_rank: (\d+) \(pid: (\d+)\)/;

/** The failure a launcher line reports, or null. A negative exit code is the signal that ended the rank. */
export function parseRankFailure(line: string): RankFailure | null {
  const m = FAILED.exec(line);
  if (!m) return null;
  const code = Number(m[1]);
  const signal = code < 0 ? (Object.entries(constants.signals).find(([, n]) => n === -code)?.[0] ?? `signal ${-code}`) : null;
  return { localRank: Number(m[2]), exitCode: code < 0 ? null : code, signal, pid: Number(m[3]) };
}

/** The lines one local rank wrote (torchrun's `[rankN]:` prefix removed), in order. */
export function linesOfRank(lines: readonly string[], localRank: number): string[] {
  const prefix = `[rank${localRank}]:`;
  return lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
}
