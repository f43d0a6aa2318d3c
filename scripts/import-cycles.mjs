// Fails when the modules under src/ (or the folder given) import each other in a cycle, and prints each cycle.
// Counts static imports and re-exports, `import type` included (a cycle of types still ties two parts together);
// `--runtime` leaves out the type-only ones, which the compiler erases. Dynamic `import()` is not counted.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const args = process.argv.slice(2);
const runtimeOnly = args.includes("--runtime");
const root = fileURLToPath(new URL("..", import.meta.url));
const srcDir = resolve(args.find((a) => !a.startsWith("--")) ?? join(root, "src"));

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Whether an import or export declaration brings in types only. */
function typeOnly(node) {
  if (ts.isExportDeclaration(node)) {
    return (
      node.isTypeOnly ||
      (node.exportClause && ts.isNamedExports(node.exportClause) && node.exportClause.elements.every((e) => e.isTypeOnly))
    );
  }
  const clause = node.importClause;
  if (!clause) return false; // `import "./x.js"` runs the module
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return (
    !clause.name &&
    named !== undefined &&
    ts.isNamedImports(named) &&
    named.elements.length > 0 &&
    named.elements.every((e) => e.isTypeOnly)
  );
}

/** The file a relative specifier names (`./x.js` is written for `./x.ts`), or null for a package. */
function resolveSpecifier(from, specifier) {
  if (!specifier.startsWith(".")) return null;
  const base = resolve(dirname(from), specifier);
  for (const candidate of [base.replace(/\.js$/, ".ts"), `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

const graph = new Map();
for (const file of sourceFiles(srcDir)) {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest);
  const deps = new Set();
  for (const node of source.statements) {
    if (!(ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) || !node.moduleSpecifier) continue;
    if (runtimeOnly && typeOnly(node)) continue;
    const target = resolveSpecifier(file, node.moduleSpecifier.text);
    if (target) deps.add(target);
  }
  graph.set(file, deps);
}

// Tarjan's strongly connected components: every component of more than one module (or a module importing itself)
// holds at least one cycle.
let index = 0;
const info = new Map();
const stack = [];
const components = [];
function connect(v) {
  info.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    if (!info.has(w)) {
      connect(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).onStack) {
      info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
    }
  }
  if (info.get(v).low === info.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.has(v)) components.push(component);
  }
}
for (const v of graph.keys()) if (!info.has(v)) connect(v);

/** One shortest cycle through `start` inside its component, by breadth-first search. */
function cycleThrough(start, members) {
  const previous = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const path = [v];
        for (let p = previous.get(v); p; p = previous.get(p)) path.unshift(p);
        return [...path, start];
      }
      if (members.has(w) && !previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

const name = (file) => relative(srcDir, file);
const kind = runtimeOnly ? "runtime import" : "import";
if (components.length === 0) {
  console.log(`import cycles: none among ${graph.size} modules under ${relative(root, srcDir) || "."}/ (${kind}s)`);
} else {
  console.log(
    `import cycles: ${components.length} group(s) of modules under ${relative(root, srcDir) || "."}/ import each other (${kind}s):`,
  );
  for (const component of components) {
    const members = new Set(component);
    const start = component.map(name).sort()[0];
    console.log(`- ${component.length} modules: ${component.map(name).sort().join(", ")}`);
    console.log(`  e.g. ${cycleThrough(join(srcDir, start), members).map(name).join(" -> ")}`);
  }
  process.exit(1);
}
