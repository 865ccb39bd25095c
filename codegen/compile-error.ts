// What can go wrong between a user's program and its generated module, as values.
//
// A program can fail to build (a shape that does not fit: the DSL's ShapeError, or a program
// that is not well formed: ProgramError), or build and still not compile (an op no template
// lowers, a kernel over a binding limit, two outputs with one name, a tensor larger than an
// arena). Both are the user's to fix, so they are values naming the program and, where there
// is one, the node (op, number in its phase's schedule, DSL scope) and are rendered as one
// line at the edge (codegen/main.ts). Broken invariants inside the compiler still throw.

import * as E from "fp-ts/lib/Either.js";
import { type DslError, type Program, type Tensor, ShapeError, tryBuild } from "../dsl/index";

/** A node of the program, as a user finds it: op, number (as kernel headers write it), scope. */
export interface NodeRef {
  readonly op: string;
  /** The node's position in its phase's schedule (the `#n` of kernel headers and REPORTs). */
  readonly id: number;
  /** The DSL scope it was built under, e.g. `layer3.7.conv2` (empty at the top level). */
  readonly scope: string;
}

export type CompileError =
  /** The program's build function threw a DSL error (ShapeError, ProgramError). */
  | { readonly kind: "build"; readonly program: string; readonly op: string | undefined; readonly message: string }
  /** No template lowers this node, or its template refused it. */
  | {
      readonly kind: "lowering";
      readonly program: string;
      readonly phase: string;
      readonly node: NodeRef;
      readonly message: string;
      /** What the template threw, kept for its stack (not rendered). */
      readonly cause?: unknown;
    }
  /** A kernel needs more than a device limit the options allow (bindings, binding bytes). */
  | { readonly kind: "limit"; readonly program: string; readonly phase: string; readonly node: NodeRef; readonly kernel: string; readonly message: string }
  /** Phase outputs and updates that cannot all have their persistent slots. */
  | { readonly kind: "slot"; readonly program: string; readonly phase: string; readonly node: NodeRef | undefined; readonly message: string }
  /** A tensor that no arena (one GPUBuffer) can hold. */
  | { readonly kind: "arena"; readonly program: string; readonly bytes: number; readonly arenaBytes: number };

/** The node `t` of a phase, numbered by its position in `order` (the phase's schedule). */
export function nodeRef(t: Tensor, order: readonly Tensor[]): NodeRef {
  const position = order.findIndex((o) => o.id === t.id);
  return { op: t.node.op, id: position >= 0 ? position : t.id, scope: t.scope };
}

/** A DSL error thrown while building `program` as a compile error (`build` kind). */
export function buildError(program: string, e: DslError): CompileError {
  return { kind: "build", program, op: e instanceof ShapeError ? e.op : undefined, message: e.message };
}

/**
 * Runs a program's build function at the build boundary: its ShapeError (or other DslError)
 * becomes a value; any other exception is a bug and keeps its stack.
 */
export function tryBuildProgram(exported: { readonly name: string; build(): Program }): E.Either<CompileError, Program> {
  return E.mapLeft((e: DslError) => buildError(exported.name, e))(tryBuild(() => exported.build()));
}

const showNode = (n: NodeRef): string => `${n.op}#${n.id} ${n.scope ? `in ${n.scope}` : "at the top level"}`;

/**
 * One line per error, no stack: `codegen: program NAME (SOURCE): WHERE: WHAT`. `source` is where
 * the program is exported (`examples/x.ts#name`), when known.
 */
export function renderCompileError(e: CompileError, source?: string): string {
  const program = `codegen: program ${e.program}${source ? ` (${source})` : ""}`;
  switch (e.kind) {
    case "build":
      return `${program} does not build: ${e.message}`;
    case "lowering":
      return `${program}, phase ${e.phase}: ${showNode(e.node)} cannot be compiled: ${e.message}`;
    case "limit":
      return `${program}, phase ${e.phase}: ${showNode(e.node)}: kernel ${e.kernel} ${e.message}`;
    case "slot":
      return `${program}, phase ${e.phase}: ${e.node ? `${showNode(e.node)}: ` : ""}${e.message}`;
    case "arena":
      return `${program}: a tensor of ${e.bytes} bytes exceeds the arena size (${e.arenaBytes} bytes)`;
    default: {
      const never: never = e;
      throw new Error(`unknown compile error ${JSON.stringify(never)}`);
    }
  }
}

/** A compile error thrown by `compileProgram`, for callers that compile known-good programs. */
export class CompileFailed extends Error {
  constructor(readonly error: CompileError) {
    super(renderCompileError(error), error.kind === "lowering" && error.cause !== undefined ? { cause: error.cause } : undefined);
    this.name = "CompileFailed";
  }
}
