// A benchmark peer: a child process that answers one JSON request per line.
//
// The runner interleaves its own runs with a peer's (PyTorch in bench/torch_baseline.py, or our
// step suite in bench/step_worker.ts) so that machine drift hits both alike. Replies are lines
// starting with REPLY_PREFIX on the child's stdout; any other output is passed on to stderr.
// While a request is outstanding the runner only waits on a pipe: it takes no CPU from the peer.

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export const REPLY_PREFIX = "@@bench ";

export type Reply = { readonly ok: true } & Record<string, unknown>;

export class PeerError extends Error {
  constructor(peer: string, message: string) {
    super(`${peer}: ${message}`);
    this.name = "PeerError";
  }
}

export interface Peer {
  readonly name: string;
  /** Sends a request and resolves with the reply; rejects with PeerError on an error reply or exit. */
  request<T = Record<string, unknown>>(req: Readonly<Record<string, unknown>>): Promise<T>;
  close(): Promise<void>;
}

export function spawnPeer(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Peer {
  const child: ChildProcess = spawn(command, [...args], { stdio: ["pipe", "pipe", "inherit"], env });
  const waiting: { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  let exited: string | undefined;
  const fail = (why: string) => {
    exited = why;
    for (const w of waiting.splice(0)) w.reject(new PeerError(name, why));
  };
  child.on("error", (e) => fail(`cannot start: ${e.message}`));
  child.on("exit", (code, signal) => fail(`exited (${signal ?? `code ${code}`})`));
  const lines = createInterface({ input: child.stdout! });
  lines.on("line", (line) => {
    if (!line.startsWith(REPLY_PREFIX)) {
      process.stderr.write(`[${name}] ${line}\n`);
      return;
    }
    const w = waiting.shift();
    if (w === undefined) return;
    const reply = JSON.parse(line.slice(REPLY_PREFIX.length)) as Record<string, unknown>;
    if (reply["ok"] === true) w.resolve(reply);
    else w.reject(new PeerError(name, String(reply["error"] ?? "unknown error")));
  });
  return {
    name,
    request<T>(req: Readonly<Record<string, unknown>>): Promise<T> {
      if (exited !== undefined) return Promise.reject(new PeerError(name, exited));
      return new Promise<T>((resolve, reject) => {
        waiting.push({ resolve: resolve as (r: Record<string, unknown>) => void, reject });
        child.stdin!.write(`${JSON.stringify(req)}\n`);
      });
    },
    close(): Promise<void> {
      if (exited !== undefined) return Promise.resolve();
      return new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.stdin!.end();
      });
    },
  };
}

/** The serving side, for a TS peer: one handler per request, replies on stdout. */
export function servePeer(handle: (req: Record<string, unknown>) => Promise<Record<string, unknown>>): void {
  const lines = createInterface({ input: process.stdin });
  // Requests are handled one at a time, in order: a timed run must never overlap another.
  let chain = Promise.resolve();
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    chain = chain.then(async () => {
      let reply: Record<string, unknown>;
      try {
        reply = { ok: true, ...(await handle(JSON.parse(line) as Record<string, unknown>)) };
      } catch (e) {
        reply = { ok: false, error: e instanceof Error ? e.message : String(e) };
      }
      process.stdout.write(`${REPLY_PREFIX}${JSON.stringify(reply)}\n`);
    });
  });
  lines.on("close", () => {
    void chain.then(() => process.exit(0));
  });
}
