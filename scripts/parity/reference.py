"""AdaptSegNet in PyTorch, written from the spec (shared/docs/adaptsegnet.md §1-§3, §9), for
the parity fixtures. Parameterised by depth and width so that small configurations use the
same code as ResNet-101; state-dict keys are the official ones (§1.10, §2).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from generator import constant, conv_default, draw, normal

# ---------------------------------------------------------------------------------------------
# DeeplabMulti (§1): Caffe bottlenecks, dilated layer3/layer4, ASPP heads on layer3 and layer4.

ASPP_DILATIONS = (6, 12, 18, 24)


class Bottleneck(nn.Module):
    """§1.3: stride on the first 1x1, padding = dilation on the 3x3, ReLU after the sum."""

    expansion = 4

    def __init__(self, inplanes, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = self.downsample(x) if self.downsample is not None else x
        return F.relu(out + residual)


class ClassifierModule(nn.Module):
    """§1.6: four dilated 3x3 convs; the official forward returns after summing branches 0 and 1
    (the early-return bug); ADVENT sums all four."""

    def __init__(self, inplanes, num_classes, branches):
        super().__init__()
        self.conv2d_list = nn.ModuleList(
            [nn.Conv2d(inplanes, num_classes, 3, padding=d, dilation=d, bias=True) for d in ASPP_DILATIONS]
        )
        self.branches = branches

    def forward(self, x):
        out = self.conv2d_list[0](x)
        for i in range(1, self.branches):
            out = out + self.conv2d_list[i](x)
        return out


class DeeplabMulti(nn.Module):
    def __init__(self, blocks=(3, 4, 23, 3), width=64, num_classes=19, aspp_branches=2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.inplanes = width
        self.layer1 = self._make_layer(width, blocks[0], stride=1, dilation=1)
        self.layer2 = self._make_layer(width * 2, blocks[1], stride=2, dilation=1)
        self.layer3 = self._make_layer(width * 4, blocks[2], stride=1, dilation=2)
        self.layer4 = self._make_layer(width * 8, blocks[3], stride=1, dilation=4)
        self.layer5 = ClassifierModule(width * 16, num_classes, aspp_branches)
        self.layer6 = ClassifierModule(width * 32, num_classes, aspp_branches)
        # §1.5: every BN's affine parameters are frozen.
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.requires_grad_(False)
                m.bias.requires_grad_(False)

    def _make_layer(self, planes, blocks, stride, dilation):
        # §1.4: block 0 has a downsample branch (stride, channels or dilation 2/4 differ).
        downsample = None
        if stride != 1 or self.inplanes != planes * 4 or dilation in (2, 4):
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
        layers = [Bottleneck(self.inplanes, planes, stride, dilation, downsample)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(Bottleneck(self.inplanes, planes, 1, dilation, None))
        return nn.Sequential(*layers)

    def features(self, x):
        """(stem output, layer3 output, layer4 output)."""
        x = F.relu(self.bn1(self.conv1(x)))
        stem = F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
        x = self.layer2(self.layer1(stem))
        l3 = self.layer3(x)
        return stem, l3, self.layer4(l3)

    def forward(self, x):
        """(aux, main) raw logits at output stride 8 (§1.7)."""
        _, l3, l4 = self.features(x)
        return self.layer5(l3), self.layer6(l4)

    def head_parameters(self):
        return list(self.layer5.parameters()) + list(self.layer6.parameters())

    def backbone_parameters(self):
        heads = {id(p) for p in self.head_parameters()}
        return [p for p in self.parameters() if id(p) not in heads and p.requires_grad]


def set_bn_mode(model, mode):
    """official: train-mode BN (batch statistics, running-statistics updates); frozen: eval."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train(mode == "official")


# ---------------------------------------------------------------------------------------------
# FCDiscriminator (§2)


class FCDiscriminator(nn.Module):
    def __init__(self, in_channels=19, ndf=64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1)
        self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1)
        self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, 4, stride=2, padding=1)
        self.classifier = nn.Conv2d(ndf * 8, 1, 4, stride=2, padding=1)

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        x = F.leaky_relu(self.conv3(x), 0.2)
        x = F.leaky_relu(self.conv4(x), 0.2)
        return self.classifier(x)  # raw logits, no upsampling (§2)


