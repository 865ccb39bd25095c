// Entry of every data worker thread. Node 20 does not pass a parent's TypeScript loader on to
// worker threads, so when the worker module is TypeScript (run through tsx or vitest) the loader is
// registered here, inside the thread, before the module is imported. Plain JS for that reason.
import { workerData } from "node:worker_threads";

if (workerData.entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.entry);
