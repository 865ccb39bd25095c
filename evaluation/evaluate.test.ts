import { expect, test } from "vitest";
import { emptyConfusion, perClassIoU } from "./confusion";
import { accumulateLogits } from "./evaluate";

test("logits at 2x2 are upsampled to the 3x3 label and scored", () => {
  // class 1 dominates the left column, class 0 the right: upsampled, the middle column ties at
  // exactly 0.5/0.5 and goes to class 0 (first index)
  const logits = { data: Float32Array.from([0, 1, 0, 1, 1, 0, 1, 0]), classes: 2, height: 2, width: 2 };
  const label = Uint8Array.from([1, 0, 0, 1, 0, 0, 1, 255, 0]);
  const conf = emptyConfusion(2);
  const pred = accumulateLogits(conf, logits, label, 3, 3);
  expect(Array.from(pred)).toEqual([1, 0, 0, 1, 0, 0, 1, 0, 0]);
  expect(Array.from(conf.hist)).toEqual([5, 0, 0, 3]);
  expect(Array.from(perClassIoU(conf))).toEqual([1, 1]);
});

test("a label of the wrong size is refused", () => {
  const logits = { data: new Float32Array(2), classes: 2, height: 1, width: 1 };
  expect(() => accumulateLogits(emptyConfusion(2), logits, new Uint8Array(3), 2, 2)).toThrow(/3 pixels/);
});
