// Gradient checks of the elementwise ops, derived from their registry records: a record with
// `gradcheck: { kind: "unary", dist }` or `{ kind: "binary", a, b }` gets its row here, with
// inputs drawn from those distributions (off kinks and poles) over random shapes.

import fc from "fast-check";
import {
  type Dist,
  type Node,
  OP_NAMES,
  OPS,
  type OpName,
  type Shape,
  type Tensor,
  broadcastShapes,
  makeTensor,
  showShape,
} from "../dsl/index";
import * as op from "../dsl/ops";
import { broadcastPairA, f32In, seedA, shapeA } from "./arbitraries";
import type { OpCheck } from "./harness";

/** The node `name` over operands broadcast to one shape (what the op's builder makes). */
function elementwiseNode(name: OpName, inputs: readonly Tensor[], attrs: object): Tensor {
  const shape = inputs.reduce<Shape>((s, t) => broadcastShapes(s, t.shape)!, []);
  const operands = inputs.map((t) => op.broadcastTo(t, shape));
  return makeTensor({ op: name, inputs: operands, attrs } as Node, shape, operands[0]!.dtype);
}

/** "slope 0.2": an attribute set as a row-name suffix. */
const attrLabel = (attrs: object): string =>
  Object.entries(attrs)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(", ");

function unaryCheck(name: OpName, dist: Dist, attrs: object): OpCheck {
  const suffix = attrLabel(attrs);
  return {
    name: suffix ? `${name} ${suffix}` : name,
    op: name,
    cases: fc.record({ shape: shapeA(0, 4, 4), seed: seedA }).map(({ shape, seed }) => ({
      label: `x ${showShape(shape)}`,
      seed,
      inputs: { x: f32In(shape, dist) },
      build: (t) => elementwiseNode(name, [t.f("x")], attrs),
    })),
  };
}

function binaryCheck(name: OpName, distA: Dist, distB: Dist): OpCheck {
  return {
    name,
    op: name,
    cases: fc.record({ shapes: broadcastPairA, seed: seedA }).map(({ shapes: [sa, sb], seed }) => ({
      label: `a ${showShape(sa)}, b ${showShape(sb)}`,
      seed,
      inputs: { a: f32In(sa, distA), b: f32In(sb, distB) },
      build: (t) => elementwiseNode(name, [t.f("a"), t.f("b")], {}),
    })),
  };
}

/** One row per unary record (per attribute set) and per binary record. */
export const ELEMENTWISE_CHECKS: readonly OpCheck[] = OP_NAMES.flatMap((name): OpCheck[] => {
  const g = OPS[name].gradcheck;
  switch (g.kind) {
    case "unary":
      return (g.attrs ?? [{}]).map((attrs) => unaryCheck(name, g.dist, attrs));
    case "binary":
      return [binaryCheck(name, g.a, g.b)];
    case "none":
    case "cases":
      return [];
    default: {
      const never: never = g;
      throw new Error(`gradcheck: unknown kind ${JSON.stringify(never)}`);
    }
  }
});
