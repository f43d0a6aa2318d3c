/** `textbrewer inspect` as a person reads it: what the checkpoint is, then one row per module, then totals. */
import type { CheckpointInfo } from "../interop/inspect.js";

const count = (n: number): string => n.toLocaleString("en-US");

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

export function formatInspect(info: CheckpointInfo): string {
  const what = [info.kind, info.modelType, ...(info.architectures ?? [])].filter(Boolean).join(", ");
  const lines = [`checkpoint  ${info.path}  (${what})`];
  if (info.weightsFile) lines.push(`weights     ${info.weightsFile}${info.sizeBytes === undefined ? "" : `, ${bytes(info.sizeBytes)}`}`);
  const tensors = Object.entries(info.tensors ?? {});
  if (tensors.length === 0) {
    lines.push("no weights file read (a sharded checkpoint: see its *.index.json)");
    return lines.join("\n");
  }
  // one row per module: its tensors' shapes (weight and bias side by side), dtypes and parameter count
  const modules = new Map<string, { shapes: string[]; dtypes: Set<string>; parameters: number }>();
  for (const [name, t] of tensors) {
    const dot = name.lastIndexOf(".");
    const module = dot < 0 ? name : name.slice(0, dot);
    const row = modules.get(module) ?? { shapes: [], dtypes: new Set<string>(), parameters: 0 };
    const shape = t.shape.length === 0 ? "scalar" : t.shape.join("×");
    row.shapes.push(dot < 0 ? shape : `${name.slice(dot + 1)} ${shape}`);
    row.dtypes.add(t.dtype);
    row.parameters += t.shape.reduce((a, b) => a * b, 1);
    modules.set(module, row);
  }
  const rows = [...modules].map(([module, m]) => [module, m.shapes.join(", "), [...m.dtypes].join(", "), count(m.parameters)]);
  lines.push("", ...table(["module", "shape", "dtype", "parameters"], rows, new Set([3])), "");
  const byDtype = Object.entries(info.dtypes ?? {})
    .map(([dtype, n]) => `${dtype} ${count(n)}`)
    .join(", ");
  lines.push(`total       ${count(info.numTensors ?? tensors.length)} tensors, ${count(info.numParameters ?? 0)} parameters (${byDtype})`);
  return lines.join("\n");
}
