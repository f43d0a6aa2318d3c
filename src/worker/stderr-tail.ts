/** Keeps the last lines a process wrote, and finds the last Python traceback among them. */
export class StderrTail {
  private readonly lines: string[] = [];
  private partial = "";

  constructor(private readonly limit = 200) {}

  push(chunk: string): string[] {
    const parts = (this.partial + chunk).split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) {
      this.lines.push(line);
      if (this.lines.length > this.limit) this.lines.shift();
    }
    return parts;
  }

  tail(n = 20): string[] {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n);
  }

  lastTraceback(): string | null {
    return lastTraceback(this.tail(this.limit));
  }
}

/** The last Python traceback among `lines`, or null. */
export function lastTraceback(lines: readonly string[]): string | null {
  const start = lines.map((l) => l.startsWith("Traceback (most recent call last):")).lastIndexOf(true);
  if (start < 0) return null;
  const out = [lines[start]!];
  for (const line of lines.slice(start + 1)) {
    out.push(line);
    if (line && !line.startsWith(" ")) break; // the exception line ends the block
  }
  return out.join("\n");
}
