"""MWAM in your own training loop: an OGM-GE-style audio-visual classifier on synthetic data.

An audio spectrogram encoder (B, 1, F, T) and a video-frame encoder (B, 3, frames, H, W), concatenated into one
head, trained with cross-entropy -- the shape of the official OGM-GE loop, with MWAM plugged in. The data are
synthetic (a seeded generator, a class signal in both modalities), so it runs anywhere:

    python examples/own_training_loop.py --mode grad --steps 40
    python examples/own_training_loop.py --mode hybrid --amp --accumulate 2 --missing 0.25

docs/mwam.md, "MWAM in your own training loop", walks through it; tests/test_example_own_training_loop.py runs it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mwam import MWAM

CLASSES = 4
AUDIO_SHAPE = (1, 64, 48)  # (1, frequency bins, time steps); OGM-GE's spectrograms are (1, 257, 188)
VISUAL_SHAPE = (3, 3, 32, 32)  # (C, T, H, W): 3 RGB frames, channels before time
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1)


class AudioVisual(nn.Module):
    """Two encoders and a concat head; ``audio_head`` / ``visual_head`` are auxiliary heads (Eq. 7)."""

    def __init__(self, classes: int = CLASSES, width: int = 32) -> None:
        super().__init__()
        self.audio = nn.Sequential(  # (B, 1, F, T) -> (B, width)
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 1)), nn.Flatten(), nn.Linear(4 * width, width),  # keeps where the band is
        )  # fmt: skip
        self.visual = nn.Sequential(  # (B, 3, T, H, W) -> (B, width)
            nn.Conv3d(3, 16, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), nn.ReLU(),
            nn.Conv3d(16, width, 3, stride=(1, 2, 2), padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool3d((1, 2, 2)), nn.Flatten(), nn.Linear(4 * width, width),  # keeps the quadrant
        )  # fmt: skip
        self.head = nn.Linear(2 * width, classes)  # OGM-GE's ConcatFusion
        self.audio_head = nn.Linear(width, classes)  # used by --mode loss / hybrid only
        self.visual_head = nn.Linear(width, classes)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a, v = self.audio(audio), self.visual(visual)
        return self.head(torch.cat([a, v], dim=1)), self.audio_head(a), self.visual_head(v)


def synthetic_batch(
    generator: torch.Generator, batch: int, missing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(audio, visual, labels, present): a class-dependent frequency band in the spectrogram and a bright
    quadrant in the frames; ``round(missing * batch)`` samples get a black visual clip after ImageNet
    normalisation (a different constant per channel), marked False in ``present`` (B, 2)."""
    y = torch.randint(0, CLASSES, (batch,), generator=generator)
    audio = torch.randn(batch, *AUDIO_SHAPE, generator=generator)
    bins = torch.arange(AUDIO_SHAPE[1])
    band = (bins.view(1, -1) - (8 + 14 * y).view(-1, 1)).abs() < 3  # (B, F)
    audio = audio + 0.5 * band[:, None, :, None]
    size = VISUAL_SHAPE[-1]
    half = torch.arange(size) // (size // 2)  # 0 in the top / left half, 1 in the other
    quadrant = (half.view(1, -1, 1) == (y // 2).view(-1, 1, 1)) & (half.view(1, 1, -1) == (y % 2).view(-1, 1, 1))
    pixels = 0.3 + 0.4 * torch.rand(batch, *VISUAL_SHAPE, generator=generator) + 0.1 * quadrant[:, None, None]
    absent = torch.zeros(batch, dtype=torch.bool)
    absent[torch.randperm(batch, generator=generator)[: round(missing * batch)]] = True
    pixels[absent] = 0.0  # the loader's placeholder for a missing clip: black frames...
    visual = (pixels - IMAGENET_MEAN) / IMAGENET_STD  # ...normalised like every other clip
    present = torch.stack([torch.ones(batch, dtype=torch.bool), ~absent], dim=1)  # (B, M), MWAM's modality order
    return audio, visual, y, present


def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the samples where ``keep`` is True (0 if none): no host sync."""
    losses = F.cross_entropy(logits.float(), y, reduction="none")
    return (losses * keep).sum() / keep.sum().clamp(min=1)


@dataclass
class Result:
    model: AudioVisual
    mwam: MWAM
    log: list[dict[str, float]] = field(default_factory=list)  # one record().log_dict() (+ loss, K) per step
    accuracy: float = float("nan")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("grad", "loss", "hybrid", "none"), default="grad",
                        help="MWAM's intervention ('none': measure K only, train as without MWAM)")  # fmt: skip
    parser.add_argument("--amp", action="store_true", help="autocast: bfloat16 on CPU, float16 (+ GradScaler) on CUDA")
    parser.add_argument("--accumulate", type=int, default=1, help="micro-batches per optimiser step")
    parser.add_argument("--missing", type=float, default=0.0, help="fraction of samples without the visual input")
    parser.add_argument("--per-element", action="store_true",
                        help="frm_normalisation='per_element': compare the mean Eq. 4 term, not the sum")  # fmt: skip
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps")
    parser.add_argument("--batch", type=int, default=16, help="micro-batch size")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.accumulate < 1 or not 0.0 <= args.missing < 1.0:
        parser.error("--accumulate must be >= 1 and --missing in [0, 1)")
    return args


def main(argv: Sequence[str] | None = None) -> Result:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = AudioVisual().to(device)
    # K per micro-batch through gradient hooks (default), or -- with --accumulate N -- once per optimiser step.
    per_step = args.accumulate > 1 and args.mode in ("grad", "hybrid")
    mwam = MWAM(
        branches={"audio": model.audio, "visual": model.visual},  # the parameters whose gradients K scales
        intervention=args.mode,
        layouts={"visual": "video"},  # (B, C, T, H, W): each frame cut into 8 x 8 patches, not 8 x 8 x 8 cubes
        gradient_hooks=not per_step,
        frm_normalisation="per_element" if args.per_element else "none",  # "none": Eq. 4 summed, the paper
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp and amp_dtype == torch.float16)
    generator = torch.Generator().manual_seed(args.seed + 1)
    result = Result(model, mwam)

    for step in range(1, args.steps + 1):
        model.train()
        optimizer.zero_grad(set_to_none=True)
        weights, losses, visual_present = [], [], []
        for _ in range(args.accumulate):
            audio, visual, y, present = (t.to(device) for t in synthetic_batch(generator, args.batch, args.missing))
            # 1. measure: the fp32 batch as the loader gives it, before any autocast, with the loader's mask
            weights.append(mwam.step({"audio": audio, "visual": visual}, present=present))
            # 2. forward / loss as usual (autocast only around the model and the loss)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
                fused, aux_audio, aux_visual = model(audio, visual)
                loss = F.cross_entropy(fused.float(), y)
                if args.mode in ("loss", "hybrid"):  # Eq. 7: L_fused + sum_i K_i L_aux_i (K of this micro-batch)
                    loss = mwam.weighted_loss(loss, {
                        "audio": masked_cross_entropy(aux_audio, y, present[:, 0]),
                        "visual": masked_cross_entropy(aux_visual, y, present[:, 1]),
                    })  # fmt: skip
            # 3. backward: with hooks, the branches' gradients arrive multiplied by this micro-batch's K
            scaler.scale(loss / args.accumulate).backward()
            losses.append(loss.detach())
            visual_present.append(present[:, 1].cpu())
        k = torch.stack(weights).mean(dim=0)  # the K applied this step (the only one when --accumulate 1)
        if per_step:  # gradient_hooks=False: scale the accumulated .grad once, by the mean K of the micro-batches
            scaler.unscale_(optimizer)  # unscale first (a gradient clip would go after this line)
            mwam.scale_gradients(k)
        scaler.step(optimizer)
        scaler.update()

        total = torch.stack(losses).mean().item()  # the step's loss (syncs, like every logging read)
        logs = mwam.record().log_dict()  # FRM, bank, T, K, present of the last micro-batch (one device sync)
        logs.update({"loss": total, "K/audio": float(k[0]), "K/visual": float(k[1])})
        result.log.append(logs)
        mask = "".join("1" if p else "0" for p in torch.cat(visual_present).tolist())
        print(f"step {step:3d}  loss {total:.4f}  K audio {k[0]:.4f} visual {k[1]:.4f}  visual present {mask}")

    model.eval()
    audio, visual, y, _ = synthetic_batch(torch.Generator().manual_seed(args.seed + 10_000), 256)
    with torch.no_grad():
        predicted = model(audio.to(device), visual.to(device))[0].argmax(dim=1).cpu()
    result.accuracy = (predicted == y).float().mean().item()
    print(f"held-out accuracy {result.accuracy:.3f} ({len(y)} synthetic samples)")
    return result


if __name__ == "__main__":
    main()
