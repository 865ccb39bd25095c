// compileProgram is a function of the program: building the same program twice from scratch
// (fresh nodes, so different node ids, in the same process) and compiling each gives
// byte-identical emitted modules. `npm run codegen -- --check` and reviewable diffs of
// generated/ depend on it.

import { describe, expect, it } from "vitest";
import type { Program } from "../dsl/index";
import { configFor } from "../examples/adaptsegnet/presets";
import { buildTrainStep } from "../examples/adaptsegnet/train";
import { compileProgram } from "./compile";
import { emitModule } from "./emit";
import { bottleneckProgram, discriminatorProgram } from "./testing/blocks";

function emittedTwice(build: () => Program): [string, string] {
  const first = emitModule(compileProgram(build()), "test");
  const second = emitModule(compileProgram(build()), "test");
  return [first, second];
}

/** undefined when equal; else the first line that differs, from both texts. */
function firstDifference(a: string, b: string): string | undefined {
  if (a === b) return undefined;
  const [la, lb] = [a.split("\n"), b.split("\n")];
  const i = la.findIndex((line, k) => line !== lb[k]);
  const at = i < 0 ? la.length : i;
  return `line ${at + 1}: ${JSON.stringify(la[at])} vs ${JSON.stringify(lb[at])}`;
}

/** A small multi-level AdaptSegNet step: every template, resize tables, several optimizers. */
const smallMultiLevel = () =>
  buildTrainStep(
    "small-multi-level",
    configFor("multi-level", "cpu-demo", {
      sourceSize: [33, 35],
      targetSize: [33, 37],
      numClasses: 3,
      ndf: 2,
      network: { blocks: [1, 1, 1, 1], width: 2, asppBranches: 2 },
    }),
  );

describe("compileProgram is deterministic", () => {
  it("a multi-level training step built twice emits byte-identical modules", () => {
    const [a, b] = emittedTwice(smallMultiLevel);
    expect(a.length).toBeGreaterThan(0);
    expect(firstDifference(a, b)).toBeUndefined();
  });

  it("the bottleneck (train-mode BN) and discriminator steps built twice emit byte-identical modules", () => {
    for (const build of [() => bottleneckProgram("train"), discriminatorProgram]) {
      const [a, b] = emittedTwice(build);
      expect(firstDifference(a, b)).toBeUndefined();
    }
  });
});
