// One training iteration as the trainer runs it, and the facts about a program it needs, with no
// Node module: the Node trainer (trainer.ts) and the browser page run the same code.
//
// Per iteration the host writes the iteration number (the poly schedule and Adam's step count
// are computed in the program from it), each domain's next image (and label, when the program
// takes one), and submits one step. Nothing is read back here: reading is the caller's choice.

import * as E from "fp-ts/lib/Either.js";
import type { ClassTable } from "../datasets/class-table.js";
import { protocolByClassCount } from "../datasets/classes.js";
import type { Sample } from "../datasets/sample.js";
import type { GeneratedModule } from "../format/module.js";
import type { Instance } from "../runtime/runner.js";
import { trainError, type TrainError } from "./errors.js";

export interface Inputs {
  readonly source?: { readonly image: string; readonly label?: string; readonly size: { width: number; height: number } };
  readonly target?: { readonly image: string; readonly label?: string; readonly size: { width: number; height: number } };
  readonly iteration?: string;
}

/** Which datasets the program reads: its input slots say (source_*, target_*, iteration). */
export function programInputs(module: GeneratedModule): Inputs {
  const slot = (name: string) => module.tensors.find((t) => t.role === "input" && t.name === name);
  const side = (prefix: "source" | "target") => {
    const image = slot(`${prefix}_image`);
    if (image === undefined) return undefined;
    const [, , height, width] = image.shape as [number, number, number, number];
    return { image: image.name, size: { width, height }, ...(slot(`${prefix}_label`) ? { label: `${prefix}_label` } : {}) };
  };
  const source = side("source");
  const target = side("target");
  return { ...(source ? { source } : {}), ...(target ? { target } : {}), ...(slot("iteration") ? { iteration: "iteration" } : {}) };
}

/** The label input of a sample loaded with labels: class indices as i32 (255 = ignore). */
export function labelInput(sample: Sample): Int32Array {
  if (sample.label === undefined) throw new Error(`invariant: sample ${sample.name} was loaded with labels`);
  return Int32Array.from(sample.label);
}

/** The samples of one iteration, by domain (only those the program reads). */
export interface IterationSamples {
  readonly source?: Sample;
  readonly target?: Sample;
}

/** Writes iteration `it`'s inputs and submits its step (no wait: the next read-back waits). */
export function runIteration(instance: Instance, inputs: Inputs, it: number, samples: IterationSamples): void {
  if (inputs.iteration !== undefined) instance.write(inputs.iteration, Int32Array.of(it));
  for (const side of ["source", "target"] as const) {
    const slots = inputs[side];
    const s = samples[side];
    if (slots === undefined || s === undefined) continue;
    instance.write(slots.image, s.image);
    if (slots.label !== undefined) instance.write(slots.label, labelInput(s));
  }
  instance.step(1);
}

/** The program's scalar outputs: its losses, read back every logEvery iterations. */
export function lossNames(module: GeneratedModule): string[] {
  return module.phases.flatMap((p) => p.outputs).filter((n) => module.tensors.some((t) => t.name === n && t.shape.length === 0));
}

/** Whether every value is finite (integer tensors always are). */
export function allFinite(data: ArrayLike<number>): boolean {
  if (!(data instanceof Float32Array)) return true;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return false;
  return true;
}

/** The larger of every limit the modules need: one device serves them all. */
export function combinedNeeds(modules: readonly GeneratedModule[]): GeneratedModule["limits"] {
  const max = (k: keyof GeneratedModule["limits"]) => Math.max(...modules.map((m) => m.limits[k]));
  return {
    maxStorageBufferBindingSize: max("maxStorageBufferBindingSize"),
    maxBufferSize: max("maxBufferSize"),
    maxStorageBuffersPerShaderStage: max("maxStorageBuffersPerShaderStage"),
  };
}

/** The poly learning rate at iteration i of a run's values (config and hyperparameters; for the log, the program computes its own). */
export function polyLearningRate(values: Readonly<Record<string, unknown>>, i: number): number {
  const base = Number(values["learningRate"] ?? Number.NaN);
  const steps = Number(values["numSteps"] ?? Number.NaN);
  const power = Number(values["power"] ?? 0.9);
  return base * Math.max(0, 1 - i / steps) ** power;
}

/**
 * The classes a program trains and is scored on: the user's table when one is given (its class
 * count must be the program's, or logits and labels would disagree on what index k means), else
 * the built-in protocol of the program's class count (19, 16 or 13).
 */
export function protocolOf(module: GeneratedModule, classes?: ClassTable): E.Either<TrainError, ClassTable> {
  const n = Number(module.config["numClasses"]);
  if (classes !== undefined) {
    return classes.numClasses === n
      ? E.right(classes)
      : E.left(trainError("options", `--classes ${classes.id} lists ${classes.numClasses} classes but program ${module.name} has numClasses ${n}; give a table of ${n} classes or a program compiled for ${classes.numClasses}`));
  }
  const p = protocolByClassCount(n);
  return p === undefined
    ? E.left(trainError("program", `${module.name}: no built-in evaluation protocol for ${n} classes (19, 16 or 13); give the program's class table with --classes FILE.json`))
    : E.right(p);
}
