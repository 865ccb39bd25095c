// Test-only: small torch.save-style zip checkpoints with hand-chosen views, for the tests that
// feed the loader views PyTorch itself would rarely write (broadcast, overlapping, huge).

import { buildZip } from "./test-zip-builder";
import { global, int32, MARK, pk, PROTO2, REDUCE, STOP, TUPLE, ustr, type Piece } from "./test-pickle-assembler";

export interface ViewSpec {
  readonly key: string;
  /** Elements in the storage as declared by its persistent id. */
  readonly storageNumel: number;
  /** Bytes actually stored for the storage (default: storageNumel float32s). */
  readonly storageBytes?: number;
  readonly offset?: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
}

const tuple = (xs: readonly number[]): Piece[] => [MARK, ...xs.map((x) => int32(x)), TUPLE];

/** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) over storage `id`. */
function tensorPickle(id: string, v: ViewSpec): Piece[] {
  const pid = [MARK, ustr("storage"), global("torch", "FloatStorage"), ustr(id), ustr("cpu"), int32(v.storageNumel), TUPLE, "Q"];
  return [
    global("torch._utils", "_rebuild_tensor_v2"),
    MARK,
    pid,
    int32(v.offset ?? 0),
    tuple(v.size),
    tuple(v.stride),
    0x89,
    global("collections", "OrderedDict"),
    ")",
    REDUCE,
    TUPLE,
    REDUCE,
  ];
}

/** The data.pkl of a dict {key: view} with one float32 storage per view. */
export function viewsPickle(views: readonly ViewSpec[]): Uint8Array {
  return pk(PROTO2, "}", ...views.map((v, i) => [ustr(v.key), tensorPickle(String(i), v), "s"]), STOP);
}

/** A zip-format .pth holding `views`, each over its own float32 storage of index values. */
export function viewsPth(views: readonly ViewSpec[]): Uint8Array {
  const storages = views.map((v, i) => {
    const bytes = v.storageBytes ?? v.storageNumel * 4;
    const data = new Uint8Array(bytes);
    const f = new Float32Array(data.buffer, 0, Math.floor(bytes / 4));
    for (let j = 0; j < f.length; j++) f[j] = j;
    return { name: `archive/data/${i}`, data };
  });
  return buildZip([{ name: "archive/data.pkl", data: viewsPickle(views) }, ...storages]);
}
