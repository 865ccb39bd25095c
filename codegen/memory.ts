// Static memory planning: offsets for every scratch buffer from lifetimes over the schedule.
//
// A buffer is live from the dispatch that first writes it to the last dispatch (or copy) that
// reads it. Two buffers may share bytes when their lifetimes do not overlap. Buffers are
// placed largest first at the lowest offset that conflicts with no live neighbour (greedy
// best-fit, as tinygrad's planner), aligned for storage-buffer bindings, and never across an
// arena boundary: each arena is one GPUBuffer, so no binding may straddle two.

/** Storage-buffer binding offsets must be multiples of this (WebGPU's minimum alignment). */
export const ALIGNMENT = 256;

export const alignUp = (n: number, a = ALIGNMENT): number => Math.ceil(n / a) * a;

export interface Lifetime {
  readonly id: string;
  readonly bytes: number;
  /** First and last step (inclusive) at which the buffer is live. */
  readonly first: number;
  readonly last: number;
}

export interface PlannedBuffer extends Lifetime {
  readonly offset: number;
}

export interface MemoryPlan {
  readonly buffers: ReadonlyMap<string, PlannedBuffer>;
  /** Bytes the plan spans (the scratch space to allocate). */
  readonly peak: number;
  /** The largest total of buffers live at one step: no plan can use less. */
  readonly lowerBound: number;
}

const overlaps = (a: Lifetime, b: Lifetime): boolean => a.first <= b.last && b.first <= a.last;

/** Greedy placement; `arenaBytes` bounds each arena (a buffer never crosses a multiple of it). */
export function planMemory(items: readonly Lifetime[], arenaBytes: number): MemoryPlan {
  // Largest first, then earliest, then in the order given (a stable sort). Not by id: ids hold
  // node numbers of the whole process, so two programs with the same graph (single- and
  // multi-level) would otherwise break ties differently and get different plans.
  const order = [...items].sort((a, b) => b.bytes - a.bytes || a.first - b.first || a.last - b.last);
  const placed: PlannedBuffer[] = [];
  for (const item of order) {
    const size = alignUp(item.bytes);
    if (size > arenaBytes) throw new Error(`buffer ${item.id} (${item.bytes} bytes) exceeds the arena size ${arenaBytes}`);
    // The byte ranges of buffers live at the same time, by offset; take the first gap that fits.
    const busy = placed.filter((p) => overlaps(p, item)).sort((a, b) => a.offset - b.offset);
    let offset = 0;
    const fitInArena = () => {
      const boundary = Math.floor(offset / arenaBytes) * arenaBytes + arenaBytes;
      if (offset + size > boundary) offset = boundary;
    };
    fitInArena();
    for (const p of busy) {
      if (p.offset >= offset + size) break; // the gap before p holds the buffer
      offset = Math.max(offset, p.offset + alignUp(p.bytes));
      fitInArena();
    }
    placed.push({ ...item, offset });
  }
  const peak = placed.reduce((m, p) => Math.max(m, p.offset + alignUp(p.bytes)), 0);
  return { buffers: new Map(placed.map((p) => [p.id, p])), peak, lowerBound: liveSetBound(items) };
}

/** The largest total size of buffers live at one step (a sweep over lifetime ends). */
export function liveSetBound(items: readonly Lifetime[]): number {
  const events: [number, number][] = [];
  for (const i of items) {
    events.push([i.first, alignUp(i.bytes)], [i.last + 1, -alignUp(i.bytes)]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let best = 0;
  for (const [, delta] of events) {
    live += delta;
    best = Math.max(best, live);
  }
  return best;
}
