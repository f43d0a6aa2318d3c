/**
 * Data-parallel ranks: the worker launched under torchrun (`python -m torch.distributed.run`), one process per rank.
 * Each rank connects to this process on its own socket and proves its own launch token, as a single worker does;
 * `call` sends a request to every local rank (splitting the batch of a training step, one shard per rank) and
 * answers with local rank 0's result, and `rank(i)` addresses one rank alone.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa, type ResultPromise } from "execa";
import { pythonEnv, resolvePython } from "../../env/python-env.js";
import { Connection, type ReplyError } from "../connection.js";
import { WorkerClosedError, WorkerCrashedError, WorkerError, WorkerStartError } from "../errors.js";
import {
  type CreateModelOptions,
  createModelWith,
  type LoadModelOptions,
  loadModelWith,
  type ModelDescription,
  ModelHandle,
} from "../model-handle.js";
import { checkArgs, checkOpName, checkResult } from "../ops/check.js";
import type { OpName, OpResult } from "../ops/index.js";
import { endingOnSignal, type LiveWorker, trackWorker, untrackWorker } from "../signals.js";
import { lastTraceback, StderrTail } from "../stderr-tail.js";
import { type LoadTokenizerOptions, TokenizerHandle } from "../tokenizer-handle.js";
import { DEFAULT_MAX_MESSAGE_SIZE, type WorkerOptions } from "../worker.js";
import type { CallArgs, CallOptions, WorkerInfo, WorkerLink } from "../worker-link.js";
import { linesOfRank, parseRankFailure, type RankFailure } from "./launcher-report.js";
import { checkGroupDevice, type DistributedOptions, parseDistributedOptions, type ResolvedDistributedOptions } from "./options.js";
import { joinRows, shardArgs } from "./shard.js";

export interface WorkerGroupOptions extends Omit<WorkerOptions, "endpoint" | "curve" | "spinMicros"> {
  distributed: DistributedOptions;
}

/** One rank of the group as torch.distributed sees it. */
export interface RankInfo {
  rank: number;
  localRank: number;
  worldSize: number;
  /** null outside a process group. */
  backend: string | null;
  /** The rank's process id (a child of torchrun's agent). */
  pid: number;
}

/** Read-only requests that local rank 0 answers alone: every rank holds the same weights. */
const RANK0_OPS = new Set(["predict", "describe", "num_parameters", "save_model", "model_fingerprint", "teacher_logits"]);
/**
 * Forwards that every rank joins under strategy "fsdp": while a run trains (a callback), the student is sharded and
 * its forward all-gathers each block from every rank, so rank 0 alone would wait for the others until the timeout.
 */
const FSDP_FORWARD_OPS = new Set(["predict", "teacher_logits"]);

/** How long after torchrun reports a failed rank its last lines are awaited before the crash is reported. */
const RANK_LINES_GRACE_MS = 300;
/** How long the ranks that outlive a failed one (then torchrun) get to end on their own before they are killed. */
const SURVIVOR_GRACE_MS = 1500;
/** A collective error that means a peer rank is gone (gloo, NCCL). */
const PEER_LOST =
  /connection reset by peer|connection closed by peer|broken pipe|remote process exited|communicator was aborted|NCCL error|gloo|ProcessGroup/i;
/** Python errors a collective raises when a peer is gone, whatever its message says (it varies with the moment). */
const COLLECTIVE_ERRORS = new Set(["RuntimeError", "DistBackendError", "DistNetworkError", "DistError"]);
/** How long an error of that kind waits for torchrun to report which rank died. */
const PEER_LOSS_WAIT_MS = 1500;

/** One rank alone: requests reach only its process (no sharding, no other rank). */
export class RankWorker implements WorkerLink {
  constructor(
    private readonly group: WorkerGroup,
    readonly localRank: number,
  ) {}

  get info(): WorkerInfo {
    return this.group.rankInfo(this.localRank);
  }

  async call<N extends OpName>(op: N, ...[args, options]: CallArgs<N>): Promise<OpResult<N>> {
    checkOpName(op);
    const result = await this.group.callRank(this.localRank, op, checkArgs(op, args ?? {}), options);
    return checkResult(op, result);
  }

