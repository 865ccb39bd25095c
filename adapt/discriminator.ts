// AdaptSegNet's fully convolutional discriminator (docs: adaptsegnet.md §2): five 4x4 stride-2
// convs, LeakyReLU 0.2 after the first four, a one-channel logit map (no sigmoid). Its keys are
// the official FCDiscriminator's (conv1..conv4, classifier), so D checkpoints move unchanged.

import * as d from "../dsl/index";
import type { F32 } from "../dsl/index";
import * as nn from "../dsl/nn";

export interface FCDiscriminatorConfig {
  readonly inChannels: number;
  /** Channels of conv1; the paper's ndf is 64 (64-128-256-512-1). */
  readonly ndf: number;
  /** Upsample the output map to the input size (the paper) instead of none (the code). */
  readonly upsample: boolean;
}

const discConv = (outC: number, inC: number) => nn.convSpec(outC, inC, 4, { bias: true, group: "discriminator" });

export function fcDiscriminatorSpec(cfg: FCDiscriminatorConfig) {
  const n = cfg.ndf;
  return {
    conv1: discConv(n, cfg.inChannels),
    conv2: discConv(n * 2, n),
    conv3: discConv(n * 4, n * 2),
    conv4: discConv(n * 8, n * 4),
    classifier: discConv(1, n * 8),
  };
}

export type FCDiscriminatorParams = d.Declared<ReturnType<typeof fcDiscriminatorSpec>>;

/** Raw logit map (no sigmoid); each conv maps n -> floor((n - 2) / 2) + 1. */
export function fcDiscriminator(x: F32<4>, p: FCDiscriminatorParams, cfg: FCDiscriminatorConfig): F32<4> {
  const s = { stride: 2, padding: 1 };
  let h = d.leakyRelu(nn.conv(x, p.conv1, s), 0.2);
  h = d.leakyRelu(nn.conv(h, p.conv2, s), 0.2);
  h = d.leakyRelu(nn.conv(h, p.conv3, s), 0.2);
  h = d.leakyRelu(nn.conv(h, p.conv4, s), 0.2);
  const out = nn.conv(h, p.classifier, s);
  return cfg.upsample ? d.resize(out, [x.shape[2]!, x.shape[3]!], { alignCorners: true }) : out;
}
