// The program contract: every shipped program keeps it, and a program that breaks a rule is
// refused with a message naming the tensor or key at fault.

import { describe, expect, it } from "vitest";
import { modules } from "../generated/index";
import type { GeneratedModule, TensorSlot } from "./module";
import { checkEvaluation, checkTrainable, renderContractError } from "./program-contract";

const names = Object.keys(modules).sort();
const load = (name: string) => modules[name]!();

describe("every shipped program keeps its contract", () => {
  it.each(names.filter((n) => !n.startsWith("eval-") && !n.startsWith("parity-")))("training program %s", async (name) => {
    const c = checkTrainable(await load(name));
    expect(c.ok ? "" : renderContractError(c.error)).toBe("");
  });

  it.each(names.filter((n) => n.startsWith("eval-")))("evaluation program %s", async (name) => {
    const c = checkEvaluation(await load(name));
    expect(c.ok ? "" : renderContractError(c.error)).toBe("");
  });
});

/** A module with only the parts the contract reads. */
function fake(tensors: readonly Partial<TensorSlot>[], outputs: readonly string[], config: Record<string, unknown> = { numClasses: 5 }): GeneratedModule {
  return {
    name: "my-net",
    config,
    hyperparameters: [],
    arenas: [],
    tensors: tensors as TensorSlot[],
    constants: [],
    shaders: [],
    phases: [{ name: "step", dispatches: [], copies: [], outputs }],
    limits: { maxStorageBufferBindingSize: 0, maxBufferSize: 0, maxStorageBuffersPerShaderStage: 0 },
  };
}

const input = (name: string, dtype: TensorSlot["dtype"], shape: number[]): Partial<TensorSlot> => ({ name, role: "input", dtype, shape });
const loss = (name: string): Partial<TensorSlot> => ({ name, role: "output", dtype: "f32", shape: [] });
const GOOD = [input("iteration", "i32", []), input("source_image", "f32", [1, 3, 8, 16]), input("source_label", "i32", [1, 8, 16]), input("target_image", "f32", [1, 3, 4, 4]), loss("loss")];

describe("a broken trainable contract is refused by name", () => {
  it("accepts an adaptation step and reports what it found", () => {
    const c = checkTrainable(fake(GOOD, ["loss"]));
    expect(c.ok && c.value).toEqual({
      numClasses: 5,
      source: { image: "source_image", label: "source_label", size: { height: 8, width: 16 } },
      target: { image: "target_image", size: { height: 4, width: 4 } },
      losses: ["loss"],
    });
  });

  const refused = (m: GeneratedModule) => {
    const c = checkTrainable(m);
    return c.ok ? "accepted" : renderContractError(c.error);
  };

  it("names a missing iteration input", () => {
    expect(refused(fake(GOOD.filter((t) => t.name !== "iteration"), ["loss"]))).toMatch(/^program my-net is not a trainable program: no input iteration \(i32 \[\]\)/);
  });

  it("names a label of the wrong size, an unknown input and a non-scalar output together", () => {
    const m = fake([...GOOD.filter((t) => t.name !== "source_label"), input("source_label", "i32", [1, 8, 15]), input("depth", "f32", [1, 1, 8, 16]), { name: "logits", role: "output", dtype: "f32", shape: [1, 5, 8, 16] }], ["loss", "logits"]);
    const text = refused(m);
    expect(text).toContain("input source_label is i32 [1,8,15], expected i32 [1,8,16]");
    expect(text).toContain("input depth is not one the trainer feeds");
    expect(text).toContain("output logits is f32 [1,5,8,16], expected an f32 scalar");
  });

  it("names a bad numClasses and a source image without its label", () => {
    const text = refused(fake(GOOD.filter((t) => t.name !== "source_label"), ["loss"], { numClasses: 0 }));
    expect(text).toContain("config.numClasses is 0, not a positive integer");
    expect(text).toContain("input source_image without source_label");
  });
});

describe("a broken evaluation contract is refused by name", () => {
  it("names logits whose channels disagree with numClasses", () => {
    const m = fake([input("image", "f32", [1, 3, 8, 8]), { name: "logits", role: "output", dtype: "f32", shape: [1, 4, 2, 2] }], ["logits"]);
    const c = checkEvaluation(m);
    expect(c.ok ? "accepted" : renderContractError(c.error)).toMatch(/is not an evaluation program: output logits has 4 channels, but config.numClasses is 5/);
  });

  it("names a missing image input", () => {
    const c = checkEvaluation(fake([{ name: "logits", role: "output", dtype: "f32", shape: [1, 5, 2, 2] }], ["logits"]));
    expect(c.ok ? "accepted" : renderContractError(c.error)).toContain("input image is missing, expected f32 [1,3,H,W]");
  });
});
