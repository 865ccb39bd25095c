// Pass 3, fuse: a scheduled phase -> its kernel plans (fusion.ts: rules M1-M4, E1, S1).

import { type FusionResult, planFusion } from "../fusion";
import type { ScheduledPhase } from "./schedule";

export interface FusedPhase extends ScheduledPhase {
  /** Which values get buffers and which kernel computes each, over `order`. */
  readonly fusion: FusionResult;
}

export const fusePhase = (phase: ScheduledPhase): FusedPhase => ({ ...phase, fusion: planFusion(phase.roots, phase.order) });
