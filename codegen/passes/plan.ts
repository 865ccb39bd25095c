// Pass 6, plan: slots, constants and scratch lifetimes -> byte ranges in arenas.
//
// Persistent arenas hold the slots (in slot order, an alias at its target's bytes) and then the
// constant tables (by name), packed one after another, never across an arena boundary (an arena
// is one GPUBuffer, and no binding may straddle two). Scratch is planned per phase
// (codegen/memory.ts): phases run one after another, so they share the scratch arenas, which
// follow the persistent ones.

import * as E from "fp-ts/lib/Either.js";
import type { ArenaSpec, ConstantSpec, Placement } from "../../format/module";
import type { CompileError } from "../compile-error";
import { type MemoryPlan, alignUp, planMemory } from "../memory";
import type { ResidentPhase } from "./lifetimes";
import type { Slot } from "./slots";

/** The smallest arena made: WebGPU's binding offset alignment (an empty arena still binds). */
export const ALIGN_MIN = 256;

export interface PhaseMemory {
  readonly phase: string;
  readonly plan: MemoryPlan;
}

export interface MemoryLayout {
  readonly arenaBytes: number;
  /** Placement of every slot, by name. */
  readonly slots: ReadonlyMap<string, Placement>;
  /** The constant tables, sorted by name, with their placements. */
  readonly constants: readonly ConstantSpec[];
  readonly persistentBytes: number;
  /** Arenas before the first scratch arena. */
  readonly persistentArenas: number;
  /** The scratch plan of each phase, in phase order. */
  readonly scratch: readonly PhaseMemory[];
  readonly arenas: readonly ArenaSpec[];
}

/** Placements of consecutive persistent buffers of `sizes` from byte 0, or the size of one no arena holds. */
export function packPersistent(sizes: readonly number[], arenaBytes: number): { placements: Placement[]; end: number } | { tooLarge: number } {
  let cursor = 0;
  const placements: Placement[] = [];
  for (const bytes of sizes) {
    const size = alignUp(bytes);
    if (size > arenaBytes) return { tooLarge: bytes };
    const boundary = Math.floor(cursor / arenaBytes) * arenaBytes + arenaBytes;
    if (cursor + size > boundary) cursor = boundary;
    placements.push({ arena: Math.floor(cursor / arenaBytes), offset: cursor % arenaBytes, bytes });
    cursor += size;
  }
  return { placements, end: cursor };
}

/** Every constant table of every phase, by name (a table is a function of its name). */
function constantTables(phases: readonly ResidentPhase[]): [string, readonly number[]][] {
  const tables = new Map(phases.flatMap((p) => [...p.constants]));
  return [...tables].sort(([a], [b]) => (a < b ? -1 : 1));
}

function arenasOf(persistentBytes: number, scratchBytes: number, arenaBytes: number): ArenaSpec[] {
  const persistent = Math.max(1, Math.ceil(persistentBytes / arenaBytes));
  const scratch = Math.ceil(scratchBytes / arenaBytes);
  return [
    ...Array.from({ length: persistent }, (_, i): ArenaSpec => ({
      name: `persistent${i}`,
      bytes: Math.max(ALIGN_MIN, Math.min(arenaBytes, persistentBytes - i * arenaBytes)),
      kind: "persistent",
    })),
    ...Array.from({ length: scratch }, (_, i): ArenaSpec => ({ name: `scratch${i}`, bytes: Math.min(arenaBytes, scratchBytes - i * arenaBytes), kind: "scratch" })),
  ];
}

export function planLayout(program: string, arenaBytes: number) {
  return (slots: readonly Slot[], phases: readonly ResidentPhase[]): E.Either<CompileError, MemoryLayout> => {
    const owners = slots.filter((s) => s.placement.kind === "own");
    const tables = constantTables(phases);
    const scratchItems = phases.flatMap((p) => p.lifetimes);
    const packed = packPersistent([...owners.map((s) => s.spec.bytes), ...tables.map(([, words]) => words.length * 4)], arenaBytes);
    const tooLarge = (bytes: number) => E.left<CompileError, never>({ kind: "arena", program, bytes, arenaBytes });
    if ("tooLarge" in packed) return tooLarge(packed.tooLarge);
    // Checked here, not left to planMemory: a binding limit above the arena size lets one through.
    const scratchTooLarge = scratchItems.find((l) => alignUp(l.bytes) > arenaBytes);
    if (scratchTooLarge !== undefined) return tooLarge(scratchTooLarge.bytes);
    const placed = new Map(owners.map((s, i) => [s.spec.name, packed.placements[i]!]));
    for (const s of slots) if (s.placement.kind === "alias") placed.set(s.spec.name, placed.get(s.placement.of)!);
    const constants = tables.map(([name, words], i): ConstantSpec => ({ name, words, ...packed.placements[owners.length + i]! }));
    const scratch = phases.map((p) => ({ phase: p.name, plan: planMemory(p.lifetimes, arenaBytes) }));
    const scratchBytes = Math.max(0, ...scratch.map((m) => m.plan.peak));
    const persistentBytes = packed.end;
    return E.right({
      arenaBytes,
      slots: placed,
      constants,
      persistentBytes,
      persistentArenas: Math.max(1, Math.ceil(persistentBytes / arenaBytes)),
      scratch,
      arenas: arenasOf(persistentBytes, scratchBytes, arenaBytes),
    });
  };
}
