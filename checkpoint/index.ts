// Checkpoint I/O: safetensors files and trainer bundles written by this project, PyTorch
// checkpoints read without Python, and the rules that map official weights onto our keys.
// See docs/checkpoints.md.

export * from "./errors";
export * from "./tensor";
export { writeFileAtomic, type ByteChunks } from "./atomic-write";
export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
  readBytes,
  concatChunks,
  type SafetensorsContents,
} from "./safetensors";
export { writeCheckpoint, readCheckpoint, type CheckpointBundle } from "./bundle";
export * from "./validate";
export { decodeTorchCheckpoint, loadTorchCheckpoint, type TorchCheckpoint, type TorchFormat } from "./torch-load";
export * from "./import-rules";