  runPython(ref: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown> {
    return this.call("call_python", { ref, args }, options);
  }
}

/** Ranks of one node under torchrun; the same methods as Worker. End it with close() or `await using`. */
export class WorkerGroup implements WorkerLink, AsyncDisposable {
  /** torchrun's process id on this node (the ranks are its children; see `ranks` for theirs). */
  readonly pid: number;
  readonly distributed: ResolvedDistributedOptions;
  /** Local rank 0's facts. */
  info!: WorkerInfo;
  /** This node's ranks, by local rank. */
  ranks!: RankInfo[];
  private infos: WorkerInfo[] = [];
  private readonly conns: Connection[];
  private readonly child: ResultPromise;
  private readonly stderr: StderrTail;
  private readonly privateDir: string;
  private readonly exited: Promise<void>;
  private readonly crashKnown: Promise<WorkerCrashedError>;
  private readonly live: LiveWorker;
  private closing: Promise<void> | null = null;
  private crashed: WorkerCrashedError | null = null;

  private constructor(parts: {
    distributed: ResolvedDistributedOptions;
    conns: Connection[];
    child: ResultPromise;
    stderr: StderrTail;
    privateDir: string;
    exited: Promise<void>;
    crashKnown: Promise<WorkerCrashedError>;
    live: LiveWorker;
  }) {
    this.crashKnown = parts.crashKnown;
    this.distributed = parts.distributed;
    this.conns = parts.conns;
    this.child = parts.child;
    this.pid = parts.child.pid ?? -1;
    this.stderr = parts.stderr;
    this.privateDir = parts.privateDir;
    this.exited = parts.exited;
    this.live = parts.live;
  }

  static async start(options: WorkerGroupOptions): Promise<WorkerGroup> {
    const distributed = parseDistributedOptions(options.distributed);
    const device = options.device ?? "auto";
    checkGroupDevice(device);
    const maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    const { python } = resolvePython(options.python);
    const n = distributed.nprocPerNode;
    const tokens = Array.from({ length: n }, () => randomBytes(24).toString("hex"));
    const conns = tokens.map((t) => new Connection(t, { maxMessageSize }));
    const privateDir = mkdtempSync(join(tmpdir(), "tbg-")); // 0700
    const endpoints: string[] = [];
    try {
      for (const [i, conn] of conns.entries()) endpoints.push(await conn.bind(`ipc://${join(privateDir, `r${i}.ipc`)}`));
    } catch (e) {
      for (const c of conns) c.close();
      rmSync(privateDir, { recursive: true, force: true });
      throw new WorkerStartError(`cannot bind the ranks' sockets in ${privateDir}: ${(e as Error).message}`);
    }

    const rendezvous =
      distributed.nnodes === 1 && distributed.masterPort === undefined
        ? ["--standalone"]
        : ["--nnodes", String(distributed.nnodes), "--node-rank", String(distributed.nodeRank)].concat([
            "--master-addr",
            distributed.masterAddr,
            "--master-port",
            String(distributed.masterPort),
          ]);
    const args = ["-m", "torch.distributed.run", "--nproc-per-node", String(n), ...rendezvous];
    // one failed rank ends the group (no restarts), noticed within 0.1 s
    args.push("--max-restarts", "0", "--monitor-interval", "0.1");
    // each rank's stderr lines come through torchrun as `[rankN]:line` (N its local rank), so a crash shows its own
    args.push("--role", "rank", "--tee", "3");
    args.push("-m", "textbrewer_worker", "--endpoint", JSON.stringify(endpoints), "--device", device, "--private-dir", privateDir);
    args.push("--max-message-size", String(Number.isFinite(maxMessageSize) ? maxMessageSize : -1));
    args.push("--distributed", distributed.backend, "--collective-timeout-s", String(distributed.collectiveTimeoutMs / 1000));
    args.push("--strategy", distributed.strategy);
    const scratch = join(privateDir, "tmp");
    mkdirSync(scratch);
    const child = execa(python, args, {
      // torchrun's agent and the ranks make temporary folders (logs, error files): inside the private one, removed at close
      env: pythonEnv({ ...options.env, TMPDIR: scratch, TEXTBREWER_WORKER_TOKEN: JSON.stringify(tokens) }),
      stdin: "pipe", // the lifeline, inherited by every rank: they all exit when this pipe closes
      stdout: "pipe",
      stderr: "pipe",
      buffer: false,
      reject: false,
      cleanup: false, // ../signals.ts ends the group at exit and on SIGINT/SIGTERM
      forceKillAfterDelay: 3000,
    });
    const echo = options.echoOutput ?? process.env.TEXTBREWER_WORKER_LOG === "1";
    const stderr = new StderrTail(400);
    let group: WorkerGroup | null = null;
    let rankFailure: RankFailure | null = null;
    const failure = (): WorkerCrashedError | null => (rankFailure ? crashOfRank(rankFailure, distributed, group, stderr) : null);
    let crash: WorkerCrashedError | null = null;
    let announceCrash: (e: WorkerCrashedError) => void = () => {};
    const crashKnown = new Promise<WorkerCrashedError>((r) => (announceCrash = r));
    const settle = (error: WorkerCrashedError): void => {
      if (crash) return;
      crash = error;
      group?.onCrash(error);
      for (const c of conns) c.fail(error);
      announceCrash(error);
    };
    // A survivor blocked in a collective (or torchrun stopping its workers) can take seconds on a loaded machine:
    // the run is over, so what is still running after a grace is killed, ranks first, then torchrun.
    const endSurvivors = (failed: number): void => {
      const alive = (pid: number): boolean => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const kill = (pid: number): void => {
        if (alive(pid)) process.kill(pid, "SIGKILL");
      };
      setTimeout(() => {
        for (const r of group?.ranks ?? []) if (r.localRank !== failed) kill(r.pid);
        setTimeout(() => child.pid !== undefined && kill(child.pid), SURVIVOR_GRACE_MS).unref();
      }, SURVIVOR_GRACE_MS).unref();
    };
    const onRankFailure = (f: RankFailure): void => {
      if (rankFailure) return; // the first failure is the cause; the others follow from it
      rankFailure = f;
      child.stdin?.end(); // the rest of the group ends with its lifeline
      endSurvivors(f.localRank);
      // the rank's last lines (its traceback) can still be on their way through torchrun's pipes
      setTimeout(() => settle(failure()!), RANK_LINES_GRACE_MS);
    };
    child.stderr?.setEncoding("utf8");
    child.stdout?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      for (const line of stderr.push(chunk)) {
        const f = parseRankFailure(line);
        if (f) onRankFailure(f);
      }
      if (echo) process.stderr.write(chunk);
    });
    child.stdout?.on("data", (chunk: string) => {
      if (echo) process.stderr.write(chunk);
    });

