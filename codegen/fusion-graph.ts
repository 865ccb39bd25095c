// What fusion knows of each op and expression: its kind (from its lowering in the op registry),
// and the buffers an inlined expression reads. Shared by the fusion rules (fusion.ts) and the
// reduction groups (reduction-groups.ts).

import { type Lowering, OP_NAMES, OPS, type OpName, type Tensor } from "../dsl/index";

export type OpKind = "source" | "elementwise" | "view" | "anchor";

/**
 * The kind of each op, from its lowering in the registry (dsl/ops/def.ts). Decomposed ops
 * never reach fusion (canonical.ts rewrites them first); were one to, it would be an anchor
 * without a template, which the template table refuses by name.
 */
const kindOf = (lowering: Lowering<OpName>): OpKind => {
  switch (lowering.kind) {
    case "load":
    case "source":
      return "source";
    case "elementwise":
      return "elementwise";
    case "view":
      return "view";
    case "template":
    case "decomposed":
      return "anchor";
    default: {
      const never: never = lowering;
      throw new Error(`fusion: unknown lowering ${JSON.stringify(never)}`);
    }
  }
};

export const OP_KIND: { readonly [K in OpName]: OpKind } = Object.fromEntries(
  OP_NAMES.map((name) => [name, kindOf(OPS[name].lowering as Lowering<OpName>)]),
) as { readonly [K in OpName]: OpKind };

/**
 * The buffers a pointwise kernel computing `t` reads: the materialised values its inlined
 * expression reaches.
 */
export function bufferInputs(t: Tensor, materialized: ReadonlySet<number>): Set<Tensor> {
  const found = new Set<Tensor>();
  const seen = new Set<number>();
  const walk = (x: Tensor): void => {
    if (seen.has(x.id)) return;
    seen.add(x.id);
    if (x !== t && materialized.has(x.id)) {
      found.add(x);
      return;
    }
    x.node.inputs.forEach(walk);
  };
  walk(t);
  return found;
}
