// A toy two-phase adversarial step, built, differentiated and evaluated in the interpreter: a
// generator phase (segmentation loss + adversarial loss through a frozen discriminator, SGD on
// G only), then a discriminator phase on detached predictions (Adam on D only) that sees the
// generator phase's updates.

import { describe, expect, it } from "vitest";
import * as d from "./index";
import * as losses from "./losses";
import * as nn from "./nn";
import * as optim from "./optim";

function toyGan() {
  const G = d.declareModel("G", { head: nn.convSpec(3, 2, 1, { bias: true, init: d.normal(0.5) }) });
  const D = d.declareModel("D", { conv1: nn.convSpec(4, 3, 3, { bias: true }), classifier: nn.convSpec(1, 4, 3, { bias: true }) });
  const src = d.input("source", [1, 2, 5, 5], "f32");
  const labels = d.input("labels", [1, 5, 5], "i32");
  const tgt = d.input("target", [1, 2, 5, 5], "f32");
  const disc = (p: d.F32<4>) => nn.conv(d.leakyRelu(nn.conv(p, D.p.conv1, { padding: 1 }), 0.2), D.p.classifier, { padding: 1 });
  const predS = nn.conv(src, G.p.head);
  const predT = nn.conv(tgt, G.p.head);

  // Phase 1: D is frozen (only G's gradients are taken); the target should look like source (0).
  const lossSeg = losses.crossEntropy(predS, labels);
  const lossAdv = losses.bceWithLogits(disc(d.softmax(predT, 1)), 0);
  const lossG = d.add(lossSeg, d.mul(lossAdv, 0.1));
  const gParams = d.trainable(G.entries);
  const gGrads = d.grad(lossG, gParams.map((e) => e.tensor));
  const sgd = optim.sgd("sgd_G", gParams.map((entry, i) => ({ entry, grad: gGrads[i]! })), {
    lr: () => d.scalar(0.5),
    momentum: 0.9,
    weightDecay: 5e-4,
  });

  // Phase 2: D on detached predictions, source 0 and target 1, each halved.
  const lossD = d.add(
    d.mul(losses.bceWithLogits(disc(d.softmax(d.stopGradient(predS), 1)), 0), 0.5),
    d.mul(losses.bceWithLogits(disc(d.softmax(d.stopGradient(predT), 1)), 1), 0.5),
  );
  const dParams = d.trainable(D.entries);
  const dGrads = d.grad(lossD, dParams.map((e) => e.tensor));
  const adam = optim.adam("adam_D", dParams.map((entry, i) => ({ entry, grad: dGrads[i]! })), {
    lr: d.scalar(0.01),
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    step: d.scalar(1),
  });
  const program = d.defineProgram({
    name: "toy-gan",
    params: [...G.entries, ...D.entries, ...sgd.state, ...adam.state],
    phases: [
      { name: "generator", outputs: { lossG, lossSeg, lossAdv }, updates: sgd.updates },
      { name: "discriminator", outputs: { lossD }, updates: adam.updates },
    ],
  });
  return { program, G, D, lossG, lossD, predS };
}

const data = new Map<string, number[]>([
  ["source", Array.from({ length: 50 }, (_, i) => Math.sin(i * 0.7))],
  ["target", Array.from({ length: 50 }, (_, i) => Math.cos(i * 0.3) * 2)],
  ["labels", Array.from({ length: 25 }, (_, i) => (i % 7 === 0 ? 255 : i % 3))],
]);

describe("a toy two-phase adversarial step in the interpreter", () => {
  it("takes no gradient into D from the generator loss and none into G from the detached D loss", () => {
    const { G, D, lossG, lossD } = toyGan();
    // G's loss depends on D's weights (the frozen discriminator), but the program only asks for G's.
    expect(d.dependsOn(lossG, D.p.conv1.weight)).toBe(true);
    for (const e of d.trainable(G.entries)) expect(d.dependsOn(lossD, e.tensor)).toBe(false);
  });

  it("runs both phases: phase 1 changes only G, phase 2 changes only D and sees G's new values", () => {
    const { program, G, D, predS } = toyGan();
    const state = d.initialValues(program.params, 7) as d.StateValues;
    const { outputs, state: after } = d.runProgram(program, state, data);
    const changed = (name: string) => {
      const a = state.get(name)!;
      const b = after.get(name)!;
      return a.some((v, i) => v !== b[i]);
    };
    for (const e of G.entries) expect(changed(e.name)).toBe(true);
    for (const e of D.entries) expect(changed(e.name)).toBe(true);
    // Phase 2's loss, recomputed by hand from G after phase 1 and D before phase 2.
    const midState = new Map(state);
    for (const e of G.entries) midState.set(e.name, after.get(e.name)!);
    const lossDNode = program.phases[1]!.outputs.lossD!;
    const expected = d.evaluateScalar(lossDNode, new Map<string, ArrayLike<number>>([...midState, ...data]));
    const withOldG = d.evaluateScalar(lossDNode, new Map<string, ArrayLike<number>>([...state, ...data]));
    expect(outputs[1]!.lossD!.data[0]).toBeCloseTo(expected, 12);
    expect(Math.abs(expected - withOldG)).toBeGreaterThan(1e-6);
    expect(predS.shape).toEqual([1, 3, 5, 5]);
  });

  it("its gradients agree with central finite differences", () => {
    const { program, G, D, lossG, lossD } = toyGan();
    const state = d.initialValues(program.params, 3) as d.StateValues;
    const feeds = new Map<string, ArrayLike<number>>([...state, ...data]);
    const check = (loss: d.F32<0>, entry: d.ParamEntry) => {
      const [g] = d.evaluate(d.grad(loss, [entry.tensor]), feeds);
      const base = Float64Array.from(state.get(entry.name)!);
      const h = 1e-6;
      for (const i of [0, base.length - 1]) {
        const at = (delta: number) => {
          const v = Float64Array.from(base);
          v[i]! += delta;
          return d.evaluateScalar(loss, new Map([...feeds, [entry.name, v]]));
        };
        const numeric = (at(h) - at(-h)) / (2 * h);
        expect(Math.abs(g!.data[i]! - numeric)).toBeLessThan(1e-6 + 1e-4 * Math.abs(numeric));
      }
    };
    check(lossG, G.entries.find((e) => e.key === "head.weight")!);
    check(lossD, D.entries.find((e) => e.key === "conv1.weight")!);
    check(lossD, D.entries.find((e) => e.key === "classifier.bias")!);
  });
});
