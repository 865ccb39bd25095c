// From a DSL program to a generated module: a chain of small typed passes, each a function from
// one value to the next (codegen/passes/). Per phase:
//
//   Phase -canonicalise-> CanonicalPhase -schedule-> ScheduledPhase -fuse-> FusedPhase
//         -lower-> LoweredPhase -lifetimes-> ResidentPhase
//
// then for the program: ResidentPhase[] -plan-> MemoryLayout -link-> Linked -assemble->
// GeneratedModule. docs/architecture.md draws the whole pipeline. A pass that can fail on the
// user's program returns Either<CompileError, _> (codegen/compile-error.ts); `tryCompileProgram`
// is the chain, `compileProgram` the same for callers whose programs are known to compile.

import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { Phase, Program } from "../dsl/index";
import type { GeneratedModule } from "../format/module";
import { type CompileError, CompileFailed, tryBuildProgram } from "./compile-error";
import { assembleModule } from "./passes/assemble";
import { canonicalisePhase } from "./passes/canonicalise";
import { fusePhase } from "./passes/fuse";
import { type ResidentPhase, phaseLifetimes } from "./passes/lifetimes";
import { linkPhases, type KernelRecord } from "./passes/link";
import { type BindingLimits, lowerPhase } from "./passes/lower";
import { type PhaseMemory, planLayout } from "./passes/plan";
import { schedulePhase } from "./passes/schedule";
import { type Slot, declareSlots } from "./passes/slots";
import { describe } from "./wgsl/kernel";

export type { CompileError } from "./compile-error";
export { CompileFailed, renderCompileError } from "./compile-error";
export type { KernelRecord } from "./passes/link";
export type { PhaseMemory } from "./passes/plan";

export interface CompileOptions {
  /** Bytes per arena (one GPUBuffer). Default 1 GiB: within every adapter's maxBufferSize we target. */
  readonly arenaBytes?: number;
  /**
   * The largest binding allowed. Default: the arena size. A module records the largest binding
   * it uses in `limits`; the runtime refuses an adapter that offers less (lavapipe offers
   * 128 MiB, enough for the CPU presets; the paper presets' full-resolution activations need a
   * GPU's larger limit).
   */
  readonly maxBindingBytes?: number;
  /** The most storage buffers one kernel may bind (WebGPU's default is 8; adapters offer more). */
  readonly maxBindings?: number;
}

export interface Compiled {
  readonly module: GeneratedModule;
  /** Every dispatch, in module order (parallel to the phases' dispatches). */
  readonly kernels: readonly KernelRecord[];
  readonly memory: readonly PhaseMemory[];
  readonly persistentBytes: number;
}

/** Passes 1-4 of one phase: canonicalise, schedule, fuse, lower. */
const lowerOnePhase = (program: string, limits: BindingLimits) => (phase: Phase) =>
  pipe(phase, canonicalisePhase, schedulePhase, fusePhase, lowerPhase(program, limits));

/**
 * Pass 5 over the phases in order: each phase's outputs become slots the next phases see (an
 * output name is taken once per program).
 */
function residentPhases(program: Program, limits: BindingLimits): E.Either<CompileError, { slots: readonly Slot[]; phases: readonly ResidentPhase[] }> {
  const start = E.right<CompileError, { slots: readonly Slot[]; phases: readonly ResidentPhase[] }>({ slots: declareSlots(program), phases: [] });
  return program.phases.reduce(
    (acc, phase) =>
      pipe(
        acc,
        E.chain(({ slots, phases }) =>
          pipe(
            lowerOnePhase(program.name, limits)(phase),
            E.chain(phaseLifetimes(program.name, slots)),
            E.map((resident) => ({ slots: [...slots, ...resident.outputSlots], phases: [...phases, resident] })),
          ),
        ),
      ),
    start,
  );
}

/** The whole chain; a program that cannot be compiled gives the first error found. */
export function tryCompileProgram(program: Program, opts: CompileOptions = {}): E.Either<CompileError, Compiled> {
  const arenaBytes = opts.arenaBytes ?? 1 << 30;
  const limits: BindingLimits = { maxBindings: opts.maxBindings ?? 16, maxBindingBytes: opts.maxBindingBytes ?? arenaBytes };
  return pipe(
    residentPhases(program, limits),
    E.chain(({ slots, phases }) =>
      pipe(
        planLayout(program.name, arenaBytes)(slots, phases),
        E.map((layout) => {
          const linked = linkPhases(phases, layout);
          return { module: assembleModule(program, slots, layout, linked), kernels: linked.kernels, memory: layout.scratch, persistentBytes: layout.persistentBytes };
        }),
      ),
    ),
  );
}

/** Builds an exported program and compiles it: a DSL error while building is a value too. */
export function tryCompileExport(exported: { readonly name: string; build(): Program }, opts: CompileOptions = {}): E.Either<CompileError, Compiled> {
  return pipe(
    tryBuildProgram(exported),
    E.chain((program) => tryCompileProgram(program, opts)),
  );
}

/** tryCompileProgram for programs known to compile (tests, scripts): a failure throws CompileFailed. */
export function compileProgram(program: Program, opts: CompileOptions = {}): Compiled {
  return pipe(
    tryCompileProgram(program, opts),
    E.getOrElseW((error) => {
      throw new CompileFailed(error);
    }),
  );
}

export { describe };
