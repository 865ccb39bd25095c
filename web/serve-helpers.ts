// Helpers of `npm run web -- --screenshot` that the browser test shares.

import { readdirSync } from "node:fs";
import { join } from "node:path";

/** The synthetic target val images under a written benchmark, the first `n` of them. */
export function sampleTargetImages(dataDir: string, n: number): string[] {
  const root = join(dataDir, "cityscapes", "leftImg8bit", "val");
  return readdirSync(root)
    .sort()
    .flatMap((city) => readdirSync(join(root, city)).sort().map((f) => join(root, city, f)))
    .slice(0, n);
}
