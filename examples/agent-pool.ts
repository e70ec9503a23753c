// Starts simulated agent processes (simulated-agent.ts) and talks to them over IPC.
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

import type { GuardEvent, Stage } from "../src/refresh-guard.ts";
import type { CallResult } from "./simulated-agent.ts";

export type { CallResult };

const WORKER = fileURLToPath(new URL("./simulated-agent.ts", import.meta.url));

export interface WorkerOptions {
  /** Install refresh-guard in the agent (default true). */
  guard?: boolean;
  guardDir: string;
  tokenUrl: string;
  timing?: Record<string, number>;
  pauseAt?: Stage;
}

export class Worker {
  readonly child: ChildProcess;
  readonly events: GuardEvent[] = [];
  readonly stderr: string[] = [];
  private nextId = 0;
  private readonly pending = new Map<number, (results: CallResult[]) => void>();
  private stageWaiters: ((stage: string) => void)[] = [];
  readonly ready: Promise<void>;

  constructor(options: WorkerOptions) {
    this.child = fork(WORKER, [], {
      env: { ...process.env, WORKER_CONFIG: JSON.stringify(options) },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.child.stderr?.on("data", (chunk: Buffer) => this.stderr.push(chunk.toString()));
    this.child.stdout?.on("data", (chunk: Buffer) => this.stderr.push(chunk.toString()));
    this.ready = new Promise((resolve, reject) => {
      this.child.once("exit", (code) => reject(new Error(`worker exited early (${code}): ${this.stderr.join("")}`)));
      this.child.on("message", (message: { type: string; id?: number; results?: CallResult[]; event?: GuardEvent; stage?: string }) => {
        if (message.type === "ready") resolve();
        if (message.type === "event" && message.event) this.events.push(message.event);
        if (message.type === "stage" && message.stage) {
          for (const wake of this.stageWaiters.splice(0)) wake(message.stage);
        }
        if (message.type === "result" && message.id !== undefined && message.results) {
          this.pending.get(message.id)?.(message.results);
          this.pending.delete(message.id);
        }
      });
    });
  }

  refresh(refreshToken: string, callers: number): Promise<CallResult[]> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ type: "refresh", id, refreshToken, callers });
    });
  }

  /** Resolves when the worker reports reaching its pause stage. */
  stage(): Promise<string> {
    return new Promise((resolve) => this.stageWaiters.push(resolve));
  }

  /** Lets a worker held at its pause stage go on. */
  resume(): void {
    this.child.send({ type: "continue" });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
  }
}

export async function startWorkers(count: number, options: WorkerOptions): Promise<Worker[]> {
  const workers = Array.from({ length: count }, () => new Worker(options));
  await Promise.all(workers.map((worker) => worker.ready));
  return workers;
}