    let launcherExit: WorkerCrashedError | null = null;
    const exited = child.then((result) => {
      launcherExit =
        failure() ??
        new WorkerCrashedError({
          exitCode: result.exitCode ?? null,
          signal: result.signal ?? null,
          traceback: stderr.lastTraceback(),
          stderrTail: stderr.tail(20),
        });
      settle(launcherExit);
    });
    const removePrivateDir = (): void => rmSync(privateDir, { recursive: true, force: true });
    const live: LiveWorker = {
      endForSignal: async () => {
        for (const c of conns) c.abandon();
        child.stdin?.end();
        if (!(await settlesWithin(exited, 2000))) child.kill("SIGKILL");
        await settlesWithin(exited, 2000);
        for (const c of conns) c.close();
        removePrivateDir();
      },
      endNow: (signal) => {
        for (const c of conns) c.abandon();
        child.stdin?.end();
        child.kill(signal);
        removePrivateDir();
      },
    };
    trackWorker(live);

    const timeoutMs = options.startupTimeoutMs ?? 180_000;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      Promise.all(conns.map((c) => c.waitForHello())).then(() => "ready" as const),
      exited.then(() => "exited" as const),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (endingOnSignal()) return new Promise<never>(() => {});
    if (outcome !== "ready") {
      child.stdin?.end();
      child.kill("SIGKILL");
      await exited;
      for (const c of conns) c.close();
      removePrivateDir();
      untrackWorker(live);
      const why = outcome === "timeout" ? `did not all connect within ${timeoutMs} ms` : "exited during startup";
      const details = launcherExit as WorkerCrashedError | null;
      throw new WorkerStartError(
        `the ${n} ranks under torch.distributed.run (${python}) ${why}` +
          (details && outcome === "exited" ? ` (${details.message.split("\n")[0]})` : "") +
          (stderr.tail(30).length ? `\n--- torchrun stderr ---\n${stderr.tail(30).join("\n")}` : "") +
          "\nRun `npx textbrewer doctor` to check the Python environment.",
      );
    }
    group = new WorkerGroup({ distributed, conns, child, stderr, privateDir, exited, crashKnown, live });
    try {
      const infos = (await group.callEach("info")).map((r) => checkResult("info", r));
      const dist = (await group.callEach("dist_info")).map((r) => checkResult("dist_info", r));
      group.infos = infos;
      group.info = infos[0]!;
      group.ranks = dist.map((d, i) => ({ ...d, pid: conns[i]!.workerPid ?? -1 }));
    } catch (e) {
      await group.close();
      throw e;
    }
    return group;
  }

  /** The facts of one local rank. */
  rankInfo(localRank: number): WorkerInfo {
    const info = this.infos[localRank];
    if (!info) throw new RangeError(`localRank: ${localRank} is not a rank of this node; give 0 … ${this.conns.length - 1}`);
    return info;
  }

  /** One local rank alone, e.g. to run a Python function on it: `group.rank(1).runPython("f.py:fn")`. */
  rank(localRank: number): RankWorker {
    this.rankInfo(localRank);
    return new RankWorker(this, localRank);
  }

  /** Number of ranks on this node. */
  get size(): number {
    return this.conns.length;
  }

  /**
   * Sends one request to every local rank and resolves with local rank 0's result once all have answered. A
   * training step's batch is the global batch: it is split along its first dimension into one equal shard per rank
   * of the whole run (ShardError when it does not split evenly), and each local rank gets its own (with several
   * nodes, node k's ranks take the k-th part). Read-only model requests (predict, describe, save_model, …) go to
   * local rank 0 alone; with strategy "fsdp", predict and teacher_logits go to every rank (the same batch).
   */
  async call<N extends OpName>(op: N, ...[args, options]: CallArgs<N>): Promise<OpResult<N>> {
    checkOpName(op);
    const result = await this.callUnchecked(op, checkArgs(op, args ?? {}), options);
    return checkResult(op, result);
  }

  /** Sends `op` and `args` as they are, without the catalogue (see `Worker.callUnchecked`), split as `call` splits. */
  async callUnchecked(op: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown> {
    this.checkOpen(options);
    if (this.distributed.strategy === "fsdp" && FSDP_FORWARD_OPS.has(op)) {
      const results = await Promise.all(this.conns.map((_, i) => this.request(i, op, args)));
      return results[0];
    }
    if (RANK0_OPS.has(op)) return this.request(0, op, args);
    // every node's script sends the same global batch: it is split over all ranks and this node keeps its ranks' shards
    const n = this.conns.length;
    const first = this.distributed.nodeRank * n;
    const perRank = shardArgs(op, args, n * this.distributed.nnodes).slice(first, first + n);
    const results = await Promise.all(perRank.map((a, i) => this.request(i, op, a)));
    if (op === "train_step" && (args.returnTeacherLogits || args.returnTeacherFeatures)) {
      // each rank's teacher outputs are its shard's rows: joined, they are the global batch's (cache write-through)
      const replies = results as Record<string, unknown>[];
      const joined = { ...replies[0] };
      for (const key of ["teacherLogits", "teacherFeatures"]) {
        if (replies[0]![key] !== undefined) joined[key] = joinRows(replies.map((r) => r[key]));
      }
      return joined;
    }
    return results[0];
  }

  /** Sends the same request to every local rank; resolves with their results in local-rank order. */
  async callEach(op: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown[]> {
    this.checkOpen(options);
    return Promise.all(this.conns.map((_, i) => this.request(i, op, args)));
  }

  /** A request to one local rank alone. */
  async callRank(localRank: number, op: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown> {
    this.checkOpen(options);
    this.rankInfo(localRank);
    return this.request(localRank, op, args);
  }

  async runPython(ref: string, args: Record<string, unknown> = {}, options: CallOptions = {}): Promise<unknown> {
    return this.call("call_python", { ref, args }, options);
  }

  /** Seeds every rank's random generators with the same seed. */
  async seed(seed: number): Promise<void> {
    await this.call("seed", { seed });
  }

  /** Loads the model on every rank; rank 0's weights are then copied to the others, so all hold the same. */
  async loadModel(options: LoadModelOptions): Promise<ModelHandle> {
    return loadModelWith(options, async (args) => this.handle(await this.sameOnEveryRank("load_model", args)));
  }

  /** Builds the model on every rank; rank 0's weights are then copied to the others, so all hold the same. */
  async createModel(options: CreateModelOptions): Promise<ModelHandle> {
    return createModelWith(options, async (args) => this.handle(await this.sameOnEveryRank("create_model", args)));
  }

  async loadTokenizer(path: string, options: LoadTokenizerOptions = {}): Promise<TokenizerHandle> {
    const description = await this.call("load_tokenizer", { path, trustRemoteCode: options.trustRemoteCode });
    return new TokenizerHandle(description, this);
  }

  /** The last lines torchrun and the ranks wrote to stderr (a rank's lines start with `[rankN]:`, N its local rank). */
  recentStderr(lines = 20): string[] {
    return this.stderr.tail(lines);
  }

  /** Milliseconds since the most silent rank's last heartbeat. */
  get heartbeatAgeMs(): number {
    const last = Math.min(...this.conns.map((c) => c.lastHeartbeat ?? 0));
    return last ? Date.now() - last : Infinity;
  }

  get alive(): boolean {
    return !this.crashed && !this.closing;
  }

  /** Asks every rank to finish, then ends torchrun (SIGTERM, then SIGKILL); frees the sockets. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private onCrash(error: WorkerCrashedError): void {
    if (!this.closing && !this.crashed) this.crashed = error;
  }

  private checkOpen(options: CallOptions): void {
    if (this.crashed) throw this.crashed;
    if (this.closing) throw new WorkerClosedError();
    options.signal?.throwIfAborted();
  }

  private async request(localRank: number, op: string, args: Record<string, unknown>): Promise<unknown> {
    if (endingOnSignal()) return new Promise<never>(() => {});
    try {
      return (await this.conns[localRank]!.request(op, args)).result;
    } catch (e) {
      const err = e as ReplyError;
      if (err.info) {
        if (this.conns.length > 1 && (PEER_LOST.test(err.info.message) || COLLECTIVE_ERRORS.has(err.info.type))) {
          // a collective failed because another rank died: that death is the error to report
          const crash = await Promise.race([this.crashKnown, new Promise<null>((r) => setTimeout(() => r(null), PEER_LOSS_WAIT_MS))]);
          if (crash) throw crash;
        }
        throw new WorkerError(op, err.info, this.ranks?.[localRank]?.rank ?? localRank);
      }
      throw e;
    }
  }

  private async sameOnEveryRank(op: "load_model" | "create_model", args: Record<string, unknown>): Promise<ModelDescription> {
    const descriptions = (await this.callEach(op, checkArgs(op, args))).map((d) => checkResult(op, d));
    const first = descriptions[0]!;
    const other = descriptions.find((d) => d.handle !== first.handle);
    if (other) {
      throw new WorkerStartError(
        `${op}: the ranks named the model differently ('${first.handle}' and '${other.handle}'); models must be loaded through the group, not one rank`,
      );
    }
    await this.call("dist_broadcast_model", { model: first.handle });
    return first;
  }

  private handle(description: ModelDescription): ModelHandle {
    return new ModelHandle(description, this);
  }

  private async shutdown(): Promise<void> {
    if (!this.crashed) {
      const ask = Promise.allSettled(this.conns.map((c) => c.request("shutdown")));
      await settlesWithin(ask, 2000);
      if (!(await settlesWithin(this.exited, 3000))) this.child.kill("SIGTERM"); // forceKillAfterDelay: SIGKILL 3 s later
    }
    this.child.stdin?.end();
    await this.exited;
    for (const c of this.conns) {
      c.fail(new WorkerClosedError());
      c.close();
    }
    rmSync(this.privateDir, { recursive: true, force: true });
    untrackWorker(this.live);
  }
}

/** The crash error of a failed rank: its global rank, exit status, and the traceback and lines it wrote. */
function crashOfRank(f: RankFailure, d: ResolvedDistributedOptions, group: WorkerGroup | null, stderr: StderrTail): WorkerCrashedError {
  // torchrun gives global ranks node by node: rank = nodeRank · nprocPerNode + localRank
  const rank = group?.ranks?.[f.localRank]?.rank ?? d.nodeRank * d.nprocPerNode + f.localRank;
  const own = linesOfRank(stderr.tail(400), f.localRank);
  return new WorkerCrashedError({
    exitCode: f.exitCode,
    signal: f.signal,
    traceback: lastTraceback(own),
    stderrTail: own.slice(-20),
    rank,
  });
}

function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
