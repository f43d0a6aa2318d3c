/**
 * The README's complete scripts (every ```ts or ```js block that starts with an import) run as written, in a fresh
 * project folder that holds what they name: tiny models with tokenizers at `path/to/hf-folder` and `ckpt/teacher`,
 * tiny `data/*.jsonl` files. TypeScript goes through tsx (and a type check), `.js` through plain node. The slow test
 * installs the `npm pack` tarball into a fresh project and runs the quick start there.
 */
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { resolvePython } from "../src/env/python-env.js";
import { makeTinyBert, makeWordTokenizer, useTempDir } from "./helpers/fixtures.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const WORDS = ["a", "first", "second", "sentence", "and", "one", "fine", "dull", "film", "plot", "good", "bad"];

interface Snippet {
  lang: "ts" | "js";
  /** The section heading the block sits under. */
  section: string;
  code: string;
}

/** The README's complete scripts: fenced ts/js blocks whose first line that is not a comment is an import. */
function readmeScripts(markdown: string): Snippet[] {
  const out: Snippet[] = [];
  let section = "";
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("## ")) section = line.slice(3).trim();
    const fence = /^```(ts|js)\s*$/.exec(line);
    if (!fence) continue;
    const end = lines.indexOf("```", i + 1);
    const code = lines.slice(i + 1, end).join("\n");
    i = end;
    const first = code.split("\n").find((l) => l.trim() && !l.trim().startsWith("//"));
    if (first?.startsWith("import ")) out.push({ lang: fence[1] as "ts" | "js", section, code: `${code}\n` });
  }
  return out;
}

/** What the snippets read: tiny BERTs with word tokenizers where they look, and two small labelled-text files. */
async function projectFiles(dir: string): Promise<void> {
  const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS];
  const quick = join(dir, "path", "to", "hf-folder");
  const teacher = join(dir, "ckpt", "teacher");
  await Promise.all([
    makeTinyBert(quick, { layers: 2, numLabels: 2 }).then(() => makeWordTokenizer(quick, vocab)),
    makeTinyBert(teacher, { layers: 12, numLabels: 2 }).then(() => makeWordTokenizer(teacher, vocab)),
  ]);
  mkdirSync(join(dir, "data"), { recursive: true });
  const rows = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({ text: `a ${i % 2 ? "good" : "bad"} film ${WORDS[i % WORDS.length]}`, label: i % 2 }),
    )
      .join("\n")
      .concat("\n");
  writeFileSync(join(dir, "data", "train.jsonl"), rows(12));
  writeFileSync(join(dir, "data", "dev.jsonl"), rows(6));
}

const scripts = readmeScripts(readFileSync(join(ROOT, "README.md"), "utf8"));

describe("README scripts", () => {
  const tmp = useTempDir("tbts-readme-");

  it("finds the quick start, the plain .mjs script and the distilling script", () => {
    expect(scripts.map((s) => `${s.section} (${s.lang})`)).toEqual([
      "Run a script (js)",
      "Ten lines: load, predict, describe (ts)",
      "Distilling (ts)",
    ]);
  });

  it("each runs as written in a project that installed the package, and the TypeScript ones type-check", async () => {
    const dir = tmp.path;
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "readme-check", private: true, type: "module" }));
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "textbrewer-ts"), "dir");
    await projectFiles(dir);
    const files = scripts.map((s, i) => {
      const file = join(dir, `snippet${i}.${s.lang === "ts" ? "ts" : "mjs"}`);
      writeFileSync(file, s.code);
      return file;
    });
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2023", "ESNext.Disposable"],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          typeRoots: [join(ROOT, "node_modules", "@types")],
        },
        files: files.filter((f) => f.endsWith(".ts")),
      }),
    );
    const tsc = await execa(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", dir], {
      cwd: dir,
      reject: false,
      timeout: 120_000,
    });
    expect(tsc.stdout, "the README's TypeScript does not type-check").toBe("");

    for (const [i, file] of files.entries()) {
      const command = file.endsWith(".ts") ? [TSX, file] : [process.execPath, file];
      const r = await execa(command[0]!, command.slice(1), { cwd: dir, reject: false, timeout: 150_000, env: { OMP_NUM_THREADS: "1" } });
      expect(r.exitCode, `${scripts[i]!.section}: ${r.stderr}`).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
    // the distilling script trained and checkpointed its student
    expect(readdirSync(join(dir, "runs", "t3")).some((f) => /^gs\d+$/.test(f))).toBe(true);
  }, 600_000);
});

describe.skipIf(!SLOW)("the packed package (TEXTBREWER_SLOW_TESTS=1)", () => {
  const tmp = useTempDir("tbts-pack-");

  it("installs from its npm pack tarball into a fresh project and runs the README's quick start there", async () => {
    const dir = tmp.path;
    // dist/ is built before the tests; pack what is there rather than building again
    const pack = await execa("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT, timeout: 120_000 });
    const tarball = join(dir, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0]!.filename);
    const project = join(dir, "project");
    mkdirSync(project);
    // the README's policy, so the install is as strict as npm 12's: zeromq's script is not needed, and neither is the
    // tarball's own prepare (a tarball is no registry source, so npm counts it; its key is the tarball's spec), since
    // dist/ is in the package
    const allowScripts = { zeromq: false, [`file:${tarball}`]: false };
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "fresh", private: true, type: "module", allowScripts }));
    const install = await execa(
      "npm",
      ["install", "--no-audit", "--no-fund", "--prefer-offline", "--strict-allow-scripts", "--loglevel=error", tarball],
      { cwd: project, reject: false, timeout: 240_000 },
    );
    expect(install.exitCode, install.stderr).toBe(0);
    expect(readdirSync(join(project, "node_modules", "textbrewer-ts"))).not.toContain("examples");

    await projectFiles(project);
    const quick = scripts.find((s) => s.lang === "js")!;
    writeFileSync(join(project, "quickstart.mjs"), quick.code);
    // the worker runs from the installed copy, on the interpreter the tests use
    const env = { TEXTBREWER_PYTHON: resolvePython().python, OMP_NUM_THREADS: "1" };
    const run = await execa(process.execPath, ["quickstart.mjs"], { cwd: project, env, reject: false, timeout: 150_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/\[ 2, 2 \]/); // logits of two sentences, two classes
    const version = await execa("npx", ["--no-install", "textbrewer", "--version"], { cwd: project, env, reject: false, timeout: 60_000 });
    expect(version.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version);
    // the demo-only reader is gone from the installed package
    const probe = await execa(
      process.execPath,
      ["--input-type=module", "-e", 'console.log("loadSentiment" in (await import("textbrewer-ts")))'],
      {
        cwd: project,
        timeout: 60_000,
      },
    );
    expect(probe.stdout.trim()).toBe("false");
  }, 600_000);
});
