// Matrix product.

import type { F32, Tensor } from "../ir";
import { fail, node, requireRank } from "./build";
import type { OpDef } from "./def";
import { permute } from "./views";

export interface MatmulAttrs {
  matmul: {};
}

/** Matrix product [M,K] x [K,N] -> [M,N]. */
export function matmul(a: F32<2>, b: F32<2>): F32<2> {
  requireRank("matmul", "a", a, 2, {}, [["a", a], ["b", b]]);
  requireRank("matmul", "b", b, 2, {}, [["a", a], ["b", b]]);
  if (a.shape[1] !== b.shape[0]) fail("matmul", [["a", a], ["b", b]], {}, "inner dimensions differ");
  return node({ op: "matmul", inputs: [a, b], attrs: {} }, [a.shape[0]!, b.shape[1]!], "f32");
}

const f2 = (t: Tensor) => t as F32<2>;

export const MATMUL_OPS = {
  // d(AB) = dy B^T, A^T dy
  matmul: {
    evaluate: (_n, [a, b], out) => {
      const [M, K] = a!.shape as [number, number];
      const N = b!.shape[1]!;
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a!.data[i * K + k]! * b!.data[k * N + j]!;
          out[i * N + j] = s;
        }
    },
    vjp: (n, dy) => {
      const [a, b] = [f2(n.inputs[0]!), f2(n.inputs[1]!)];
      return [matmul(f2(dy), permute(b, [1, 0])), matmul(permute(a, [1, 0]), f2(dy))];
    },
    lowering: { kind: "template", operands: "buffers", epilogue: true },
    gradcheck: { kind: "cases" },
  },
} satisfies { readonly [K in keyof MatmulAttrs]: OpDef<K> };
