import { describe, expect, it } from "vitest";
import { convFlops, convOutSize } from "./cases";
import { type Contender, interleave, median, repsFor, warmUp } from "./measure";
import { templateOf } from "./ours";
import { type CaseReport, ratios, renderTiles, targets } from "./results";

/** A contender whose runs take the times given, recording the order of calls into `log`. */
function fake(impl: string, times: number[], log: string[], opts: { unsupported?: string; failAt?: number } = {}): Contender {
  let i = 0;
  return {
    impl,
    async prepare() {
      log.push(`prepare ${impl}`);
      return opts.unsupported ? { unsupported: opts.unsupported } : { reps: 1 };
    },
    async run() {
      log.push(`run ${impl}`);
      if (opts.failAt === i) throw new Error("boom\nsecond line");
      return times[i++]!;
    },
    async dispose() {
      log.push(`dispose ${impl}`);
    },
  };
}

describe("interleaved timing", () => {
  it("takes the median of the rounds, odd or even", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("sizes runs to the target time, at least one repetition and at most the cap", () => {
    expect(repsFor(10, 100)).toBe(10);
    expect(repsFor(500, 100)).toBe(1);
    expect(repsFor(0, 100, 50)).toBe(50);
  });

  it("skips the second warm-up repetition when the cold one already filled the target", async () => {
    let calls = 0;
    const slow = await warmUp(async () => (calls++, 300), 100);
    expect(slow).toEqual({ coldMs: 300, reps: 1 });
    expect(calls).toBe(1);
    const fast = await warmUp(async () => (calls++, 10), 100);
    expect(fast.reps).toBe(10);
    expect(calls).toBe(3);
  });

  it("rotates which contender starts each round, and disposes every contender", async () => {
    const log: string[] = [];
    const res = await interleave([fake("a", [1, 2, 3], log), fake("b", [4, 5, 6], log)], 3);
    expect(log.filter((l) => l.startsWith("run"))).toEqual(["run a", "run b", "run b", "run a", "run a", "run b"]);
    expect(log.slice(-2)).toEqual(["dispose a", "dispose b"]);
    expect(res).toEqual([
      { impl: "a", status: "ok", ms: 2, runs: [1, 2, 3], reps: 1 },
      { impl: "b", status: "ok", ms: 5, runs: [4, 5, 6], reps: 1 },
    ]);
  });

  it("reports an unsupported case and a failing contender without stopping the others", async () => {
    const log: string[] = [];
    const res = await interleave(
      [fake("ours", [1, 1], log), fake("tfjs", [], log, { unsupported: "no dilation gradients" }), fake("torch", [2, 2], log, { failAt: 1 })],
      2,
    );
    expect(res[0]).toMatchObject({ status: "ok", runs: [1, 1] });
    expect(res[1]).toEqual({ impl: "tfjs", status: "unsupported", reason: "no dilation gradients" });
    expect(res[2]).toEqual({ impl: "torch", status: "failed", reason: "boom" });
  });
});

describe("FLOP counts and kernel templates", () => {
  const s = { x: [1, 256, 64, 64], w: [256, 256, 3, 3], stride: 1, padding: 1, dilation: 1 } as const;

  it("counts 2*N*O*OH*OW*C*KH*KW per pass, three passes for fwd+dx+dw", () => {
    expect(convFlops(s, "fwd")).toBe(2 * 256 * 64 * 64 * 256 * 9);
    expect(convFlops(s, "all")).toBe(3 * convFlops(s, "dw"));
  });

  it("sizes outputs as PyTorch does, with stride, padding and dilation", () => {
    expect(convOutSize(321, 4, { ...s, stride: 2, padding: 1 })).toBe(160);
    expect(convOutSize(41, 3, { ...s, padding: 4, dilation: 4 })).toBe(41);
    expect(convOutSize(81, 1, { ...s, stride: 2, padding: 0 })).toBe(41);
  });

  it("names a dispatch's template by its anchor op and stage suffix, not its parameter hint", () => {
    expect(templateOf("step_012_conv2d_G_layer1_0_conv1", "conv2d")).toBe("conv2d");
    expect(templateOf("step_012_conv2d_G_layer1_0_conv1_pack", "conv2d")).toBe("conv2d_pack");
    expect(templateOf("step_300_conv2dWeightGrad_D1_conv2_packc", "conv2dWeightGrad")).toBe("conv2dWeightGrad_packc");
    expect(templateOf("step_012_conv2d_G_layer1_0_conv1_packc", "conv2d")).toBe("conv2d_packc");
    expect(templateOf("step_300_conv2dWeightGrad_D1_conv2_stage1", "conv2dWeightGrad")).toBe("conv2dWeightGrad_stage1");
  });
});

describe("ratios and targets", () => {
  // The median is not what the comparison reads: the fastest run is (runs: ms and ms + 50).
  const ok = (impl: string, ms: number) => ({ impl, status: "ok" as const, ms, runs: [ms], reps: 1 });
  const conv = (name: string, ours: number, tfjs: number): CaseReport => ({ suite: "kernels", name, flops: 1e9, timings: [ok("ours", ours), ok("tfjs-webgpu", tfjs)] });

  it("gives our time over PyTorch's and TF.js's time over ours", () => {
    const c: CaseReport = { suite: "kernels", name: "k", flops: 1e9, timings: [ok("ours", 20), ok("tfjs-webgpu", 100), ok("torch-cpu", 10)] };
    expect(ratios([c])).toEqual({ k: { "ours/torch": 2, "tfjs/ours": 5 } });
  });

  it("checks every conv against TF.js and names the slowest", () => {
    const [t] = targets([conv("a fwd", 10, 100), conv("b dw", 10, 30)]);
    expect(t).toMatchObject({ met: false, measured: "1/2 met; slowest 3.00x (b dw)" });
  });

  it("checks issue 3's GFLOP/s floors from the median wall time", () => {
    const mm: CaseReport = { suite: "kernels", name: "matmul 1024^3", flops: 2 * 1024 ** 3, timings: [ok("ours", 2 * 1024 ** 3 / 70e6)] };
    expect(targets([mm]).find((t) => t.what.includes("matmul"))).toMatchObject({ met: true, measured: "70.0 GFLOP/s" });
  });
});

describe("the tile report", () => {
  // CPU time is what the comparison reads (medians of cpuRuns), the wall median is shown beside it.
  const ok = (impl: string, cpu: number) => ({ impl, status: "ok" as const, ms: cpu / 2, runs: [cpu / 2], reps: 1, cpuRuns: [cpu + 50, cpu, cpu - 1] });
  const tiles = [{ dispatch: "k_000_matmul", rows: 32, candidates: [16, 32, 64] }];
  const kase = (tuned: number, fixed: readonly (readonly [number, number])[]): CaseReport => ({
    suite: "kernels",
    name: "matmul 1024^3",
    flops: 2 * 1024 ** 3,
    timings: [ok("ours", tuned), ...fixed.map(([rows, ms]) => ok(`tile ${rows} rows`, ms))],
    ours: { compileMs: 0, instantiateMs: 0, firstStepMs: 0, dispatches: 1, tiles },
  });

  it("compares tuned with the best fixed candidate, and lists the tile each dispatch ran with", () => {
    const text = renderTiles([kase(105, [[16, 150], [32, 100], [64, 120]])]).join("\n");
    expect(text).toContain("| matmul 1024^3 | 105 / 52.5 | 150 / 75.0 | 100 / 50.0 | 120 / 60.0 | 1.050 | yes |");
    expect(text).toContain("- matmul 1024^3: k_000_matmul 32 of [16, 32, 64]");
  });

  it("says no past 10%", () => {
    expect(renderTiles([kase(111, [[16, 100], [32, 120]])]).join("\n")).toContain("| 1.110 | **no** |");
  });

  it("writes nothing for cases without tiles", () => {
    expect(renderTiles([{ ...kase(1, []), ours: { compileMs: 0, instantiateMs: 0, firstStepMs: 0, dispatches: 1 } }])).toEqual([]);
  });
});
