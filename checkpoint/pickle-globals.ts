// The safety rules of the restricted unpickler (pickle.ts): which globals a checkpoint may name,
// what their "calls" (REDUCE) mean as data construction, and which persistent ids are loaded.
//
// Python's GLOBAL + REDUCE call arbitrary functions by name, which is how a malicious .pth runs
// `os.system`. Here a global resolves only when it is on the whitelist below, into an inert
// descriptor (`AllowedGlobal`); anything else is refused by the machine at the GLOBAL opcode,
// before its arguments are read. The whitelisted calls are interpreted, never executed: an
// empty OrderedDict, a tensor view description, a storage reference.

import type { DType } from "./tensor";
import {
  type AllowedGlobal,
  asIndex,
  asIndexTuple,
  asString,
  describe,
  emptyDict,
  fail,
  type PyValue,
  setItem,
  type StorageRef,
} from "./pickle-values";

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "F32",
  DoubleStorage: "F64",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/**
 * The only names a checkpoint may mention. Storage classes are dtype tags here; `torch.cuda.*`
 * variants appear in files saved from GPU by old PyTorch and mean the same dtype (the tensor is
 * loaded to the host either way).
 */
export function resolveGlobal(module: string, name: string): AllowedGlobal | undefined {
  if (module === "collections" && name === "OrderedDict") return { kind: "ordered-dict" };
  if (module === "torch._utils") {
    if (name === "_rebuild_tensor_v2") return { kind: "rebuild-tensor-v2" };
    if (name === "_rebuild_tensor") return { kind: "rebuild-tensor" };
    if (name === "_rebuild_parameter") return { kind: "rebuild-parameter" };
  }
  if ((module === "torch" || module === "torch.cuda") && Object.hasOwn(STORAGE_DTYPES, name)) {
    return { kind: "storage-type", name: `${module}.${name}`, dtype: STORAGE_DTYPES[name]! };
  }
  return undefined;
}

/** The whitelisted "calls", interpreted as data construction. */
export function reduce(callable: PyValue, args: readonly PyValue[]): PyValue {
  if (callable.type !== "global") fail("corrupt", `REDUCE on ${describe(callable)}, which is not callable`);
  const ref = callable.ref;
  switch (ref.kind) {
    case "ordered-dict":
      return orderedDict(args);
    case "rebuild-tensor":
      // (storage, storage_offset, size, stride): PyTorch 0.3 and earlier
      return tensor(args, false);
    case "rebuild-tensor-v2":
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (args.length < 6) fail("corrupt", `_rebuild_tensor_v2 takes at least 6 arguments, got ${args.length}`);
      return tensor(args, args[4]?.type === "bool" && args[4].value);
    case "rebuild-parameter": {
      // (data, requires_grad, backward_hooks): an nn.Parameter is its tensor for our purposes
      const data = args[0];
      if (data?.type !== "tensor") fail("corrupt", `_rebuild_parameter of ${data === undefined ? "nothing" : describe(data)}`);
      return { type: "tensor", tensor: { ...data.tensor, requiresGrad: args[1]?.type === "bool" && args[1].value } };
    }
    case "storage-type":
      return fail("unsupported", `calling ${ref.name} (constructing a storage from pickled data)`);
    default: {
      const never: never = ref;
      return never;
    }
  }
}

/** OrderedDict() (Python 3 pickles) or OrderedDict([[k, v], ...]) (Python 2.7 pickles). */
function orderedDict(args: readonly PyValue[]): PyValue {
  const d = emptyDict();
  if (args.length === 0) return d;
  const items = args[0];
  if (args.length > 1 || (items?.type !== "list" && items?.type !== "tuple")) {
    fail("corrupt", "OrderedDict arguments are not a list of pairs");
  }
  for (const pair of items.items) {
    if ((pair.type !== "list" && pair.type !== "tuple") || pair.items.length !== 2) {
      fail("corrupt", "OrderedDict item is not a (key, value) pair");
    }
    setItem(d, pair.items[0]!, pair.items[1]!);
  }
  return d;
}

function tensor(args: readonly PyValue[], requiresGrad: boolean): PyValue {
  const storage = args[0];
  if (storage?.type !== "storage") fail("corrupt", `tensor rebuilt from ${storage === undefined ? "nothing" : describe(storage)}, expected a storage`);
  const size = asIndexTuple(args[2], "tensor size");
  const stride = asIndexTuple(args[3], "tensor stride");
  if (size.length !== stride.length) fail("corrupt", `tensor size has ${size.length} dims but stride has ${stride.length}`);
  const offset = storage.storage.elementOffset + asIndex(args[1], "tensor storage offset");
  return { type: "tensor", tensor: { storage: storage.storage, offset, size, stride, requiresGrad } };
}

/**
 * torch's persistent ids: ('storage', storage_type, key, location, numel) in zip archives,
 * with a sixth element, view metadata (view_key, offset, view_size) or None, in legacy files.
 * Any other kind (PyTorch once pickled module source code as ('module', ...)) is refused.
 */
export function persistentLoad(pid: PyValue, format: "zip" | "legacy"): StorageRef {
  if (pid.type !== "tuple") fail("corrupt", `persistent id is ${describe(pid)}, expected a tuple`);
  const [kind, type, key, location, numel, view] = pid.items;
  const typename = asString(kind, "persistent id kind");
  if (typename !== "storage") fail("unsafe", `persistent id of kind '${typename}' (only 'storage' is loaded)`);
  const expectedLength = format === "zip" ? 5 : 6;
  if (pid.items.length !== expectedLength) {
    fail("corrupt", `storage persistent id has ${pid.items.length} elements, expected ${expectedLength} in a ${format} file`);
  }
  if (type?.type !== "global" || type.ref.kind !== "storage-type") {
    fail("corrupt", `storage type is ${type === undefined ? "missing" : describe(type)}`);
  }
  const root: StorageRef = {
    key: asString(key, "storage key"),
    dtype: type.ref.dtype,
    location: asString(location, "storage location"),
    storageNumel: asIndex(numel, "storage size"),
    elementOffset: 0,
  };
  if (view === undefined || view.type === "none") return root;
  if (view.type !== "tuple" || view.items.length !== 3) fail("corrupt", `storage view metadata is ${describe(view)}`);
  const offset = asIndex(view.items[1], "storage view offset");
  const viewSize = asIndex(view.items[2], "storage view size");
  if (offset + viewSize > root.storageNumel) {
    fail("corrupt", `storage view [${offset}, ${offset + viewSize}) exceeds storage ${root.key} of ${root.storageNumel} elements`);
  }
  return { ...root, elementOffset: offset };
}
