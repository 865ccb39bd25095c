// The gradient-check table: every differentiable op's rows (derived from the registry, or its
// generator in cases.ts), then the composites. `npm run gradcheck` runs it (scripts/gradcheck.ts).

import { CASES } from "./cases";
import { COMPOSITE_CHECKS } from "./composites";
import { ELEMENTWISE_CHECKS } from "./elementwise";
import type { OpCheck } from "./harness";

export * from "./harness";

/** Every row: the differentiable primitives first, then the composites. */
export const OP_CHECKS: readonly OpCheck[] = [...ELEMENTWISE_CHECKS, ...Object.values(CASES).flat(), ...COMPOSITE_CHECKS];
