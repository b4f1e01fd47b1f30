"""Quick start: MWAM in any two-branch network (the README's "Use MWAM in your own model" is this file's code).

    python examples/quick_start.py

tests/test_repository.py checks that the README quotes it exactly and runs it; a complete training loop (video
input, loss / hybrid modes, AMP, accumulation, missing inputs, logging) is examples/own_training_loop.py.
"""

import torch
from torch import nn

from mwam import MWAM


class TwoStream(nn.Module):  # any network with one branch per modality
    def __init__(self):
        super().__init__()
        self.rgb = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.depth = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(16, 2)

    def forward(self, rgb, depth):
        return self.head(torch.cat([self.rgb(rgb), self.depth(depth)], dim=1))


net = TwoStream()
mwam = MWAM(branches={"rgb": net.rgb, "depth": net.depth})  # gradient editing, the paper's defaults
opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
for _ in range(3):
    rgb, depth, y = torch.randn(8, 3, 64, 64), torch.randn(8, 3, 64, 64), torch.randint(0, 2, (8,))  # 3-channel depth
    mwam.step({"rgb": rgb, "depth": depth})  # K (Eq. 5-6) from this batch's FRMs (Eq. 4); bank (Eq. 2) updated
    nn.functional.cross_entropy(net(rgb, depth), y).backward()  # branch gradients scaled by K
    opt.step()
    opt.zero_grad()
