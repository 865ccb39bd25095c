// AdaptSegNet's building blocks through generated code: a DeepLab-v2 bottleneck (in both BN
// modes) with an SGD step, and an FCDiscriminator with a BCE loss and an Adam step, each run
// on lavapipe and compared with the float32 interpreter: every phase output and every
// parameter and piece of state after one step (params, momentum buffers, Adam moments, BN
// running statistics). Programs: codegen/testing/blocks.ts.
//
// Tolerances: outputs rtol 1e-4 / atol 1e-5 (convolutions of <= 72 terms, BN over 30
// values); state rtol 1e-3 / atol 1e-4, because updates carry weight-gradients, sums over
// every output position computed in another order than the interpreter's (as in
// codegen/differential.conv.test.ts).

import { describe, expect, it } from "vitest";
import { bottleneckProgram, discriminatorProgram } from "../../codegen/testing/blocks";
import { type Tolerance, differential, randomData, randomState, rng } from "../../codegen/testing/differential";
import type { Program } from "../../dsl/index";

const OUTPUT: Tolerance = { rtol: 1e-4, atol: 1e-5 };
const STATE: Tolerance = { rtol: 1e-3, atol: 1e-4 };

async function expectStepAgrees(p: Program, seed: number) {
  const state = randomState(p, rng(seed), 0.5);
  const data = randomData(p, rng(seed + 1));
  const outputs = new Set(p.phases.flatMap((ph) => Object.keys(ph.outputs)));
  const res = await differential(p, state, data, (name) => (outputs.has(name) ? OUTPUT : STATE));
  expect(res.mismatches).toEqual([]);
  // The step changed every trainable parameter (the comparison is not vacuous).
  for (const e of p.params.filter((e) => e.spec.kind === "param" && e.spec.trainable)) {
    expect(Array.from(res.gpu.state.get(e.name)!), e.name).not.toEqual(Array.from(state.get(e.name)!));
  }
}

describe("a DeepLab-v2 bottleneck (stride 2, downsample branch) through generated code", () => {
  it("eval-mode BN: forward, loss, backward and an SGD step agree with the interpreter", async () => {
    await expectStepAgrees(bottleneckProgram("eval"), 81);
  });

  it("train-mode BN: forward with batch statistics, backward, SGD step and running statistics agree", async () => {
    await expectStepAgrees(bottleneckProgram("train"), 82);
  });
});

describe("an FCDiscriminator through generated code", () => {
  it("forward, BCE loss, backward and an Adam step agree with the interpreter", async () => {
    await expectStepAgrees(discriminatorProgram(), 83);
  });
});
