// Running the repository's command-line scripts from tests, as `npm run` does: node itself
// with tsx loaded (not the tsx wrapper, whose child a SIGKILL would not reach), in the
// repository root, stdout and stderr collected together.

import { type ChildProcess, spawn } from "node:child_process";
import { REPO_ROOT } from "../train/programs";

export interface StartedScript {
  readonly child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  readonly output: () => string;
  readonly done: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
}

/** Starts `node --import tsx <script> ...args` (script relative to the repository root). */
export function startScript(script: string, args: readonly string[]): StartedScript {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout!.on("data", (b: Buffer) => (text += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (text += b.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  return { child, output: () => text, done };
}

/** Runs a script to its end: its exit code (-1 when killed by a signal) and its output. */
export async function runScript(script: string, args: readonly string[]): Promise<{ code: number; out: string }> {
  const s = startScript(script, args);
  const { code } = await s.done;
  return { code: code ?? -1, out: s.output() };
}
