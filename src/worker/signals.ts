/**
 * Ctrl-C and SIGTERM while workers are alive. Handlers are installed when the first worker starts and removed
 * when the last one is closed. On the first signal every worker is ended through its lifeline (which also
 * removes its private ipc folder), then the signal is raised again with no handler left, so the process ends
 * with the usual signal status; a second signal ends the workers with SIGKILL and the process at once.
 *
 * A program that listens for the signal itself keeps it: then nothing happens here on the signal, the program
 * decides when to exit, and at exit the workers are ended and their folders removed all the same.
 */

export interface LiveWorker {
  /** Ends the worker promptly without settling pending calls (the process is about to end). Bounded in time. */
  endForSignal(): Promise<void>;
  /** Synchronous: signal the process and remove the private folder. Used at exit and on a second signal. */
  endNow(signal: NodeJS.Signals): void;
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const live = new Set<LiveWorker>();
let ending: NodeJS.Signals | null = null;

const onExit = (): void => {
  for (const w of live) w.endNow("SIGTERM");
};

function onSignal(signal: NodeJS.Signals): void {
  if (ending) {
    for (const w of live) w.endNow("SIGKILL");
    reraise(signal);
    return;
  }
  if (process.listeners(signal).some((l) => l !== onSignal)) return; // the program handles it
  ending = signal;
  void Promise.all([...live].map((w) => w.endForSignal().catch(() => undefined))).then(() => reraise(signal));
}

function install(): void {
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on("exit", onExit);
}

function uninstall(): void {
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.removeListener("exit", onExit);
}

function reraise(signal: NodeJS.Signals): void {
  uninstall();
  live.clear();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

/** True once a signal is ending the workers: calls and starts then never settle, the process is about to end. */
export function endingOnSignal(): boolean {
  return ending !== null;
}

export function trackWorker(w: LiveWorker): void {
  live.add(w);
  if (live.size === 1 && !ending) install();
}

export function untrackWorker(w: LiveWorker): void {
  if (!live.delete(w)) return;
  if (live.size === 0 && !ending) uninstall();
}
