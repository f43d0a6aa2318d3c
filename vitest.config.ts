import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // a temp folder of the suite's own, which must be empty at the end (test/helpers/temp-guard.ts)
    globalSetup: ["test/helpers/temp-guard.ts"],
    pool: "forks",
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Integration tests each start a real PyTorch worker; two at a time suits a 2-core machine.
    maxWorkers: 2,
  },
});
