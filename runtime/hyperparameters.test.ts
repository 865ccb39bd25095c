// The hyper slot of a generated module (hyperparameters.ts): overrides are resolved against the
// declared names, and instantiate() writes the defaults, so an instance nobody configures
// computes what the program was built with.

import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileProgram } from "../codegen/compile";
import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import type { AcquiredDevice } from "./device.js";
import { hyperSlot, hyperVector, resolveHyperparameters } from "./hyperparameters.js";
import type { GeneratedModule } from "../format/module.js";
import { instantiate } from "./runner.js";
import { testDevice } from "../testing/gpu.js";

/** y = a x + b over 4 elements, a and b hyperparameters with defaults 2 and 0.5. */
function affineModule(): GeneratedModule {
  const h = d.hyperparameters({ a: 2, b: 0.5 });
  const x = d.input("x", [4], "f32") as F32<1>;
  const y = d.add(d.mul(x, h.values.a), h.values.b);
  return compileProgram(d.defineProgram({ name: "affine", params: [], phases: [{ name: "f", outputs: { y }, updates: {} }], hyperparameters: h })).module;
}

const left = <L, R>(e: E.Either<L, R>): L => {
  if (E.isRight(e)) throw new Error(`expected Left, got ${JSON.stringify(e.right)}`);
  return e.left;
};

describe("resolveHyperparameters and hyperVector", () => {
  const module = affineModule();

  it("without overrides: the declared defaults, in vector order", () => {
    expect(resolveHyperparameters(module, {})).toEqual(E.right([{ name: "a", value: 2 }, { name: "b", value: 0.5 }]));
    expect(hyperVector(module)).toEqual(E.right(Float32Array.of(2, 0.5)));
  });

  it("an override replaces its element only", () => {
    expect(hyperVector(module, { b: -3 })).toEqual(E.right(Float32Array.of(2, -3)));
  });

  it("refuses a name the module does not declare, listing those it does", () => {
    expect(left(hyperVector(module, { lambdaSeg: 0.1 }))).toBe("program affine has no hyperparameter lambdaSeg; its hyperparameters are a, b");
  });

  it("refuses a value that is not a finite number, naming the hyperparameter", () => {
    expect(left(hyperVector(module, { a: Number.NaN }))).toBe("hyperparameter a must be a finite number, got NaN");
    expect(left(hyperVector(module, { b: Number.POSITIVE_INFINITY }))).toBe("hyperparameter b must be a finite number, got Infinity");
  });

  it("a module without hyperparameters accepts no override", () => {
    const none: GeneratedModule = { ...module, hyperparameters: [], tensors: module.tensors.filter((t) => t.role !== "hyper") };
    expect(hyperVector(none)).toEqual(E.right(new Float32Array(0)));
    expect(left(hyperVector(none, { a: 1 }))).toBe("program affine has no hyperparameter a; it has none");
  });

  it("the hyper slot must hold one f32 element per declared hyperparameter", () => {
    expect(E.isRight(hyperSlot(module))).toBe(true);
    const short: GeneratedModule = { ...module, hyperparameters: [...module.hyperparameters, { name: "c", value: 1 }] };
    expect(left(hyperSlot(short))).toContain("is f32 [2], not f32 [3]");
    const noSlot: GeneratedModule = { ...module, tensors: module.tensors.filter((t) => t.role !== "hyper") };
    expect(left(hyperSlot(noSlot))).toBe(`module 'affine' declares 2 hyperparameters but has no "hyper" slot`);
  });
});

describe("instantiate writes the defaults", () => {
  let gpu: AcquiredDevice;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu.device.destroy());

  it("an instance nobody configures computes with the defaults; a written vector replaces them", async () => {
    const module = affineModule();
    const made = await instantiate(gpu.device, module, gpu.adapterClass);
    if (E.isLeft(made)) throw new Error(made.left.message);
    const instance = made.right;
    try {
      instance.write("x", [1, 2, 3, 4]);
      instance.step();
      expect(Array.from(await instance.read("y"))).toEqual([2.5, 4.5, 6.5, 8.5]);
      instance.write("hyperparameters", E.getOrElseW(() => [])(hyperVector(module, { a: -1 })));
      instance.step();
      expect(Array.from(await instance.read("y"))).toEqual([-0.5, -1.5, -2.5, -3.5]);
    } finally {
      instance.destroy();
    }
  });

  it("refuses a module whose hyper slot does not match its declaration", async () => {
    const module = affineModule();
    const made = await instantiate(gpu.device, { ...module, hyperparameters: [] }, gpu.adapterClass);
    expect(E.isLeft(made) && made.left).toEqual({ kind: "module", message: `module 'affine' has a "hyper" slot but declares no hyperparameters` });
  });
});
