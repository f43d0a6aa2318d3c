// Runs the worker's pytest suite with the worker's interpreter (TEXTBREWER_PYTHON or the managed environment).
import { execa } from "execa";
import { workerSourceDir } from "../dist/env/paths.js";
import { addExtras, pythonEnv, resolvePython } from "../dist/env/python-env.js";

// pytest and the modules only some tests use are extras of the managed environment (a no-op once installed)
await addExtras(["test", "emd", "onnx"]);
const { python } = resolvePython();
const r = await execa(python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", ...process.argv.slice(2)], {
  cwd: workerSourceDir(),
  env: pythonEnv(),
  stdio: "inherit",
  reject: false,
});
process.exit(r.exitCode ?? 1);