# ---------------------------------------------------------------------------------------------
# Initialisation (§1.8, §2): the official distributions, as generator specs by state-dict key.


def official_inits(model_name, model):
    """Init spec of every state-dict tensor (num_batches_tracked excluded), keyed '<model>/<key>':
    FCDiscriminator keeps PyTorch's Conv2d default U(+-1/sqrt(16 C_in)) for weights and biases;
    DeeplabMulti has N(0, 0.01) for every conv weight, U(+-1/sqrt(9 C_in)) for the head biases, and
    BN weight 1, bias 0, running mean 0, running variance 1."""
    state = model.state_dict()
    bn_values = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
    out = {}
    for key, t in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        module, leaf = key.rsplit(".", 1)
        weight = state[f"{module}.weight"]
        if isinstance(model, FCDiscriminator):
            spec = conv_default(weight.shape[1] * 16)
        elif weight.dim() == 1:  # a BatchNorm2d
            spec = constant(bn_values[leaf])
        elif leaf == "bias":  # the heads' convs, the only ones with a bias
            spec = conv_default(weight.shape[1] * 9)
        else:
            spec = normal(0.01)
        out[f"{model_name}/{key}"] = spec
    return out


def load_from_generator(model, model_name, inits, seed, dtype):
    state = model.state_dict()
    with torch.no_grad():
        for key, t in state.items():
            if key.endswith("num_batches_tracked"):
                continue
            name = f"{model_name}/{key}"
            values = draw(inits[name], t.numel(), seed, name)
            t.copy_(torch.from_numpy(values).reshape(t.shape).to(dtype))


# ---------------------------------------------------------------------------------------------
# Losses (§3.5)


def cross_entropy_2d(logits, labels, ignore=255):
    """The official CrossEntropy2d: mean NLL over labels >= 0 and != ignore; 0 when none is valid."""
    valid = (labels >= 0) & (labels != ignore)
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, ignore_index=ignore)


def gan_loss(gan, logits, label):
    target = torch.full_like(logits, float(label))
    return F.mse_loss(logits, target) if gan == "LS" else F.binary_cross_entropy_with_logits(logits, target)


def self_information(prob):
    """ADVENT prob_2_entropy: -p log2(p + 1e-30) / log2(C), per channel."""
    c = prob.shape[1]
    return -torch.mul(prob, torch.log2(prob + 1e-30)) / math.log2(c)


def up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def poly(base, i, max_iter, power):
    return base * ((1 - float(i) / max_iter) ** power)


# ---------------------------------------------------------------------------------------------
# Optimizers


def make_sgd(G, cfg):
    """optim_parameters (§1.9): backbone group at lr, heads (layer5, layer6) at 10 lr."""
    return torch.optim.SGD(
        [{"params": G.backbone_parameters(), "lr": cfg["learningRate"]},
         {"params": G.head_parameters(), "lr": 10 * cfg["learningRate"]}],
        lr=cfg["learningRate"], momentum=cfg["momentum"], weight_decay=cfg["weightDecay"],
    )


class OfficialSgd:
    """The official run's SGD (PyTorch 0.3/0.4, §1.9, §3.7): the 1x group lists every backbone
    conv weight once per ancestor module (stem 1, block convs 3, downsample convs 4), and each
    list entry is a full update in sequence, with weight decay added to p.grad in place."""

    def __init__(self, G, cfg):
        self.cfg = cfg
        self.lr = cfg["learningRate"]
        group0 = []
        for module in (G.conv1, G.bn1, G.layer1, G.layer2, G.layer3, G.layer4):
            for j in module.modules():
                for k in j.parameters():
                    if k.requires_grad:
                        group0.append(k)
        self.groups = [(group0, 1.0), (G.head_parameters(), 10.0)]
        self.buffers = {}  # by parameter (not id), so that copy.deepcopy keeps the pairing

    def step(self):
        mu, wd = self.cfg["momentum"], self.cfg["weightDecay"]
        with torch.no_grad():
            for params, mult in self.groups:
                for p in params:
                    if p.grad is None:
                        continue
                    p.grad.add_(p, alpha=wd)  # in place: accumulates over repeated visits
                    buf = self.buffers.get(p)
                    if buf is None:
                        buf = p.grad.clone()
                        self.buffers[p] = buf
                    else:
                        buf.mul_(mu).add_(p.grad)
                    p.add_(buf, alpha=-self.lr * mult)

    def zero_grad(self):
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    def momentum_buffer(self, p):
        return self.buffers.get(p)


