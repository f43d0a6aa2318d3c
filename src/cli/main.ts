#!/usr/bin/env node
/** `textbrewer <command>`: setup, doctor, inspect, report. */
import { doctor, formatDoctor, setupPythonEnv } from "../env/python-env.js";

const USAGE = `usage: textbrewer <command>

commands:
  setup [--force] [--prune]
                         build the worker's Python environment (cached, keyed by the pinned requirements);
                         --prune then deletes the environments of other versions (several GB each)
  doctor                 show the interpreter, torch, CUDA, transformers and pyzmq, and what is missing
  inspect <checkpoint>   describe a checkpoint (config, tensors, parameters) without starting a worker
  report <runDir> [--out file] [--title text]
                         write a self-contained HTML report (loss curves, dev metrics, summary) of a run folder
                         (default <runDir>/report.html)

environment:
  TEXTBREWER_PYTHON      use this interpreter instead of the managed environment
  TEXTBREWER_CACHE       where the managed environment lives (default ~/.cache/textbrewer-ts)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "setup": {
      const { python } = await setupPythonEnv({ force: rest.includes("--force") });
      if (rest.includes("--prune")) {
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
      console.log(formatDoctor(report));
      return report.ok ? 0 : 1;
    }
    case "inspect": {
      if (!rest[0]) {
        console.error("usage: textbrewer inspect <checkpoint>");
        return 2;
      }
      const { inspectCheckpoint } = await import("../interop/inspect.js");
      console.log(JSON.stringify(await inspectCheckpoint(rest[0]), null, 2));
      return 0;
    }
    case "report": {
      const args = parseReportArgs(rest);
      if (typeof args === "string") {
        console.error(`textbrewer report: ${args}\nusage: textbrewer report <runDir> [--out file] [--title text]`);
        return 2;
      }
      const { buildReport } = await import("../report/index.js");
      console.log(await buildReport(args.runDir, args.options));
      return 0;
    }
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(USAGE);
      return command ? 0 : 2;
    default:
      console.error(`textbrewer: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

function parseReportArgs(args: string[]): { runDir: string; options: { out?: string; title?: string } } | string {
  let runDir: string | undefined;
  const options: { out?: string; title?: string } = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const eq = /^--(out|title)=(.*)$/s.exec(arg);
    if (eq) {
      options[eq[1] as "out" | "title"] = eq[2] as string;
    } else if (arg === "--out" || arg === "--title") {
      const value = args[++i];
      if (value === undefined) return `${arg} needs a value`;
      options[arg === "--out" ? "out" : "title"] = value;
    } else if (arg.startsWith("-")) {
      return `unknown option '${arg}'`;
    } else if (runDir === undefined) {
      runDir = arg;
    } else {
      return `unexpected argument '${arg}'`;
    }
  }
  return runDir === undefined ? "missing <runDir>" : { runDir, options };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`textbrewer: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
