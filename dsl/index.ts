// The DSL: what users write networks, losses and training steps in.
export * from "./ir";
export * from "./shape";
export * from "./ops";
export * from "./ops/registry";
export type { OpDef, Lowering, InlineContext, InlineLowering, Gradcheck, Dist, SharedHelper } from "./ops/def";
export * from "./grad";
export * from "./params";
export * from "./program";
export * from "./hyper";
export * from "./interpret";
export * from "./init";
export * as nn from "./nn";
export * as losses from "./losses";
export * as optim from "./optim";
