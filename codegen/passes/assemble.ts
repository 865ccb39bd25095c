// Pass 8, assemble: the placed slots and linked phases -> the generated module, with the device
// limits it needs (the runtime refuses an adapter that offers less).
//
// What comes after is outside the compile: codegen/names.ts names the pool kernels,
// codegen/emit.ts writes generated/<program>/module.ts and the pool files, codegen/report.ts
// writes REPORT.md.

import type { Program } from "../../dsl/index";
import type { GeneratedModule, TensorSlot } from "../../format/module";
import type { Linked } from "./link";
import { ALIGN_MIN, type MemoryLayout } from "./plan";
import type { Slot } from "./slots";

export function assembleModule(program: Program, slots: readonly Slot[], layout: MemoryLayout, linked: Linked): GeneratedModule {
  const tensors = slots.map(({ spec }): TensorSlot => ({ ...spec, ...layout.slots.get(spec.name)! }));
  const dispatches = linked.phases.flatMap((p) => p.dispatches);
  return {
    name: program.name,
    config: program.config,
    hyperparameters: program.hyperparameters,
    arenas: layout.arenas,
    tensors,
    constants: layout.constants,
    shaders: linked.shaders,
    phases: linked.phases,
    limits: {
      maxStorageBufferBindingSize: Math.max(ALIGN_MIN, ...dispatches.flatMap((d) => d.bindings.map((b) => b.bytes))),
      maxBufferSize: Math.max(ALIGN_MIN, ...layout.arenas.map((a) => a.bytes)),
      maxStorageBuffersPerShaderStage: Math.max(1, ...dispatches.map((d) => d.bindings.length)),
    },
  };
}