class Adam04:
    """Adam as PyTorch 0.3/0.4 (§3.7): step = lr sqrt(1-b2^t)/(1-b1^t); p -= step m/(sqrt(v)+eps)."""

    def __init__(self, params, lr, betas, eps):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state = {}  # by parameter, as torch.optim keeps it

    def step(self):
        b1, b2 = self.betas
        with torch.no_grad():
            for p in self.params:
                if p.grad is None:
                    continue
                st = self.state.setdefault(p, {"step": 0, "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)})
                st["step"] += 1
                st["exp_avg"].mul_(b1).add_(p.grad, alpha=1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                t = st["step"]
                step_size = self.lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                p.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt().add_(self.eps), value=-step_size)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def moments(self, p):
        st = self.state[p]
        return st["exp_avg"], st["exp_avg_sq"]


class Trainer:
    """One AdaptSegNet training run of `cfg` (a TrainConfig as the DSL's train.ts has it)."""

    def __init__(self, cfg, dtype):
        net = cfg["network"]
        self.cfg = cfg
        self.variant = cfg["variant"]
        if net.get("kind") == "mobilenet-v2":
            from mobilenet import DeeplabMobileNet  # the second network (examples/mobilenet/)
            self.G = DeeplabMobileNet(net["widthMult"], cfg["numClasses"], net["headChannels"], net["outputStride"]).to(dtype)
        else:
            self.G = DeeplabMulti(tuple(net["blocks"]), net["width"], cfg["numClasses"], net["asppBranches"]).to(dtype)
        self.G.train()  # model.train(): train-mode BN (§1.5)
        set_bn_mode(self.G, cfg["bnMode"])
        self.adversarial = self.variant not in ("source-only", "oracle", "minent")
        self.models = {"G": self.G}
        if self.adversarial:
            self.D1 = FCDiscriminator(cfg["numClasses"], cfg["ndf"]).to(dtype)
            self.D2 = FCDiscriminator(cfg["numClasses"], cfg["ndf"]).to(dtype)
            self.models.update(D1=self.D1, D2=self.D2)
        if cfg["duplicateVisits"]:
            self.optG = OfficialSgd(self.G, cfg)
        else:
            self.optG = make_sgd(self.G, cfg)
        if self.adversarial:
            # The official (0.9, 0.99) and 1e-8 unless the case sets them (run-time hyperparameters).
            betas, eps = (cfg.get("adamBeta1", 0.9), cfg.get("adamBeta2", 0.99)), cfg.get("adamEpsilon", 1e-8)
            if cfg["adamEps"] == "pytorch0.4":
                self.optD1 = Adam04(self.D1.parameters(), cfg["learningRateD"], betas, eps)
                self.optD2 = Adam04(self.D2.parameters(), cfg["learningRateD"], betas, eps)
            else:
                self.optD1 = torch.optim.Adam(self.D1.parameters(), lr=cfg["learningRateD"], betas=betas, eps=eps)
                self.optD2 = torch.optim.Adam(self.D2.parameters(), lr=cfg["learningRateD"], betas=betas, eps=eps)

    def _set_lr(self, i):
        cfg = self.cfg
        lr = poly(cfg["learningRate"], i, cfg["numSteps"], cfg["power"])
        if isinstance(self.optG, OfficialSgd):
            self.optG.lr = lr
        else:
            self.optG.param_groups[0]["lr"] = lr
            self.optG.param_groups[1]["lr"] = 10 * lr
        if self.adversarial:
            lr_d = poly(cfg["learningRateD"], i, cfg["numSteps"], cfg["power"])
            for opt in (self.optD1, self.optD2):
                if isinstance(opt, Adam04):
                    opt.lr = lr_d
                else:
                    opt.param_groups[0]["lr"] = lr_d

    def _d_input(self, logits):
        p = F.softmax(logits, dim=1)
        return self_information(p) if self.variant == "advent" else p

    def iteration(self, i, source_image, source_label, target_image):
        """§3.4 in order; returns the six losses (those the variant has)."""
        cfg = self.cfg
        gan = cfg["gan"]
        hs, ws = cfg["sourceSize"]
        ht, wt = cfg["targetSize"]
        # 1. reset gradients, set learning rates
        self.optG.zero_grad()
        if self.adversarial:
            self.optD1.zero_grad()
            self.optD2.zero_grad()
        self._set_lr(i)
        losses = {}
        if self.adversarial:
            # 2. freeze the discriminators
            for p in list(self.D1.parameters()) + list(self.D2.parameters()):
                p.requires_grad_(False)
        # 3. source step (BN forward pass #1)
        aux, main = self.G(source_image)
        pred1, pred2 = up(aux, (hs, ws)), up(main, (hs, ws))
        loss_seg1 = cross_entropy_2d(pred1, source_label, cfg["ignoreLabel"])
        loss_seg2 = cross_entropy_2d(pred2, source_label, cfg["ignoreLabel"])
        (loss_seg2 + cfg["lambdaSeg"] * loss_seg1).backward()
        losses.update(loss_seg1=loss_seg1.item(), loss_seg2=loss_seg2.item())
        if self.adversarial:
            # 4. target step for G (BN forward pass #2), through the frozen discriminators
            aux_t, main_t = self.G(target_image)
            pred_t1, pred_t2 = up(aux_t, (ht, wt)), up(main_t, (ht, wt))
            loss_adv1 = gan_loss(gan, self.D1(self._d_input(pred_t1)), 0)
            loss_adv2 = gan_loss(gan, self.D2(self._d_input(pred_t2)), 0)
            (cfg["lambdaAdvTarget1"] * loss_adv1 + cfg["lambdaAdvTarget2"] * loss_adv2).backward()
            # 5. unfreeze
            for p in list(self.D1.parameters()) + list(self.D2.parameters()):
                p.requires_grad_(True)
            # 6. D on detached source predictions (label 0), 7. on target (label 1), each x1/2
            l_d1_s = gan_loss(gan, self.D1(self._d_input(pred1.detach())), 0) / 2
            l_d2_s = gan_loss(gan, self.D2(self._d_input(pred2.detach())), 0) / 2
            l_d1_s.backward()
            l_d2_s.backward()
            l_d1_t = gan_loss(gan, self.D1(self._d_input(pred_t1.detach())), 1) / 2
            l_d2_t = gan_loss(gan, self.D2(self._d_input(pred_t2.detach())), 1) / 2
            l_d1_t.backward()
            l_d2_t.backward()
            losses.update(loss_adv1=loss_adv1.item(), loss_adv2=loss_adv2.item(),
                          loss_D1=l_d1_s.item() + l_d1_t.item(), loss_D2=l_d2_s.item() + l_d2_t.item())
        # 8. step all optimizers
        self.optG.step()
        if self.adversarial:
            self.optD1.step()
            self.optD2.step()
        return losses

    def state(self):
        """Every parameter, running statistic and optimizer moment, by DSL entry name."""
        out = {}
        for mname, m in self.models.items():
            for key, t in m.state_dict().items():
                if not key.endswith("num_batches_tracked"):
                    out[f"{mname}/{key}"] = t.detach().clone()
        for key, p in self.G.named_parameters():
            if isinstance(self.optG, OfficialSgd):
                buf = self.optG.momentum_buffer(p)
            else:
                buf = self.optG.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                out[f"sgd_G/G.{key}"] = buf.detach().clone()
        if self.adversarial:
            for mname, m, opt in (("D1", self.D1, self.optD1), ("D2", self.D2, self.optD2)):
                for key, p in m.named_parameters():
                    if isinstance(opt, Adam04):
                        if p not in opt.state:
                            continue
                        m1, m2 = opt.moments(p)
                    else:
                        if "exp_avg" not in opt.state[p]:
                            continue
                        m1, m2 = opt.state[p]["exp_avg"], opt.state[p]["exp_avg_sq"]
                    out[f"adam_{mname}/{mname}.{key}.exp_avg"] = m1.detach().clone()
                    out[f"adam_{mname}/{mname}.{key}.exp_avg_sq"] = m2.detach().clone()
        return out
