// Pass 2, schedule: a canonical phase -> the execution order of its nodes (fusion.ts, scheduleOrder).
//
// The order is decided before fusion because fusion reads it (E1 fuses the anchor scheduled
// last) and memory planning measures lifetimes over it.

import type { Tensor } from "../../dsl/index";
import { scheduleOrder } from "../fusion";
import type { CanonicalPhase } from "./canonicalise";

export interface ScheduledPhase extends CanonicalPhase {
  /** Every node the roots reach, inputs included, in a valid execution order. */
  readonly order: readonly Tensor[];
}

export const schedulePhase = (phase: CanonicalPhase): ScheduledPhase => ({ ...phase, order: scheduleOrder(phase.roots) });
