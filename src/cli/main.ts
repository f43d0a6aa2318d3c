#!/usr/bin/env node
/** `textbrewer <command>`: setup, doctor, inspect, report, distill, suggest. */
import { parseExtras } from "../env/extras.js";
import { doctor, formatDoctor, packageVersion, setupPythonEnv } from "../env/python-env.js";
import { type CommandSpec, closestName, commandUsage, parseCommand, synopsis, UsageError } from "./args.js";

const COMMANDS = {
  setup: {
    name: "setup",
    positionals: [],
    options: {
      force: { type: "boolean", description: "rebuild even when the environment is complete" },
      prune: { type: "boolean", description: "then delete the environments of other versions (several GB each)" },
      with: {
        type: "string",
        value: "extras",
        description: "also add these extras, comma-separated: test (pytest), emd (POT), demo (the demo's model), onnx",
      },
    },
    description: "build the worker's Python environment (cached, keyed by the pinned requirements)",
  },
  doctor: {
    name: "doctor",
    positionals: [],
    options: { json: { type: "boolean", description: "print the report as JSON" } },
    description:
      "check the interpreter: Python, torch, transformers and the other packages against the pinned versions\n" +
      "(torch and transformers: the pin's major.minor; the others: the pin's major), CUDA; exits 1 on a problem",
  },
  inspect: {
    name: "inspect",
    positionals: ["checkpoint"],
    options: { json: { type: "boolean", description: "print everything as JSON (config included)" } },
    description: "describe a checkpoint (tensors, shapes, dtypes, parameters) without starting a worker",
  },
  report: {
    name: "report",
    positionals: ["runDir"],
    options: {
      out: { type: "string", value: "file", description: "where to write it (default <runDir>/report.html)" },
      title: { type: "string", value: "text", description: "the report's title" },
    },
    description: "write a self-contained HTML report (loss curves, dev metrics, summary) of a run folder",
  },
  distill: {
    name: "distill",
    positionals: ["runFile"],
    options: {
      "dry-run": { type: "boolean", description: "load the models and data, run the preflight check and print the plan; train nothing" },
    },
    description:
      "distil as a run file (YAML or JSON) says: teacher, student, distiller and its configs, data, optimizer,\n" +
      "scheduler, evaluation, cache, output; the run folder keeps the resolved file (run-config.json)",
  },
  suggest: {
    name: "suggest",
    positionals: ["teacher", "data"],
    options: {
      layers: { type: "string", value: "n", description: "the student's number of layers (required)" },
      student: { type: "string", value: "folder", description: "a student of that depth: its similarity to the teacher picks the matches" },
      out: { type: "string", value: "dir", description: "where to write layer-similarity.json and report.html (default runs/suggest)" },
      "max-examples": { type: "string", value: "n", description: "texts of the data to measure on (default 256)" },
      "max-length": { type: "string", value: "n", description: "tokens per text at most (default 128)" },
      "attention-weight": { type: "string", value: "w", description: "weight of attention-map similarity against CKA (default 0.5)" },
    },
    description:
      "suggest a student's layer map and intermediate matches from the teacher's layer similarity (linear CKA, attention\n" +
      "maps) on a sample of <data> (label<TAB>text lines or .jsonl); <teacher> is a Hugging Face folder with its tokenizer",
  },
} as const satisfies Record<string, CommandSpec>;

type CommandName = keyof typeof COMMANDS;

/** Every environment variable the package reads. */
const ENVIRONMENT: readonly [string, string][] = [
  ["TEXTBREWER_PYTHON", "use this interpreter instead of the managed environment"],
  ["TEXTBREWER_BASE_PYTHON", "the Python `setup` builds the managed environment from (default: first ≥ 3.10 on PATH)"],
  ["TEXTBREWER_CACHE", "where the managed environment lives (default $XDG_CACHE_HOME/textbrewer-ts or ~/.cache/textbrewer-ts)"],
  ["TEXTBREWER_WORKER_LOG", "1: copy the worker's stdout and stderr to this process's stderr"],
  ["GLIBC_TUNABLES", "replaces the worker's malloc settings"],
];

const USAGE = [
  "usage: textbrewer <command> [options]     (textbrewer <command> --help for its options)",
  "",
  "commands:",
  ...Object.values(COMMANDS).flatMap((spec) => [`  ${synopsis(spec)}`, `      ${spec.description.split("\n").join("\n      ")}`]),
  "",
  "  textbrewer --version                    print the version",
  "",
  "environment:",
  ...ENVIRONMENT.map(([name, text]) => `  ${name.padEnd(24)}${text}`),
].join("\n");

