// Post-build step: marks every file named in package.json's "bin" executable. npm sets the bit only when it
// installs the package as a dependency, so without this `npx textbrewer …` in a clone fails with
// "Permission denied" after a fresh build. (Windows has no executable bit; chmod there changes nothing that matters.)
import { chmodSync, existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const bins = typeof pkg.bin === "string" ? [pkg.bin] : Object.values(pkg.bin ?? {});
let failed = false;
for (const bin of bins) {
  const file = join(root, bin);
  if (!existsSync(file)) {
    console.error(`mark-bin-executable: '${file}' (package.json bin) does not exist; did the build emit it?`);
    failed = true;
    continue;
  }
  // read and execute for everyone who may read it: rw-r--r-- becomes rwxr-xr-x
  const mode = statSync(file).mode & 0o777;
  chmodSync(file, mode | ((mode & 0o444) >> 2));
}
process.exit(failed ? 1 : 0);
