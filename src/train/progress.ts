import cliProgress from "cli-progress";

/** A progress bar on a TTY (step/total, loss, lr, it/s, ETA); silent otherwise. */
export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();

  constructor(total: number, enabled: boolean, start = 0) {
    if (!enabled) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: "{bar} {value}/{total} | loss {loss} | lr {lr} | {rate} it/s | ETA {eta_formatted}",
        hideCursor: true,
        stream: process.stderr,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, start, { loss: "-", lr: "-", rate: "-" });
  }

  update(step: number, loss: number, lr: number, startStep: number): void {
    if (!this.bar) return;
    const rate = (step - startStep) / Math.max(1e-3, (Date.now() - this.started) / 1000);
    this.bar.update(step, { loss: loss.toFixed(4), lr: lr.toExponential(2), rate: rate.toFixed(2) });
  }

  stop(): void {
    this.bar?.stop();
  }
}
