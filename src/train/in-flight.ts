/** The step requests sent and not yet answered, bounded so the worker always has the next one queued. */
export class InFlight {
  private readonly pending: Promise<void>[] = [];

  constructor(private readonly limit: number) {}

  /** Adds a request; waits while `limit` or more are unanswered. A rejection surfaces here or in drain(), in order. */
  async add(request: Promise<void>): Promise<void> {
    request.catch(() => undefined); // surfaced when awaited in order, not as an unhandled rejection
    this.pending.push(request);
    while (this.pending.length >= this.limit) await this.pending.shift();
  }

  /** Waits for every request, in order; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.pending.length) await this.pending.shift();
  }

  /** Waits for every request without failing (after an error, before the run ends). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.pending.splice(0));
  }
}
