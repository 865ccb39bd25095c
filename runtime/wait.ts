// Waiting for the GPU without pinning a CPU core.
//
// While a mapAsync / onSubmittedWorkDone promise is pending, node-webgpu polls Dawn from a
// setImmediate loop, which keeps one core at 100% (on a 2-core machine that core is one lavapipe
// would have used: kernels measured 1.6-1.75x slower). sleepingWait blocks the JS thread briefly
// between polls instead, so each turn of the event loop runs one poll and then sleeps.
//
// Pure ECMAScript: no Node API. In a browser's main thread Atomics.wait is forbidden (it throws),
// and there the promise is driven by the browser itself, so a plain await is right.

/** Longest sleep between two polls: the extra latency a wait can add once it has gone on a while. */
const MAX_SLEEP_MS = 1;
/** First sleep: short waits (a submit plus a readback costs ~0.3 ms on lavapipe) stay short. */
const FIRST_SLEEP_MS = 0.05;

let sleeper: Int32Array | null | undefined;

/** A blocking sleep, or null where this thread may not block (browser main thread, no SAB). */
function blockingSleeper(): Int32Array | null {
  if (sleeper !== undefined) return sleeper;
  sleeper = null;
  if (typeof SharedArrayBuffer === "undefined" || typeof Atomics?.wait !== "function") return null;
  try {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(cell, 0, 0, 0);
    sleeper = cell;
  } catch {
    // Main thread of a browser: "Atomics.wait cannot be called in this context".
  }
  return sleeper;
}

/** Yields one macrotask, so that the poll node-webgpu queued with setImmediate gets to run. */
function yieldOnce(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (f: () => void) => unknown }).setImmediate;
  // setTimeout(0) is clamped to >= 1 ms in Node and after nesting in browsers; prefer setImmediate.
  return new Promise((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)));
}

/** Resolves (or rejects) as `promise` does; sleeps the thread between event-loop turns meanwhile. */
export async function sleepingWait<T>(promise: Promise<T>): Promise<T> {
  const cell = blockingSleeper();
  if (cell === null) return promise;
  let settled = false;
  const done = () => {
    settled = true;
  };
  promise.then(done, done);
  // The promise may already be settled: give its reactions one chance to run before sleeping.
  await yieldOnce();
  let sleepMs = FIRST_SLEEP_MS;
  while (!settled) {
    Atomics.wait(cell, 0, 0, sleepMs);
    await yieldOnce();
    sleepMs = Math.min(MAX_SLEEP_MS, sleepMs * 2);
  }
  return promise;
}
