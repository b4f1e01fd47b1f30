"""Run presets: ``paper`` (the paper's settings on the real data), ``smoke`` and ``demo`` (synthetic data).

Synthetic presets generate their data set once, in the real on-disk layout, under ``results/cache/synthetic/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRESETS = ("paper", "smoke", "demo")
CACHE = Path("results") / "cache" / "synthetic"

MISSING_DATA = """\
The paper preset trains on the real {name} data set, and no data root was given.
  Where to get it: {source}
  Where to put it: anywhere; pass --data-root PATH or set MWAM_DATA_ROOT=PATH.
  Expected layout: {layout}
  No data? Run the same pipeline on synthetic data in the same layout: --preset smoke (seconds) or
  --preset demo (minutes); its tables are labelled synthetic.
"""

DATA_SOURCES = {
    "casia_surf": (
        "CASIA-SURF (CVPR 2019 / ChaLearn face anti-spoofing), on request from its authors at CBSR, Institute of "
        "Automation, Chinese Academy of Sciences; see docs/datasets.md",
        "ROOT/train_list.txt, val_private_list.txt, test_private_list.txt (lines: rgb depth ir label, paths "
        "relative to ROOT) and the image folders they list",
    ),
}


@dataclass(frozen=True)
class Preset:
    name: str
    synthetic: bool
    run: dict[str, Any] = field(default_factory=dict)  # RunConfig overrides
    data: dict[str, Any] = field(default_factory=dict)  # synthetic generator arguments
    trainer_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per training method


PRESET_SETTINGS = {
    # Sec. 5.2 / A.3: batch 64, 100 epochs, SGD 1e-3, momentum 0.9, wd 5e-4, 5-epoch warm-up, /10 every 30 epochs.
    "paper": Preset("paper", False, {"epochs": 100, "batch_size": 64, "warmup_epochs": 5, "milestones": (30, 60, 90)}),
    # Synthetic presets shrink the images (crop 40 / 64 instead of 112) so that SF-MD trains on a 2-core CPU; 40 keeps
    # layer4 at 2 x 2 pixels, so that batch size 1 still trains (Table 10).
    "smoke": Preset(
        "smoke",
        True,
        {
            "epochs": 2,
            "batch_size": 8,
            "warmup_epochs": 1,
            "milestones": (),
            "eval_batch_size": 32,
            "lr": 1e-2,
            "log_every": 2,
            "data_options": {"resize": 52, "crop": 40},
        },
        # 64 training images: Table 10's batch size 64 still gets one step per epoch.
        {"num_train": 64, "num_val": 16, "num_test": 32, "size": 48},
        # MMANet in 2 epochs: search after epoch 0, weak combination fixed then, full loss in epoch 1.
        {"mmanet": {"search_epochs": (0,), "begin_epoch": 0}},
    ),
    "demo": Preset(
        "demo",
        True,
        {
            "epochs": 6,
            "batch_size": 32,
            "warmup_epochs": 1,
            "milestones": (5,),
            "eval_batch_size": 64,
            "lr": 1e-2,
            "log_every": 4,
            "data_options": {"resize": 84, "crop": 64},
        },
        {"num_train": 384, "num_val": 64, "num_test": 192, "size": 96},
        # MMANet in 6 epochs: search after epochs 1 and 2, full loss from epoch 3 on.
        {"mmanet": {"search_epochs": (1, 2), "begin_epoch": 2}},
    ),
}


def preset(name: str) -> Preset:
    if name not in PRESET_SETTINGS:
        raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")
    return PRESET_SETTINGS[name]


def resolve_data_root(dataset: str, chosen: Preset, data_root: str | None) -> str:
    """The real data root (``--data-root`` or ``MWAM_DATA_ROOT``) or the synthetic set, generated when missing."""
    if not chosen.synthetic:
        root = data_root or os.environ.get("MWAM_DATA_ROOT")
        if not root:
            source, layout = DATA_SOURCES.get(dataset, ("see docs/datasets.md", "see docs/datasets.md"))
            raise ValueError(MISSING_DATA.format(name=dataset, source=source, layout=layout))
        if not Path(root).is_dir():
            raise ValueError(f"data root {root} is not a directory")
        return str(root)
    if data_root:
        raise ValueError(f"--preset {chosen.name} uses synthetic data; drop --data-root or use --preset paper")
    if dataset != "casia_surf":
        raise ValueError(f"no synthetic generator for {dataset} yet")
    from datasets.synthetic import write_casia_surf

    return str(write_casia_surf(CACHE / f"casia_surf_{chosen.name}", **chosen.data))
