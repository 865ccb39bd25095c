// The primitive ops of the DSL: builders that check shapes and dtypes and create nodes.
//
// Each op is declared once, in its family file under ops/: its attributes, its builder (with
// the math and the shape rule), and its registry record (ops/def.ts: reference evaluation,
// VJP, lowering, gradient check). This module gathers the families, so a new op's builder is
// exported from here without touching this file. Conventions follow PyTorch: NCHW layout,
// floor division for window sizes, ties in argmax to the first index.

export type { MaxRank, Numeric } from "./ops/build";
export * from "./ops/sources";
export * from "./ops/unary";
export * from "./ops/binary";
export * from "./ops/reductions";
export * from "./ops/views";
export * from "./ops/conv";
export * from "./ops/depthwise";
export * from "./ops/sampling";
export * from "./ops/matmul";
export * from "./ops/normalization";
