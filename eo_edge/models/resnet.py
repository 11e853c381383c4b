"""The paper's CIFAR-style ResNet8/ResNet16 students (16/32/64 channels).

Exactly the architecture of the authors' notebook ``Inference_KD_resnet8_dualKD.ipynb``
(ltdung/SnT-SENTRY, CC0), so their state_dicts load as they are: ``conv`` 3x3 3->16,
``bn``, ReLU; ``layer1..3`` of :class:`ResidualBlock` (16, 32, 64 channels, strides 1, 2, 2;
one block per stage for ResNet8, two for ResNet16); ``avg_pool`` = AdaptiveAvgPool2d(3);
``fc`` = Linear(576, num_classes). ResNet8 with 10 classes has 103,642 parameters.
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """Basic residual block: conv3x3(stride s)-BN-ReLU-conv3x3-BN, + shortcut, ReLU.

    The shortcut is ``downsample`` = Sequential(conv3x3 stride s, BN) when the stride or the
    width changes (the authors used a 3x3, not the usual 1x1, projection), else identity.
    Input (N, in_ch, H, W) float32 -> output (N, out_ch, H/s, W/s).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetCifar(nn.Module):
    """CIFAR-style ResNet with ``blocks`` residual blocks per stage.

    Args:
        blocks: blocks per stage (1 = ResNet8, 2 = ResNet16).
        num_classes: number of output logits.
        in_chans: input channels (3 for RGB, 13 for Sentinel-2 L1C, ...).

    Forward: float32 (N, in_chans, H, W), H, W >= 12 -> logits float32 (N, num_classes).
    """

    def __init__(self, blocks: int = 1, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(16, 16, blocks, 1)
        self.layer2 = self._stage(16, 32, blocks, 2)
        self.layer3 = self._stage(32, 64, blocks, 2)
        self.avg_pool = nn.AdaptiveAvgPool2d(3)
        self.fc = nn.Linear(64 * 9, num_classes)

    @staticmethod
    def _stage(in_ch: int, out_ch: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [ResidualBlock(in_ch, out_ch, stride)]
        layers += [ResidualBlock(out_ch, out_ch, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avg_pool(x)
        return self.fc(torch.flatten(x, 1))


def resnet8(num_classes: int = 10, **_: object) -> ResNetCifar:
    """ResNet8 student (1 block per stage; 103,642 parameters at 10 classes)."""
    return ResNetCifar(1, num_classes)


def resnet16(num_classes: int = 10, **_: object) -> ResNetCifar:
    """ResNet16 student (2 blocks per stage)."""
    return ResNetCifar(2, num_classes)
