// PyTorch as a benchmark peer: bench/torch_baseline.py under Debian's interpreter (which carries
// python3-torch), spawned once and kept; each case is set up, timed round by round, and dropped.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Contender } from "./measure";
import { type Peer, spawnPeer } from "./peer";

const SCRIPT = fileURLToPath(new URL("./torch_baseline.py", import.meta.url));
/**
 * $BENCH_PYTHON if set (a GPU machine's CUDA build of PyTorch may live elsewhere), then Debian's
 * interpreter: the python3 first on PATH (a pyenv build here) does not see python3-torch.
 */
const PYTHON = [process.env["BENCH_PYTHON"], "/usr/bin/python3", "python3"].filter((p): p is string => Boolean(p));

export interface TorchInfo {
  readonly torch: string;
  readonly device: string;
  readonly threads?: number;
  readonly gpu?: string;
  readonly blas?: string;
  readonly mkldnn?: boolean;
  readonly tf32?: boolean;
}

export interface TorchPeer {
  readonly peer: Peer;
  readonly info: TorchInfo;
  /** "torch-cpu" or "torch-cuda". */
  readonly impl: string;
}

/**
 * How PyTorch's OpenMP threads wait at the end of each parallel region. "active" (GNU OpenMP's
 * default) spins: the fastest on an idle machine, but when other processes take the cores a
 * spinning thread waits for a descheduled one at every op, and a 2-thread iteration measured
 * 30x slower here (4-6 s instead of 0.15 s for the tiny step at load average 5). "passive"
 * sleeps instead. `auto` picks passive when the machine is busy.
 */
export type OmpWait = "active" | "passive";

/** The PyTorch peer, or why there is none (no interpreter with torch). */
export async function startTorch(threads: number, wait: OmpWait): Promise<TorchPeer | { readonly missing: string }> {
  const python = PYTHON.find((p) => (p.startsWith("/") ? existsSync(p) : true) && spawnSync(p, ["-c", "import torch"]).status === 0);
  if (python === undefined) return { missing: "no Python with PyTorch (on Debian: apt-get install python3-torch; or set BENCH_PYTHON)" };
  const env = { ...process.env, PYTHONUNBUFFERED: "1", ...(wait === "passive" ? { OMP_WAIT_POLICY: "PASSIVE" } : {}) };
  const peer = spawnPeer("torch", python, [SCRIPT, "--threads", String(threads)], env);
  const info = await peer.request<TorchInfo>({ cmd: "info" });
  return { peer, info, impl: info.device.startsWith("cuda") ? "torch-cuda" : "torch-cpu" };
}

let serial = 0;

/** A case of torch_baseline.py ("conv", "matmul" or "step"; see its docstring) as a contender. */
export function torchContender(t: TorchPeer, setup: Readonly<Record<string, unknown>>): Contender {
  const id = `case${serial++}`;
  return {
    impl: t.impl,
    async prepare() {
      const r = await t.peer.request<{ reps: number }>({ cmd: "setup", id, ...setup });
      return { reps: r.reps };
    },
    async run(reps: number) {
      const r = await t.peer.request<{ ms: number; cpu_ms: number }>({ cmd: "time", id, reps });
      return { ms: r.ms, cpuMs: r.cpu_ms };
    },
    async dispose() {
      await t.peer.request({ cmd: "drop", id });
    },
  };
}

export async function torchMaxRssKiB(t: TorchPeer): Promise<number> {
  return (await t.peer.request<{ max_rss_kib: number }>({ cmd: "rss" })).max_rss_kib;
}
