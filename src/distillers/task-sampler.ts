import { seededRng } from "../data/rng.js";
import { DataFeed, iterate } from "../train/data.js";
import type { StepFeed, StepItem } from "../train/hooks.js";
import type { DataSource } from "../train/options.js";
import type { Batch } from "../worker/model-handle.js";

/** Samples a task per micro-batch, seeded, and walks each task's data in order, cycling it. */
export class TaskSampler implements StepFeed {
  readonly replayable: boolean;
  readonly probabilities: Record<string, number>;

  constructor(
    private readonly sources: Record<string, DataSource>,
    tau: number,
    private readonly seed: number,
    private readonly postprocessors: Record<string, (batch: Batch) => Batch> = {},
  ) {
    const feeds = Object.entries(sources).map(([task, src]) => [task, new DataFeed(src)] as const);
    this.replayable = feeds.every(([, f]) => f.replayable);
    const sizes = feeds.map(([task, f]) => [task, f.replayable ? f.epoch(0).length : null] as const);
    const known = sizes.every(([, n]) => n !== null);
    const weights = sizes.map(([, n]) => (known ? n! ** tau : 1));
    const sum = weights.reduce((a, b) => a + b, 0);
    this.probabilities = Object.fromEntries(sizes.map(([task], i) => [task, weights[i]! / sum]));
  }

  epoch(_index: number): { items: AsyncIterable<StepItem>; length: null } {
    return { items: this.stream(), length: null };
  }

  private async *stream(): AsyncGenerator<StepItem> {
    const tasks = Object.keys(this.sources);
    const weights = tasks.map((t) => this.probabilities[t]!);
    const rng = seededRng(this.seed);
    const feeds = Object.fromEntries(tasks.map((t) => [t, new DataFeed(this.sources[t]!)]));
    const cursors: Record<string, { pass: number; it: AsyncIterator<{ batch: Batch }> }> = {};
    const open = (task: string, pass: number) => ({ pass, it: iterate(feeds[task]!.epoch(pass).items)[Symbol.asyncIterator]() });
    for (;;) {
      const task = tasks[rng.choice(weights)]!;
      cursors[task] ??= open(task, 0);
      let next = await cursors[task].it.next();
      if (next.done) {
        cursors[task] = open(task, cursors[task].pass + 1);
        next = await cursors[task].it.next();
        if (next.done) throw new Error(`data.${task}: no batches`);
      }
      const post = this.postprocessors[task];
      yield { task, batch: post ? post(next.value.batch) : next.value.batch };
    }
  }
}
