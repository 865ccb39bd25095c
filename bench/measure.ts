// Interleaved timing: every implementation of a case runs once per round, in a rotating order,
// so that drift of a shared, noisy machine (other processes, thermal and frequency changes)
// lands on all of them alike; the figure kept is the median over rounds.

/** One implementation of a benchmark case (our kernels, TF.js, PyTorch). */
export interface Contender {
  readonly impl: string;
  /**
   * Builds and warms the case up (shader compilation, primitive creation) and answers how many
   * repetitions one timed run should hold, or why this implementation cannot run the case.
   */
  prepare(): Promise<{ readonly reps: number } | { readonly unsupported: string }>;
  /**
   * One timed run of `reps` repetitions, waited for: milliseconds per repetition, and where the
   * implementation can tell, the CPU time its process spent meanwhile (all threads, lavapipe's
   * included), per repetition.
   */
  run(reps: number): Promise<number | Sample>;
  /** After the last round, before dispose: extra measurements that must not disturb the rounds. */
  finish?(): Promise<void>;
  /** Frees what prepare() built (also after a failure). */
  dispose(): Promise<void>;
}

export interface Sample {
  readonly ms: number;
  readonly cpuMs: number;
}

export type Timing =
  | {
      readonly impl: string;
      readonly status: "ok";
      readonly ms: number;
      readonly runs: readonly number[];
      readonly reps: number;
      /** Median over runs of CPU time / wall time: the cores the process kept busy (2 = all, here). */
      readonly cores?: number;
      /** CPU milliseconds of the process per repetition, per run (where the contender can tell). */
      readonly cpuRuns?: readonly number[];
    }
  | { readonly impl: string; readonly status: "unsupported" | "failed"; readonly reason: string };

/** Repetitions for one run to last about `targetMs`, from one warm repetition's time. */
export function repsFor(warmMs: number, targetMs: number, max = 100): number {
  return Math.max(1, Math.min(max, Math.round(targetMs / Math.max(warmMs, 1e-3))));
}

/**
 * Warms a case up and sizes its runs: one cold repetition (compilation), then one warm one to
 * count repetitions, unless the cold one already took the whole target (slow cases run once
 * per round anyway, and a second untimed repetition of a 60 s step would be wasted).
 */
export async function warmUp(once: () => Promise<number>, targetMs: number, max = 100): Promise<{ coldMs: number; reps: number }> {
  const coldMs = await once();
  if (coldMs >= targetMs) return { coldMs, reps: 1 };
  return { coldMs, reps: repsFor(await once(), targetMs, max) };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0]!;

/**
 * Prepares every contender (one after another: warm-ups are not timed), then runs `rounds`
 * rounds; round r starts with contender r mod n. A contender that fails is dropped from
 * later rounds and reported as failed.
 */
export async function interleave(contenders: readonly Contender[], rounds: number): Promise<Timing[]> {
  const reps = new Map<Contender, number>();
  const out = new Map<Contender, Timing>();
  const runs = new Map<Contender, number[]>();
  const cores = new Map<Contender, number[]>();
  const cpu = new Map<Contender, number[]>();
  try {
    for (const c of contenders) {
      try {
        const p = await c.prepare();
        if ("unsupported" in p) out.set(c, { impl: c.impl, status: "unsupported", reason: p.unsupported });
        else {
          reps.set(c, p.reps);
          runs.set(c, []);
        }
      } catch (e) {
        out.set(c, { impl: c.impl, status: "failed", reason: message(e) });
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < contenders.length; i++) {
        const c = contenders[(r + i) % contenders.length]!;
        const n = reps.get(c);
        if (n === undefined || out.has(c)) continue;
        try {
          const s = await c.run(n);
          if (typeof s === "number") runs.get(c)!.push(s);
          else {
            runs.get(c)!.push(s.ms);
            cores.set(c, [...(cores.get(c) ?? []), s.cpuMs / s.ms]);
            cpu.set(c, [...(cpu.get(c) ?? []), s.cpuMs]);
          }
        } catch (e) {
          out.set(c, { impl: c.impl, status: "failed", reason: message(e) });
        }
      }
    }
    for (const c of contenders) {
      if (runs.has(c) && !out.has(c)) await c.finish?.();
    }
  } finally {
    for (const c of contenders) await c.dispose().catch(() => undefined);
  }
  return contenders.map((c) => {
    const done = out.get(c);
    if (done !== undefined) return done;
    const xs = runs.get(c)!;
    const busy = cores.get(c);
    const cpuRuns = cpu.get(c);
    return { impl: c.impl, status: "ok", ms: median(xs), runs: xs, reps: reps.get(c)!, ...(busy ? { cores: median(busy) } : {}), ...(cpuRuns ? { cpuRuns } : {}) };
  });
}