async function run(command: CommandName, argv: readonly string[]): Promise<number> {
  const spec: CommandSpec = COMMANDS[command];
  const { values, positionals } = parseCommand(spec, argv);
  if (values.help) {
    console.log(commandUsage(spec));
    return 0;
  }
  switch (command) {
    case "setup": {
      const extras = typeof values.with === "string" ? parseExtras(values.with) : [];
      const { python } = await setupPythonEnv({ force: values.force === true, with: extras });
      if (values.prune) {
        const { pruneEnvironments } = await import("../env/prune.js");
        const { removed, skipped } = pruneEnvironments();
        for (const dir of removed) console.error(`setup: removed ${dir}`);
        for (const dir of skipped) console.error(`setup: kept ${dir} (another process is building it)`);
      }
      console.log(python);
      return 0;
    }
    case "doctor": {
      const report = await doctor();
      console.log(values.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
      return report.ok ? 0 : 1;
    }
    case "inspect": {
      const { inspectCheckpoint } = await import("../interop/inspect.js");
      const info = await inspectCheckpoint(positionals[0]!);
      if (values.json) console.log(JSON.stringify(info, null, 2));
      else console.log((await import("./inspect-table.js")).formatInspect(info));
      return 0;
    }
    case "distill": {
      const { loadRunFile } = await import("../run-config/load.js");
      const { runDistillFile } = await import("../run-config/run.js");
      const loaded = loadRunFile(positionals[0]!);
      await runDistillFile(loaded, { dryRun: values["dry-run"] === true });
      return 0;
    }
    case "report": {
      const { buildReport } = await import("../report/index.js");
      const options = { ...(values.out ? { out: String(values.out) } : {}), ...(values.title ? { title: String(values.title) } : {}) };
      console.log(await buildReport(positionals[0]!, options));
      return 0;
    }
    case "suggest": {
      const { runSuggest, formatSuggestion } = await import("../layer-map/cli.js");
      const int = (name: string, fallback?: number): number => {
        const raw = values[name];
        if (raw === undefined && fallback !== undefined) return fallback;
        const n = Number(raw);
        if (raw === undefined || !Number.isInteger(n) || n < 1) {
          throw new UsageError("suggest", raw === undefined ? `--${name} is required` : `--${name} '${raw}' is not a positive integer`);
        }
        return n;
      };
      const weight = values["attention-weight"] === undefined ? undefined : Number(values["attention-weight"]);
      if (weight !== undefined && !(weight >= 0)) {
        throw new UsageError("suggest", `--attention-weight '${values["attention-weight"]}' is not a number ≥ 0`);
      }
      const { suggestion, json, report } = await runSuggest({
        teacher: positionals[0]!,
        data: positionals[1]!,
        layers: int("layers"),
        ...(values.student ? { student: String(values.student) } : {}),
        outDir: String(values.out ?? "runs/suggest"),
        maxExamples: int("max-examples", 256),
        maxLength: int("max-length", 128),
        ...(weight === undefined ? {} : { attentionWeight: weight }),
      });
      console.log(formatSuggestion(suggestion));
      console.log(`wrote ${json}\nwrote ${report}`);
      return 0;
    }
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    console.error(USAGE);
    return 2;
  }
  if (command === "--version" || command === "-v") {
    console.log(packageVersion());
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  if (Object.hasOwn(COMMANDS, command)) return run(command as CommandName, rest);
  const what = command.startsWith("-") ? "option" : "command";
  const guess = closestName(command.replace(/^-+/, ""), [...Object.keys(COMMANDS), "version", "help"]);
  const hint = guess ? ` (did you mean '${guess === "version" || guess === "help" ? `--${guess}` : guess}'?)` : "";
  throw new UsageError(undefined, `unknown ${what} '${command}'${hint}`);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      const spec = error.command ? COMMANDS[error.command as CommandName] : undefined;
      const usage = spec
        ? `usage: ${synopsis(spec)}   (--help for more)`
        : "usage: textbrewer <command> [options]   (--help for the commands)";
      console.error(`textbrewer${spec ? ` ${spec.name}` : ""}: ${error.message}\n${usage}`);
      process.exit(2);
    }
    console.error(`textbrewer: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
