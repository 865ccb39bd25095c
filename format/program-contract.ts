// The program contract: what a generated module must expose for the trainer and the evaluator to
// run it. Any network written in the DSL trains and evaluates when its programs keep this contract
// (docs/your-model.md); the trainer checks it when it loads a module and names what is missing.
//
// A trainable program:
//   config.numClasses       a positive integer: the number of classes its logits score;
//   iteration  i32 []       the 0-based iteration: the poly schedule and Adam's step read it;
//   source_image f32 [1,3,H,W] with source_label i32 [1,H,W]   a labelled source domain, and/or
//   target_image f32 [1,3,H,W], with target_label i32 [1,H,W] only when supervised (oracle);
//   no other inputs (nothing would feed them); one phase, whose outputs are f32 scalars (the
//   losses the log records).
// An evaluation program:
//   config.numClasses; one phase; input image f32 [1,3,H,W]; output logits f32 [1,numClasses,h,w]
//   (upsampled to the label size and arg-maxed by the evaluator, as the official protocol does).

import type { GeneratedModule, TensorSlot } from "./module";

/** What the contract finds in a trainable program. */
export interface TrainableContract {
  readonly numClasses: number;
  readonly source?: DomainInputs;
  readonly target?: DomainInputs;
  readonly losses: readonly string[];
}

export interface DomainInputs {
  readonly image: string;
  readonly label?: string;
  readonly size: { readonly height: number; readonly width: number };
}

/** What the contract finds in an evaluation program. */
export interface EvaluationContract {
  readonly numClasses: number;
  readonly size: { readonly height: number; readonly width: number };
  readonly logits: { readonly classes: number; readonly height: number; readonly width: number };
}

/** A broken contract: the program and every rule it breaks, each naming the tensor or key. */
export interface ContractError {
  readonly program: string;
  readonly kind: "trainable" | "evaluation";
  readonly problems: readonly string[];
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ContractError };

const TRAIN_INPUTS = ["iteration", "source_image", "source_label", "target_image", "target_label"] as const;

const show = (t: Pick<TensorSlot, "dtype" | "shape">) => `${t.dtype} [${t.shape.join(",")}]`;

function inputsOf(m: GeneratedModule): Map<string, TensorSlot> {
  return new Map(m.tensors.filter((t) => t.role === "input").map((t) => [t.name, t]));
}

/** config.numClasses, or the problem with it. */
function numClassesOf(m: GeneratedModule, problems: string[]): number {
  const n = m.config["numClasses"];
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    problems.push(`config.numClasses is ${JSON.stringify(n)}, not a positive integer (the number of classes the logits score)`);
    return 0;
  }
  return n;
}

/** An image input [1,3,H,W] f32 and its optional label [1,H,W] i32 of the same size. */
function domainOf(inputs: Map<string, TensorSlot>, side: "source" | "target", problems: string[]): DomainInputs | undefined {
  const image = inputs.get(`${side}_image`);
  const label = inputs.get(`${side}_label`);
  if (image === undefined) {
    if (label !== undefined) problems.push(`input ${side}_label without ${side}_image`);
    return undefined;
  }
  const [n, c, height, width] = image.shape;
  if (image.dtype !== "f32" || image.shape.length !== 4 || n !== 1 || c !== 3) {
    problems.push(`input ${side}_image is ${show(image)}, expected f32 [1,3,H,W] (one RGB image, NCHW)`);
    return undefined;
  }
  const size = { height: height!, width: width! };
  if (label === undefined) return { image: image.name, size };
  const expected = [1, height, width];
  if (label.dtype !== "i32" || label.shape.length !== 3 || label.shape.some((d, i) => d !== expected[i])) {
    problems.push(`input ${side}_label is ${show(label)}, expected i32 [${expected.join(",")}] (the class index of each pixel of ${side}_image)`);
  }
  return { image: image.name, label: label.name, size };
}

