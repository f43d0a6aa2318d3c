import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Integration tests each start a real PyTorch worker; two at a time suits a 2-core machine.
    maxWorkers: 2,
  },
});
