// The static memory planner (memory.ts): lifetimes in, aligned offsets out.

import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ALIGNMENT, type Lifetime, type MemoryPlan, alignUp, planMemory } from "./memory";

const overlapsInTime = (a: Lifetime, b: Lifetime) => a.first <= b.last && b.first <= a.last;

/** Byte range [from, to) a planned buffer occupies (sizes round up to the alignment). */
const range = (plan: MemoryPlan, id: string): [number, number] => {
  const b = plan.buffers.get(id)!;
  return [b.offset, b.offset + alignUp(b.bytes)];
};

describe("planMemory", () => {
  it("lets buffers whose lifetimes do not overlap share bytes", () => {
    const plan = planMemory(
      [
        { id: "a", bytes: 1000, first: 0, last: 1 },
        { id: "b", bytes: 1000, first: 2, last: 3 },
      ],
      1 << 20,
    );
    expect(plan.buffers.get("a")!.offset).toBe(0);
    expect(plan.buffers.get("b")!.offset).toBe(0);
    expect(plan.peak).toBe(1024);
  });

  it("never lets buffers that are live at the same step share bytes, even for one step", () => {
    const plan = planMemory(
      [
        { id: "a", bytes: 1000, first: 0, last: 2 },
        { id: "b", bytes: 1000, first: 2, last: 3 },
      ],
      1 << 20,
    );
    const [a, b] = [range(plan, "a"), range(plan, "b")];
    expect(a[1] <= b[0] || b[1] <= a[0]).toBe(true);
    expect(plan.peak).toBe(2048);
  });

  it("places every buffer at a multiple of the 256-byte binding alignment", () => {
    const items = [4, 12, 1000, 257, 256].map((bytes, i) => ({ id: `t${i}`, bytes, first: 0, last: 0 }));
    const plan = planMemory(items, 1 << 20);
    for (const b of plan.buffers.values()) expect(b.offset % ALIGNMENT).toBe(0);
    // All live together: each takes its size rounded up to 256 (1024 + 512 + 256 * 3).
    expect(plan.peak).toBe(2304);
  });

  it("moves a buffer that would straddle an arena boundary to the next arena", () => {
    const plan = planMemory(
      [
        { id: "big", bytes: 768, first: 0, last: 1 },
        { id: "half", bytes: 512, first: 0, last: 1 },
      ],
      1024,
    );
    expect(plan.buffers.get("big")!.offset).toBe(0);
    expect(plan.buffers.get("half")!.offset).toBe(1024);
    expect(plan.peak).toBe(1536);
  });

  it("rejects a buffer larger than an arena", () => {
    expect(() => planMemory([{ id: "huge", bytes: 2049, first: 0, last: 0 }], 2048)).toThrow(/huge \(2049 bytes\) exceeds the arena size 2048/);
  });

  it("reports the largest set of simultaneously live buffers as the lower bound", () => {
    const plan = planMemory(
      [
        { id: "a", bytes: 256, first: 0, last: 4 },
        { id: "b", bytes: 512, first: 1, last: 2 },
        { id: "c", bytes: 1024, first: 2, last: 3 },
        { id: "d", bytes: 2048, first: 4, last: 5 },
      ],
      1 << 20,
    );
    expect(plan.lowerBound).toBe(2304); // step 4: a and d
  });

  const lifetimes = fc
    .array(
      fc.record({
        bytes: fc.integer({ min: 1, max: 5000 }),
        first: fc.integer({ min: 0, max: 30 }),
        length: fc.integer({ min: 0, max: 12 }),
      }),
      { minLength: 1, maxLength: 40 },
    )
    .map((xs) => xs.map((x, i): Lifetime => ({ id: `t${i}`, bytes: x.bytes, first: x.first, last: x.first + x.length })));
  // Arenas from one buffer's worth (every buffer fits) up to roomy.
  const arena = fc.constantFrom(alignUp(5000), 8192, 16384, 1 << 20);

  it("property: a plan places every buffer, aligned, within one arena, with no two live buffers overlapping, and peak >= lowerBound", () => {
    fc.assert(
      fc.property(lifetimes, arena, (items, arenaBytes) => {
        const plan = planMemory(items, arenaBytes);
        expect(plan.buffers.size).toBe(items.length);
        for (const item of items) {
          const [from, to] = range(plan, item.id);
          expect(from % ALIGNMENT).toBe(0);
          expect(Math.floor(from / arenaBytes)).toBe(Math.floor((to - 1) / arenaBytes));
          expect(to).toBeLessThanOrEqual(plan.peak);
        }
        for (let i = 0; i < items.length; i++)
          for (let j = i + 1; j < items.length; j++) {
            const [a, b] = [items[i]!, items[j]!];
            if (!overlapsInTime(a, b)) continue;
            const [ra, rb] = [range(plan, a.id), range(plan, b.id)];
            expect(ra[1] <= rb[0] || rb[1] <= ra[0], `${a.id} and ${b.id} are live together and overlap`).toBe(true);
          }
        expect(plan.peak).toBeGreaterThanOrEqual(plan.lowerBound);
      }),
      { numRuns: 300 },
    );
  });

  it("property: the plan does not depend on the order the lifetimes are listed in", () => {
    const permuted = lifetimes.chain((items) => fc.tuple(fc.constant(items), fc.shuffledSubarray(items, { minLength: items.length, maxLength: items.length })));
    fc.assert(
      fc.property(permuted, ([items, shuffled]) => {
        const a = planMemory(items, 1 << 20);
        const b = planMemory(shuffled, 1 << 20);
        expect([...b.buffers.entries()].sort()).toEqual([...a.buffers.entries()].sort());
      }),
      { numRuns: 100 },
    );
  });
});
