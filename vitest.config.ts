import { defineConfig } from "vitest/config";

// Tests live next to the code they test. GPU tests share one Dawn instance per worker;
// forks keep a crash inside Dawn from taking the runner down with it.
export default defineConfig({
  test: {
    include: ["{format,dsl,gradcheck,adapt,codegen,generated,runtime,checkpoint,datasets,evaluation,train,cli,plots,demo,testing,examples,scripts,bench,web}/**/*.test.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // No tile tuning in tests (runtime/node-tune.ts): the defaults run, and every tile gives the
    // same bits. Scripts the tests start inherit it. Tuning tests pass their own mode and store.
    env: { ADAPTSEG_TUNE: "off" },
  },
});
