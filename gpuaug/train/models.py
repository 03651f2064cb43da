"""Models for the trainer: torchvision ImageNet ResNets plus small local CIFAR networks.

ImageNet architectures come from ``torchvision.models`` unchanged. The CIFAR papers use
networks torchvision does not ship, so they are defined here from their papers'
descriptions: Wide ResNet (Zagoruyko & Komodakis, 2016; WRN-40-2, WRN-40-4, WRN-28-10),
ResNeXt-29 (Xie et al., 2017; 32x4d at 32x32), pre-activation ResNet-18 (He et al., 2016;
NoisyMix's CIFAR network), and ``tiny``, a three-stage CNN for tests and the built-in demo.

Every local network names its stages ``layer1``, ``layer2``, ``layer3`` (as torchvision's
ResNets do), which is all the NoisyMix feature-mixup hooks need.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                     "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d")
LOCAL_ARCHS = ("wrn40_2", "wrn40_4", "wrn28_10", "resnext29_32x4d", "preact_resnet18", "tiny")
ARCHS = TORCHVISION_ARCHS + LOCAL_ARCHS


# ----------------------------------------------------------------------------- Wide ResNet
class _WideBlock(nn.Module):
    """Pre-activation basic block (BN-ReLU-conv3x3 twice) with dropout between the convs."""

    def __init__(self, cin, cout, stride, drop):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop = drop
        self.shortcut = None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        y = self.conv1(o)
        y = F.relu(self.bn2(y))
        if self.drop > 0:
            y = F.dropout(y, p=self.drop, training=self.training)
        return self.conv2(y) + skip


class WideResNet(nn.Module):
    """WRN-depth-k for 32x32 inputs: (depth - 4) / 6 blocks per stage, widths 16k, 32k, 64k."""

    def __init__(self, depth=40, widen=2, num_classes=10, drop=0.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"Wide ResNet depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)

        def stage(cin, cout, stride):
            return nn.Sequential(*[_WideBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, drop)
                                   for i in range(n)])

        self.layer1 = stage(widths[0], widths[1], 1)
        self.layer2 = stage(widths[1], widths[2], 2)
        self.layer3 = stage(widths[2], widths[3], 2)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        _init(self)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------- ResNeXt-29
class _NeXtBlock(nn.Module):
    """Bottleneck with grouped 3x3 conv: 1x1 (cardinality * width) - 3x3 grouped - 1x1."""

    def __init__(self, cin, cout, stride, cardinality, width):
        super().__init__()
        d = cardinality * width
        self.conv1, self.bn1 = nn.Conv2d(cin, d, 1, bias=False), nn.BatchNorm2d(d)
        self.conv2, self.bn2 = nn.Conv2d(d, d, 3, stride, 1, groups=cardinality, bias=False), nn.BatchNorm2d(d)
        self.conv3, self.bn3 = nn.Conv2d(d, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNeXt29(nn.Module):
    """ResNeXt-29 (cardinality 32, bottleneck width 4) for 32x32: 3 stages of 3 blocks,
    outputs 256, 512, 1024 channels, bottleneck width doubling per stage."""

    def __init__(self, num_classes=10, cardinality=32, width=4):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64)
        cin, stages = 64, []
        for i, cout in enumerate((256, 512, 1024)):
            blocks = [_NeXtBlock(cin if b == 0 else cout, cout, (1 if i == 0 else 2) if b == 0 else 1,
                                 cardinality, width * 2 ** i) for b in range(3)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(1024, num_classes)
        _init(self)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------- PreAct ResNet-18
class _PreActBlock(nn.Module):
    """BN-ReLU-conv3x3 twice; the shortcut (identity, or a 1x1 conv when the shape changes)
    takes the pre-activated input BN-ReLU(x), as in the NoisyMix authors' network."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = nn.Identity() if (stride == 1 and cin == cout) else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv1(o)
        return self.conv2(F.relu(self.bn2(y))) + self.shortcut(o)


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 for 32x32 (4 stages of 2 blocks, 64..512 channels), as
    NoisyMix's CIFAR code builds it: no BN-ReLU after the last stage (global average
    pooling and the classifier read the last block's sum directly), PyTorch's default
    initialisation."""

    def __init__(self, num_classes=10, base=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 3, 1, 1, bias=False)
        widths = [base, base * 2, base * 4, base * 8]
        cin, stages = base, []
        for i, cout in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(_PreActBlock(cin, cout, stride), _PreActBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(cin, num_classes)  # PyTorch's default initialisation, as the authors' code

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# ----------------------------------------------------------------------------- tiny
class TinyNet(nn.Module):
    """Three conv stages (conv-BN-ReLU, stride 2 after the first), global pooling, linear.
    For tests and the built-in demo; any input size >= 8."""

    def __init__(self, num_classes=10, width=16):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())

        def stage(cin, cout, stride):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

        self.layer1 = stage(width, width, 2)
        self.layer2 = stage(width, 2 * width, 2)
        self.layer3 = stage(2 * width, 4 * width, 2)
        self.fc = nn.Linear(4 * width, num_classes)
        _init(self)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _init(model: nn.Module) -> None:
    """He-normal convs, unit BN, zero biases (the usual CIFAR initialisation)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


def build_model(arch: str, num_classes: int, pretrained: bool = False, drop: float | None = None) -> nn.Module:
    """A freshly initialised network. ``pretrained`` loads torchvision's ImageNet weights
    (downloaded by torchvision into its cache on first use; the classifier is replaced when
    ``num_classes`` is not 1000). ``drop``: Wide ResNet dropout (PixMix uses 0.3)."""
    arch = arch.lower().replace("-", "_")
    if arch in TORCHVISION_ARCHS:
        import torchvision

        builder = getattr(torchvision.models, arch)
        if pretrained:
            model = builder(weights="DEFAULT")
            if num_classes != model.fc.out_features:
                model.fc = nn.Linear(model.fc.in_features, num_classes)
            return model
        return builder(weights=None, num_classes=num_classes)
    if pretrained:
        raise ValueError(f"--pretrained is only available for torchvision architectures, not {arch!r}")
    if arch.startswith("wrn"):
        depth, widen = (int(v) for v in arch[3:].split("_"))
        return WideResNet(depth, widen, num_classes, drop=0.0 if drop is None else drop)
    if arch == "resnext29_32x4d":
        return ResNeXt29(num_classes)
    if arch == "preact_resnet18":
        return PreActResNet18(num_classes)
    if arch == "tiny":
        return TinyNet(num_classes)
    raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
