"""PreActResNet-18 as NoisyMix's CIFAR code builds it: no BN-ReLU after the last stage and
an identity shortcut that carries the pre-activated input BN-ReLU(x), not x."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from gpuaug.train.models import PreActResNet18, build_model


def test_no_batch_norm_after_the_last_stage():
    model = build_model("preact_resnet18", 10)
    top = [name for name, _ in model.named_children()]
    assert top == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.children())
    bns = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert bns == 16  # 8 blocks x 2, none at the top level
    assert sum(p.numel() for p in model.parameters()) == 11_171_146  # the authors' network at 10 classes


def test_logits_are_the_classifier_on_the_pooled_last_block():
    torch.manual_seed(0)
    model = PreActResNet18(10).eval()
    x = torch.randn(2, 3, 32, 32)
    h = model.layer4(model.layer3(model.layer2(model.layer1(model.conv1(x)))))
    assert torch.allclose(model(x), model.fc(h.mean(dim=(2, 3))), atol=1e-5)


def test_identity_shortcut_takes_the_pre_activated_input():
    torch.manual_seed(0)
    block = PreActResNet18(10).layer1[1].eval()  # 64 -> 64, stride 1: identity shortcut
    with torch.no_grad():
        block.bn1.running_mean.uniform_(-1, 1)  # make BN-ReLU(x) clearly differ from x
    x = torch.randn(2, 64, 8, 8)
    o = F.relu(block.bn1(x))
    residual = block.conv2(F.relu(block.bn2(block.conv1(o))))
    assert torch.allclose(block(x), residual + o, atol=1e-5)
    assert not torch.allclose(block(x), residual + x, atol=1e-3)


def test_projection_shortcut_is_a_1x1_conv_on_the_pre_activated_input():
    block = PreActResNet18(10).layer2[0].eval()  # 64 -> 128, stride 2
    assert isinstance(block.shortcut, nn.Conv2d) and block.shortcut.kernel_size == (1, 1)
    x = torch.randn(2, 64, 8, 8)
    o = F.relu(block.bn1(x))
    residual = block.conv2(F.relu(block.bn2(block.conv1(o))))
    assert torch.allclose(block(x), residual + block.shortcut(o), atol=1e-5)


def test_default_pytorch_initialisation_as_the_authors_code():
    import math

    torch.manual_seed(0)
    model = PreActResNet18(10)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):  # kaiming_uniform(a=sqrt(5)): |w| <= 1 / sqrt(fan_in)
            fan_in = m.weight[0].numel()
            assert m.weight.abs().max() <= 1 / math.sqrt(fan_in) + 1e-7
