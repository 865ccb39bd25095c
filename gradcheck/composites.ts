// Gradient checks of composites: losses, the BN layer with its running statistics, and the
// optimizer updates (each a graph of several ops, checked as users build it).

import fc from "fast-check";
import { constant, declareModel, losses, nn, optim, param, showShape, StateThread } from "../dsl/index";
import { awayFromZero, distinct, standard, uniform } from "../dsl/ops/def";
import { bnShapeA } from "./cases";
import { broadcastPairA, dim, f32In, seedA, shapeA } from "./arbitraries";
import type { OpCheck } from "./harness";

export const COMPOSITE_CHECKS: readonly OpCheck[] = [
  {
    name: "losses.bceWithLogits",
    cases: fc.record({ shape: shapeA(0, 4, 3), constantTarget: fc.constantFrom(undefined, 0, 1), seed: seedA }).map((r) => ({
      label: `x ${showShape(r.shape)}, target ${r.constantTarget ?? "tensor"}`,
      seed: r.seed,
      // |x| >= 0.05 keeps off the kinks of relu(x) and |x| in the stable form.
      inputs: {
        x: f32In(r.shape, awayFromZero(0.05, 4)),
        ...(r.constantTarget === undefined ? { z: f32In(r.shape, uniform(0, 1)) } : {}),
      },
      build: (t) => losses.bceWithLogits(t.f("x"), r.constantTarget ?? t.f("z")),
    })),
  },
  {
    name: "losses.mse",
    cases: fc.record({ shapes: broadcastPairA, seed: seedA }).map(({ shapes: [sx, sz], seed }) => ({
      label: `x ${showShape(sx)}, target ${showShape(sz)}`,
      seed,
      inputs: { x: f32In(sx, standard), z: f32In(sz, standard) },
      build: (t) => losses.mse(t.f("x"), t.f("z")),
    })),
  },
  {
    name: "losses.entropyLoss",
    cases: fc.record({ n: dim(1, 2), c: dim(2, 4), h: dim(1, 3), w: dim(1, 3), seed: seedA }).map((r) => ({
      label: `prob [${r.n},${r.c},${r.h},${r.w}]`,
      seed: r.seed,
      inputs: { prob: f32In([r.n, r.c, r.h, r.w], uniform(0.05, 1)) },
      build: (t) => losses.entropyLoss(t.f4("prob")),
    })),
  },
  {
    // Output and running statistics; x is not differentiated, because the statistics see it
    // through stopGradient (their finite difference in x is not 0, their gradient is).
    name: "nn.batchNorm2d train",
    cases: bnShapeA
      .filter((r) => r.n * r.h * r.w >= 2)
      .map((r) => {
        const x = [r.n, r.c, r.h, r.w];
        return {
          label: `x ${showShape(x)}, eps ${r.eps}`,
          seed: r.seed,
          inputs: {
            x: f32In(x, distinct(0.3), false),
            "bn/weight": f32In([r.c], standard),
            "bn/bias": f32In([r.c], standard),
            "bn/running_mean": f32In([r.c], standard),
            "bn/running_var": f32In([r.c], uniform(0.3, 2)),
          },
          build: (t) => {
            const bn = declareModel("bn", nn.batchNormSpec(r.c)).p;
            const thread = new StateThread();
            const y = nn.batchNorm2d(t.f4("x"), bn, { mode: "train", eps: r.eps, thread });
            return [y, ...Object.values(thread.updates())];
          },
        };
      }),
  },
  ...[true, false].map(
    (inPlace): OpCheck => ({
      name: `optim.sgd weightDecayInPlace ${inPlace}`,
      cases: fc.record({ shape: shapeA(0, 3, 3), visits: dim(1, 3), seed: seedA }).map((r) => ({
        label: `p ${showShape(r.shape)}, visits ${r.visits}`,
        seed: r.seed,
        inputs: {
          "m/w": f32In(r.shape, standard),
          g: f32In(r.shape, standard),
          "sgd/m.w": f32In(r.shape, standard),
          lr: f32In([], uniform(0.01, 0.5)),
        },
        build: (t) => {
          const m = declareModel("m", { w: param(r.shape, { init: constant(0) }) });
          const res = optim.sgd("sgd", [{ entry: m.entries[0]!, grad: t.f("g") }], {
            lr: () => t.f0("lr"),
            momentum: 0.9,
            weightDecay: 0.05,
            visits: () => r.visits,
            weightDecayInPlace: inPlace,
          });
          return Object.values(res.updates);
        },
      })),
    }),
  ),
  ...(["pytorch1", "pytorch0.4"] as const).map(
    (epsPlacement): OpCheck => ({
      name: `optim.adam eps ${epsPlacement}`,
      cases: fc.record({ shape: shapeA(0, 3, 3), seed: seedA }).map((r) => ({
        label: `p ${showShape(r.shape)}`,
        seed: r.seed,
        inputs: {
          "m/w": f32In(r.shape, standard),
          g: f32In(r.shape, standard),
          "adam/m.w.exp_avg": f32In(r.shape, standard),
          // v is a running mean of squares: positive, and away from sqrt's pole at 0.
          "adam/m.w.exp_avg_sq": f32In(r.shape, uniform(0.1, 2)),
          lr: f32In([], uniform(0.01, 0.5)),
          step: f32In([], uniform(1, 5)),
        },
        build: (t) => {
          const m = declareModel("m", { w: param(r.shape, { init: constant(0) }) });
          const res = optim.adam("adam", [{ entry: m.entries[0]!, grad: t.f("g") }], {
            lr: t.f0("lr"),
            beta1: 0.9,
            beta2: 0.99,
            eps: 0.01,
            step: t.f0("step"),
            epsPlacement,
          });
          return Object.values(res.updates);
        },
      })),
    }),
  ),
];
