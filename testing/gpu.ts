// One Dawn device per test file: creating one costs ~100 ms, and Dawn must outlive every test.

import * as E from "fp-ts/lib/Either.js";
import type { AcquiredDevice } from "../runtime/device.js";
import { acquireNodeDevice } from "../runtime/node-gpu.js";
import { SMALL_LIMITS } from "./modules.js";

/** A device for the small test modules; throws (failing the suite) when there is no adapter. */
export async function testDevice(): Promise<AcquiredDevice> {
  const acquired = await acquireNodeDevice(SMALL_LIMITS)();
  if (E.isLeft(acquired)) throw new Error(acquired.left.message);
  return acquired.right;
}
