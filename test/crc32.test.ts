import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { crc32Table } from "../src/cache/crc32.js";
import { DiskStore } from "../src/cache/index.js";
import { tempDir } from "./helpers/fixtures.js";

/**
 * Module hooks that hand every importer a node:zlib without crc32, as Node before 20.15 has it: a named import of
 * crc32 fails to link, as it does there. Written to `dir`; returns the file to preload with `node --import`.
 */
function writeZlibWithoutCrc32(dir: string): string {
  writeFileSync(
    join(dir, "hooks.mjs"),
    `import { createRequire } from "node:module";
const zlib = createRequire(import.meta.url)("node:zlib");
const names = Object.keys(zlib).filter((name) => name !== "crc32" && /^[A-Za-z_$][\\w$]*$/.test(name));
const shim = 'import z from "node:zlib";\\nconst { crc32: _, ...rest } = z;\\nexport default rest;\\n' +
  names.map((name) => \`export const \${name} = z.\${name};\`).join("\\n");
export async function resolve(specifier, context, next) {
  if ((specifier === "node:zlib" || specifier === "zlib") && !context.parentURL?.startsWith("data:")) {
    return { url: "data:text/javascript," + encodeURIComponent(shim), shortCircuit: true };
  }
  return next(specifier, context);
}
`,
  );
  const preload = join(dir, "register.mjs");
  writeFileSync(preload, 'import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n');
  return preload;
}

describe("CRC-32 on Node without zlib.crc32", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("the table-driven CRC-32 equals zlib.crc32 on random buffers, continued from a previous value too", () => {
    const nativeCrc32 = (zlib as unknown as { crc32: (data: Uint8Array, value?: number) => number }).crc32;
    expect(crc32Table(new Uint8Array(0), 12345)).toBe(nativeCrc32(new Uint8Array(0), 12345));
    for (let i = 0; i < 200; i++) {
      // randomBytes(0) has no memory behind it, for which zlib returns 0 whatever the value: start at 1 byte
      const data = randomBytes(i < 10 ? i + 1 : 1 + Math.floor(Math.random() * 5000));
      const value = randomBytes(4).readUInt32LE(0);
      expect(crc32Table(data)).toBe(nativeCrc32(data));
      expect(crc32Table(data, value)).toBe(nativeCrc32(data, value));
      const cut = Math.floor(data.length / 3);
      expect(crc32Table(data.subarray(cut), crc32Table(data.subarray(0, cut)))).toBe(nativeCrc32(data));
    }
  });

  it("the package imports, and its disk cache writes what Node with zlib.crc32 reads back", async () => {
    const dir = join(tmp.path, "store");
    const script = `
      import * as zlib from "node:zlib";
      if ("crc32" in zlib) throw new Error("zlib.crc32 is still there: the test does not simulate an older Node");
      await import("./dist/index.js");
      const { DiskStore } = await import("./dist/cache/index.js");
      const store = await DiskStore.open(${JSON.stringify(dir)}, { binding: "b" });
      await store.put("k", Uint8Array.of(1, 2, 3, 250));
      await store.close();
      console.log("written");
    `;
    const r = await execa(process.execPath, ["--import", writeZlibWithoutCrc32(tmp.path), "--input-type=module", "-e", script], {
      reject: false,
      timeout: 60_000,
    });
    expect(String(r.stderr)).toBe("");
    expect(String(r.stdout).trim()).toBe("written");
    const store = await DiskStore.open(dir, { binding: "b" });
    expect(store.openReport.index).toBe("loaded");
    expect(await store.get("k")).toEqual(Uint8Array.of(1, 2, 3, 250));
    expect(store.stats.corrupt).toBe(0);
    await store.close();
  });
});
