/** Leave nothing behind: a Node process holding a worker that gets SIGINT, SIGTERM or SIGKILL. */

import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { execa, type ResultPromise } from "execa";
import { describe, expect, it } from "vitest";
import { waitUntilGone } from "./helpers/process.js";

const SLOW = Boolean(process.env.TEXTBREWER_SLOW_TESTS);

interface Held {
  child: ResultPromise;
  pid: number;
  folder: string;
  /** Everything the script printed so far. */
  output: () => string;
}

async function holdWorker(...flags: string[]): Promise<Held> {
  const child = execa("node", ["--import", "tsx", "test/helpers/signal-worker.ts", ...flags], {
    reject: false,
    buffer: false,
    timeout: 120_000,
  });
  let text = "";
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      text += String(d);
      if (text.includes("\n")) resolve(text.split("\n")[0]!);
    });
    void child.then((r) => reject(new Error(`the script ended before its worker started: ${String(r.stderr ?? r.exitCode)}`)));
  });
  const { pid, endpoint } = JSON.parse(line) as { pid: number; endpoint: string };
  const folder = dirname(endpoint.slice("ipc://".length));
  expect(existsSync(folder)).toBe(true);
  return { child, pid, folder, output: () => text };
}

async function expectNothingLeft(held: Held): Promise<void> {
  await waitUntilGone(held.pid, 10_000);
  const start = Date.now();
  while (existsSync(held.folder) && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 50));
  expect(existsSync(held.folder), `${held.folder} is left`).toBe(false);
}

describe("signals", () => {
  it.each(["SIGINT", "SIGTERM"] as const)("%s closes the worker, removes its ipc folder and ends Node with that signal", async (signal) => {
    const held = await holdWorker();
    held.child.kill(signal);
    const result = await held.child;
    expect(result.signal).toBe(signal);
    await expectNothingLeft(held);
  });

  it.skipIf(!SLOW)("a second Ctrl-C while closing still ends everything, by SIGINT", async () => {
    const held = await holdWorker();
    held.child.kill("SIGINT");
    held.child.kill("SIGINT");
    const result = await held.child;
    expect(result.signal).toBe("SIGINT");
    await expectNothingLeft(held);
  });

  it("SIGKILL of Node: the worker exits on its lifeline and removes its ipc folder itself", async () => {
    const held = await holdWorker();
    held.child.kill("SIGKILL");
    await held.child;
    await expectNothingLeft(held);
  });

  it.skipIf(!SLOW)("a program with its own SIGINT handler keeps it; its exit still ends the worker and removes the folder", async () => {
    const held = await holdWorker("--own-handler");
    held.child.kill("SIGINT");
    const result = await held.child;
    expect(result.exitCode).toBe(0);
    expect(held.output()).toMatch(/handled/);
    await expectNothingLeft(held);
  });
});
