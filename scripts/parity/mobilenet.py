"""MobileNetV2 and DeepLab-MobileNetV2 in plain torch.nn (torchvision is not installed), written
from torchvision's definition of `mobilenet_v2` (its layer table, module nesting and therefore
its state-dict keys) for the parity fixtures and the synthetic ImageNet checkpoint.

MobileNetV2 is the ImageNet classifier as torchvision builds it (features.0..18, classifier.1);
DeeplabMobileNet is the segmentation network of examples/mobilenet/networks.ts: features.0..17
with the strides past the output stride turned into dilations, a 1x1 DeepLabv3 head on the last
features (`classifier`) and a 1x1 auxiliary classifier on features.13 (`aux_classifier`).
"""

import torch.nn as nn

# t (expansion), c (channels), n (repeats), s (first stride)
INVERTED_RESIDUAL_SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
AUX_FEATURE_INDEX = 13


def make_divisible(v, divisor=8):
    """The nearest multiple of divisor (at least divisor), one step up when that loses > 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) -> BN -> ReLU6; groups = channels makes it depthwise."""

    def __init__(self, inp, out, kernel=3, stride=1, groups=1, dilation=1):
        padding = (kernel - 1) // 2 * dilation
        super().__init__(nn.Conv2d(inp, out, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=False))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio, dilation=1):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(inp, hidden, kernel=1))
        layers += [ConvBNReLU(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


def block_geometry(width_mult, output_stride=None):
    """(inp, oup, stride, t, dilation) of features.1..17; output_stride None: no dilation."""
    inp = make_divisible(32 * width_mult)
    reached, dilation, out = 2, 1, []
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        oup = make_divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            block_dilation = dilation
            if output_stride is not None and stride > 1 and reached >= output_stride:
                dilation *= stride
                stride = 1
            else:
                reached *= stride
            out.append((inp, oup, stride, t, block_dilation))
            inp = oup
    return out


def make_features(width_mult, output_stride=None):
    stem = ConvBNReLU(3, make_divisible(32 * width_mult), stride=2)
    return [stem] + [InvertedResidual(i, o, s, t, d) for i, o, s, t, d in block_geometry(width_mult, output_stride)]


class MobileNetV2(nn.Module):
    """torchvision's ImageNet MobileNetV2: features.0..18, dropout, classifier.1 (Linear)."""

    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        last_in = block_geometry(width_mult)[-1][1]
        last = make_divisible(1280 * max(1.0, width_mult))
        self.features = nn.Sequential(*make_features(width_mult), ConvBNReLU(last_in, last, kernel=1))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.features(x).mean([2, 3])
        return self.classifier(x)


class DeeplabMobileNet(nn.Module):
    """The DSL's DeepLab-MobileNetV2 (examples/mobilenet/networks.ts), BN affine frozen."""

    def __init__(self, width_mult, num_classes, head_channels, output_stride=16):
        super().__init__()
        geometry = block_geometry(width_mult, output_stride)
        self.features = nn.Sequential(*make_features(width_mult, output_stride))
        self.classifier = nn.Sequential(nn.Conv2d(geometry[-1][1], head_channels, 1, bias=False), nn.BatchNorm2d(head_channels),
                                        nn.ReLU(), nn.Conv2d(head_channels, num_classes, 1))
        self.aux_classifier = nn.Conv2d(geometry[AUX_FEATURE_INDEX - 1][1], num_classes, 1)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)

    def outputs(self, x):
        """(aux, main) raw logits at the output stride, and the last features."""
        aux_in = self.features[:AUX_FEATURE_INDEX + 1](x)
        last = self.features[AUX_FEATURE_INDEX + 1:](aux_in)
        return self.aux_classifier(aux_in), self.classifier(last), last

    def forward(self, x):
        """(aux, main) raw logits at the output stride."""
        return self.outputs(x)[:2]

    def head_parameters(self):
        return [p for p in list(self.classifier.parameters()) + list(self.aux_classifier.parameters()) if p.requires_grad]

    def backbone_parameters(self):
        return [p for p in self.features.parameters() if p.requires_grad]


# ---------------------------------------------------------------------------------------------
# Initialisation, as generator specs by state-dict key


def mobilenet_inits(model_name, model):
    """The DSL's declared distributions (examples/mobilenet/networks.ts): backbone convs
    torchvision's kaiming_normal_(mode="fan_out"), N(0, 2 / (C_out k^2)); the heads' convs
    PyTorch's default U(+-1/sqrt(C_in k^2)) for weight and bias; BN 1, 0, 0, 1."""
    from generator import constant, conv_default, normal
    state = model.state_dict()
    bn_values = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
    out = {}
    for key, t in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        module, leaf = key.rsplit(".", 1)
        weight = state[f"{module}.weight"]
        if weight.dim() == 1:
            spec = constant(bn_values[leaf])
        elif key.startswith(("classifier.", "aux_classifier.")):
            spec = conv_default(weight.shape[1] * weight.shape[2] * weight.shape[3])
        else:
            spec = normal(float((2.0 / (weight.shape[0] * weight.shape[2] * weight.shape[3])) ** 0.5))
        out[f"{model_name}/{key}"] = spec
    return out


def mobilenet_forward_inits(model_name, model):
    """Parity-only distributions for the forward check: conv weights N(0, 1/fan_in) (the stem's
    scaled down by 64 for the U(-128, 128) images), so activations stay near ReLU6's range; random
    BN affine and running statistics, so both BN modes are exercised; heads as declared."""
    from generator import normal, uniform
    out = mobilenet_inits(model_name, model)
    for key, t in model.state_dict().items():
        if key.endswith("num_batches_tracked") or key.startswith(("classifier.0", "classifier.3", "aux_classifier")):
            continue
        name, leaf = f"{model_name}/{key}", key.split(".")[-1]
        if leaf == "weight" and t.dim() == 4:
            fan_in = t.shape[1] * t.shape[2] * t.shape[3]
            out[name] = normal(float(1.0 / fan_in ** 0.5 / (64.0 if key == "features.0.0.weight" else 1.0)))
        elif leaf == "weight":
            out[name] = uniform(0.5, 1.5)
        elif leaf in ("bias", "running_mean"):
            out[name] = uniform(-0.2, 0.2)
        elif leaf == "running_var":
            out[name] = uniform(0.5, 1.5)
    return out
