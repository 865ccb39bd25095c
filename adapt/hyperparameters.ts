// The numeric settings of an adaptation step, as run-time hyperparameters (dsl/hyper.ts): one
// compiled program trains with any learning rate or loss weight (`npm run train -- --lambda-seg 0.2`).
// A step declares exactly the ones it reads, so that no element of its vector is dead (an
// override of it would silently do nothing).

import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import type { SegmentationNetwork } from "./network";

/** Every numeric setting a step may read, with the name the trainer's flags use. */
export const HYPERPARAMETER_KEYS = [
  "learningRate",
  "learningRateD",
  "momentum",
  "weightDecay",
  "power",
  "numSteps",
  "lambdaSeg",
  "lambdaAdvTarget1",
  "lambdaAdvTarget2",
  "lambdaEntMain",
  "lambdaEntAux",
  "adamBeta1",
  "adamBeta2",
  "adamEpsilon",
] as const;

export type HyperparameterKey = (typeof HYPERPARAMETER_KEYS)[number];
export type Hyper = (key: HyperparameterKey) => F32<0>;

/**
 * The keys a step reads, in vector order: the network's poly SGD always; the discriminators'
 * Adam and the adversarial weights when adversarial (lambdaAdvTarget1 only with an auxiliary
 * head); the auxiliary CE weight lambdaSeg when the supervised pass has an auxiliary head; the
 * entropy weights for MinEnt. The oracle (supervised on the target, one head) reads SGD only.
 */
export function hyperparameterKeysFor(objective: "supervised" | "entropy" | "adversarial", heads: SegmentationNetwork["heads"]): readonly HyperparameterKey[] {
  const sgd = ["learningRate", "momentum", "weightDecay", "power", "numSteps"] as const;
  const adam = ["learningRateD", "adamBeta1", "adamBeta2", "adamEpsilon"] as const;
  const aux = heads === "main+aux";
  switch (objective) {
    case "supervised":
      return aux ? [...sgd, "lambdaSeg"] : sgd;
    case "entropy":
      return [...sgd, "lambdaSeg", "lambdaEntMain", "lambdaEntAux"];
    case "adversarial":
      return aux ? [...sgd, ...adam, "lambdaSeg", "lambdaAdvTarget1", "lambdaAdvTarget2"] : [...sgd, ...adam, "lambdaAdvTarget2"];
    default: {
      const never: never = objective;
      throw new Error(`unknown objective ${String(never)}`);
    }
  }
}

/** The hyperparameter vector of `keys` with `values` as defaults; `get` is the scalar of one key. */
export function declareHyperparameters(keys: readonly HyperparameterKey[], values: Readonly<Record<HyperparameterKey, number>>) {
  const h = d.hyperparameters(Object.fromEntries(keys.map((k) => [k, values[k]])) as Record<HyperparameterKey, number>);
  const get = (key: HyperparameterKey): F32<0> => {
    if (!keys.includes(key)) throw new d.DslError(`the step reads hyperparameter ${key}, which hyperparameterKeysFor does not list`);
    return h.values[key];
  };
  return { h, get };
}
