// Starts simulated agent processes (simulated-agent.ts) and talks to them over IPC.
import { type ChildProcess, fork, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

import type { AgentConfig, CallResult, Mark, Mode, StageTimes } from "./simulated-agent.ts";

export type { AgentConfig, CallResult, Mark, Mode, StageTimes };

const AGENT = fileURLToPath(new URL("./simulated-agent.ts", import.meta.url));

const NS_SHELL = 'echo "$RG_NS_LAST_PID" > /proc/sys/kernel/ns_last_pid 2>/dev/null; "$@" & wait';

export interface LogLine {
  level: string;
  line: string;
}

export class Agent {
  readonly child: ChildProcess;
  /** Every log line the plugin wrote in this process. */
  readonly logs: LogLine[] = [];
  /** What the process itself printed (should be nothing). */
  readonly output: string[] = [];
  readonly ready: Promise<void>;
  private nextId = 0;
  private readonly pending = new Map<number, (results: CallResult[]) => void>();
  private stageWaiters: ((stage: string) => void)[] = [];
  private readonly cpuWaiters = new Map<number, (usage: { cpuUs: number; stages: StageTimes; marks: Mark[] }) => void>();

  /**
   * `options.pidNamespace`: run the agent in a pid namespace of its own (`unshare --pid --fork
   * --mount-proc --kill-child`, root only), as a container on the same volume would; killing
   * `child` then kills the agent too.
   */
  constructor(config: AgentConfig, options: { pidNamespace?: boolean } = {}) {
    const env = { ...process.env, AGENT_CONFIG: JSON.stringify(config) };
    this.child = options.pidNamespace
      ? spawn(
          "unshare",
          // Inside, the agent gets a high pid that nothing in the parent's namespace has, as a
          // container's process would (ns_last_pid is writable by root in its own namespace).
          ["--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", NS_SHELL, "sh", process.execPath, ...process.execArgv, AGENT],
          {
            env: { ...env, RG_NS_LAST_PID: String(20_000 + Math.floor(Math.random() * 12_000)) },
            stdio: ["ignore", "pipe", "pipe", "ipc"],
          },
        )
      : fork(AGENT, [], { env, stdio: ["ignore", "pipe", "pipe", "ipc"] });
    this.child.stdout?.on("data", (chunk: Buffer) => this.output.push(chunk.toString()));
    this.child.stderr?.on("data", (chunk: Buffer) => this.output.push(chunk.toString()));
    this.ready = new Promise((resolve, reject) => {
      this.child.once("exit", (code) => reject(new Error(`agent exited early (${code}): ${this.output.join("")}`)));
      this.child.on(
        "message",
        (message: {
          type: string;
          id?: number;
          results?: CallResult[];
          level?: string;
          line?: string;
          stage?: string;
          cpuUs?: number;
          stages?: StageTimes;
          marks?: Mark[];
          lines?: LogLine[];
        }) => {
          if (message.type === "ready") resolve();
          if (message.type === "log" && message.line !== undefined) this.logs.push({ level: message.level ?? "info", line: message.line });
          if (message.type === "logs" && message.lines) this.logs.push(...message.lines);
          if (message.type === "stage" && message.stage) {
            for (const wake of this.stageWaiters.splice(0)) wake(message.stage);
          }
          if (message.type === "cpu" && message.id !== undefined) {
            this.cpuWaiters.get(message.id)?.({ cpuUs: message.cpuUs ?? 0, stages: message.stages ?? {}, marks: message.marks ?? [] });
            this.cpuWaiters.delete(message.id);
          }
          if (message.type === "result" && message.id !== undefined && message.results) {
            this.pending.get(message.id)?.(message.results);
            this.pending.delete(message.id);
          }
        },
      );
    });
    this.ready.catch(() => undefined);
  }

  /** The `event=` field of each log line, e.g. "redeemed", "shared", "failed". */
  get events(): string[] {
    return this.logs.map(({ line }) => /event=(\S+)/.exec(line)?.[1] ?? "");
  }

  /** The same, with the reason of warnings and failures: `warning:lock_compromised`, `failed:lock_timeout`. */
  get reasons(): string[] {
    return this.logs.map(({ line }) => {
      const event = /event=(\S+)/.exec(line)?.[1] ?? "";
      const reason = /reason=(\S+)/.exec(line)?.[1];
      return reason === undefined ? event : `${event}:${reason}`;
    });
  }

  /**
   * `callers` concurrent refreshes of `refreshToken`. `mode` picks how they are coordinated (see
   * simulated-agent.ts; default: the guard if the agent runs it); `redeems` marks the process
   * whose first caller redeems in `floor` mode.
   */
  refresh(refreshToken: string, callers: number, options: { mode?: Mode; redeems?: boolean } = {}): Promise<CallResult[]> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ type: "refresh", id, refreshToken, callers, ...options });
    });
  }

  /** The process's CPU time so far (µs); with `profile`, the guard's step times and marks since the last call. */
  cpu(): Promise<{ cpuUs: number; stages: StageTimes; marks: Mark[] }> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.cpuWaiters.set(id, resolve);
      this.child.send({ type: "cpu", id });
    });
  }

  /** Resolves when the agent reports reaching its pause stage. */
  stage(): Promise<string> {
    return new Promise((resolve) => this.stageWaiters.push(resolve));
  }

  /** Lets an agent held at its pause stage go on. */
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

export async function startAgents(count: number, config: AgentConfig, options: { pidNamespace?: boolean } = {}): Promise<Agent[]> {
  const agents = Array.from({ length: count }, () => new Agent(config, options));
  await Promise.all(agents.map((agent) => agent.ready));
  return agents;
}
