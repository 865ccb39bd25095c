// Our side of one training-step configuration, in its own process (spawned by bench/step.ts),
// so that its peak RSS is its own: on lavapipe the "GPU" buffers are host memory, and the
// figure would otherwise include whatever ran before in the runner (TF.js, other configs).
// Requests (bench/peer.ts): setup {case}, time {reps}, profile, rss.

import * as E from "fp-ts/lib/Either.js";
import { buildTrainStep } from "../examples/adaptsegnet/train";
import { describeAdapter } from "../runtime/device";
import type { TensorSlot } from "../format/module";
import { PRECISE_TIMESTAMPS, acquireNodeDevice } from "../runtime/node-gpu";
import type { TensorInput } from "../runtime/runner";
import { initialValue } from "../format/init";
import { STEP_CASES } from "./cases";
import { OursContender, randomData } from "./ours";
import { servePeer } from "./peer";
import { byTemplate } from "./results";

/** Images on the scale of mean-subtracted 0-255 pixels; labels with a band of ignored pixels. */
function stepInput(slot: TensorSlot, ignoreLabel: number, classes: number): TensorInput {
  const n = slot.bytes / 4;
  if (slot.dtype === "i32" && slot.name.endsWith("label")) {
    const labels = new Int32Array(n);
    const noise = randomData(n, 11);
    const band = Math.floor(n / 8);
    for (let i = 0; i < n; i++) labels[i] = i < band ? ignoreLabel : Math.floor(((noise[i]! + 1) / 2) * classes) % classes;
    return labels;
  }
  if (slot.dtype === "i32") return new Int32Array(n); // the iteration number: 0
  return randomData(n, slot.name.length, 50);
}

let ours: OursContender | undefined;

servePeer(async (req) => {
  switch (req["cmd"]) {
    case "setup": {
      const c = STEP_CASES.find((s) => s.name === req["case"]);
      if (c === undefined) throw new Error(`no step case ${String(req["case"])}`);
      const cfg = c.config();
      // The limits that size buffers are requested at the adapter's maxima whatever we ask for;
      // instantiate() checks the module against what the device then has.
      const acquired = await acquireNodeDevice({ maxBufferSize: 1 << 20, maxStorageBufferBindingSize: 1 << 20, maxStorageBuffersPerShaderStage: 8 }, [PRECISE_TIMESTAMPS])();
      if (E.isLeft(acquired)) throw new Error(acquired.left.message);
      ours = new OursContender(
        acquired.right,
        () => (c.other ? c.other.build() : buildTrainStep(`bench-${c.name}`, cfg)),
        (compiled) =>
          new Map(
            compiled.module.tensors.flatMap((t): [string, TensorInput][] => {
              if (t.role === "input") return [[t.name, stepInput(t, cfg.ignoreLabel, cfg.numClasses)]];
              if (t.role === "param" || t.role === "state") return [[t.name, initialValue(t, 1)]];
              return [];
            }),
          ),
        { targetMs: Number(req["target_ms"] ?? 500), maxReps: 20 },
      );
      const { reps } = await ours.prepare();
      const compiled = ours.compiled!;
      return {
        reps,
        adapter: describeAdapter(acquired.right.info),
        adapterClass: acquired.right.adapterClass,
        compileMs: ours.compileMs,
        instantiateMs: ours.instantiateMs,
        firstStepMs: ours.firstStepMs,
        dispatches: compiled.kernels.length,
        shaders: compiled.module.shaders.length,
        flops: compiled.kernels.reduce((s, k) => s + k.stage.flops, 0),
        persistentBytes: compiled.persistentBytes,
        scratchPeakBytes: Math.max(0, ...compiled.memory.map((m) => m.plan.peak)),
        scratchLowerBoundBytes: Math.max(0, ...compiled.memory.map((m) => m.plan.lowerBound)),
      };
    }
    case "time": {
      const s = await ours!.run(Number(req["reps"] ?? 1));
      return { ms: s.ms, cpu_ms: s.cpuMs };
    }
    case "profile": {
      await ours!.finish();
      const p = ours!.profiled;
      if (p === undefined) return { gpuMs: null };
      return { gpuMs: p.reduce((s, k) => s + k.ms, 0), templates: byTemplate(p), top: [...p].sort((a, b) => b.ms - a.ms).slice(0, 20) };
    }
    case "rss":
      return { max_rss_kib: process.resourceUsage().maxRSS };
    default:
      throw new Error(`unknown command ${String(req["cmd"])}`);
  }
});
