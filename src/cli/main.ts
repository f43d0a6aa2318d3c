#!/usr/bin/env node
/** `textbrewer <command>`: setup, doctor, inspect. */
import { doctor, formatDoctor, setupPythonEnv } from "../env/python-env.js";

const USAGE = `usage: textbrewer <command>

commands:
  setup [--force]        build the worker's Python environment (cached, keyed by the pinned requirements)
  doctor                 show the interpreter, torch, CUDA, transformers and pyzmq, and what is missing
  inspect <checkpoint>   describe a checkpoint (config, tensors, parameters) without starting a worker

environment:
  TEXTBREWER_PYTHON      use this interpreter instead of the managed environment
  TEXTBREWER_CACHE       where the managed environment lives (default ~/.cache/textbrewer-ts)`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "setup": {
      const { python } = await setupPythonEnv({ force: rest.includes("--force") });
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`textbrewer: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