const fail = <T>(m: GeneratedModule, kind: ContractError["kind"], problems: string[]): Checked<T> => ({
  ok: false,
  error: { program: m.name, kind, problems },
});

/** Checks the trainable-program contract (file comment), listing every problem at once. */
export function checkTrainable(m: GeneratedModule): Checked<TrainableContract> {
  const problems: string[] = [];
  const numClasses = numClassesOf(m, problems);
  const inputs = inputsOf(m);
  const iteration = inputs.get("iteration");
  if (iteration === undefined) problems.push("no input iteration (i32 []), the 0-based iteration the learning-rate schedule reads");
  else if (iteration.dtype !== "i32" || iteration.shape.length !== 0) problems.push(`input iteration is ${show(iteration)}, expected i32 []`);
  const source = domainOf(inputs, "source", problems);
  const target = domainOf(inputs, "target", problems);
  if (!inputs.has("source_image") && !inputs.has("target_image")) problems.push("no input source_image or target_image: nothing to train on");
  if (source !== undefined && source.label === undefined) problems.push("input source_image without source_label: the source domain is the labelled one");
  for (const name of inputs.keys()) {
    if (!(TRAIN_INPUTS as readonly string[]).includes(name)) problems.push(`input ${name} is not one the trainer feeds (${TRAIN_INPUTS.join(", ")})`);
  }
  if (m.phases.length !== 1) problems.push(`${m.phases.length} phases, expected one (the training step)`);
  const outputs = m.phases[0]?.outputs ?? [];
  const losses: string[] = [];
  for (const name of outputs) {
    const t = m.tensors.find((s) => s.name === name);
    if (t === undefined || t.dtype !== "f32" || t.shape.length !== 0) problems.push(`output ${name} is ${t ? show(t) : "missing"}, expected an f32 scalar (a loss)`);
    else losses.push(name);
  }
  if (outputs.length === 0) problems.push("no outputs: a training step reports at least one loss");
  if (problems.length > 0) return fail(m, "trainable", problems);
  return { ok: true, value: { numClasses, ...(source ? { source } : {}), ...(target ? { target } : {}), losses } };
}

/** Checks the evaluation-program contract (file comment), listing every problem at once. */
export function checkEvaluation(m: GeneratedModule): Checked<EvaluationContract> {
  const problems: string[] = [];
  const numClasses = numClassesOf(m, problems);
  const image = inputsOf(m).get("image");
  const logits = m.tensors.find((t) => t.name === "logits" && t.role === "output");
  if (m.phases.length !== 1) problems.push(`${m.phases.length} phases, expected one (the prediction)`);
  if (image === undefined || image.dtype !== "f32" || image.shape.length !== 4 || image.shape[0] !== 1 || image.shape[1] !== 3) {
    problems.push(`input image is ${image ? show(image) : "missing"}, expected f32 [1,3,H,W]`);
  }
  if (logits === undefined || logits.dtype !== "f32" || logits.shape.length !== 4 || logits.shape[0] !== 1) {
    problems.push(`output logits is ${logits ? show(logits) : "missing"}, expected f32 [1,numClasses,h,w]`);
  } else if (numClasses > 0 && logits.shape[1] !== numClasses) {
    problems.push(`output logits has ${logits.shape[1]} channels, but config.numClasses is ${numClasses}`);
  }
  if (problems.length > 0 || image === undefined || logits === undefined) return fail(m, "evaluation", problems);
  const [, , height, width] = image.shape as [number, number, number, number];
  const [, classes, lh, lw] = logits.shape as [number, number, number, number];
  return { ok: true, value: { numClasses, size: { height, width }, logits: { classes, height: lh, width: lw } } };
}

/** One message naming the program and every broken rule, with where the contract is written. */
export function renderContractError(e: ContractError): string {
  const what = e.kind === "trainable" ? "a trainable program" : "an evaluation program";
  return `program ${e.program} is not ${what}: ${e.problems.join("; ")} (the program contract: format/program-contract.ts, docs/your-model.md)`;
}
