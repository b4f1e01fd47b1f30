"""CASIA-SURF (RGB / Depth / IR face anti-spoofing): the registered data set and its presets.

``loader.py`` reads the real layout (the authors' preprocessing), ``synthetic.py`` writes a stand-in in that layout,
``check.py`` verifies a root (``python -m reproduce check-data casia_surf ROOT``). This module imports neither
torch nor OpenCV: the run configuration and the planner read it.
"""

from __future__ import annotations

from mwam_harness.datasets.casia_surf.schedules import SCHEDULES
from mwam_harness.datasets.registry import DatasetPreset, DatasetSpec, SubsetOrder, register_dataset

MODALITIES: tuple[str, ...] = ("rgb", "depth", "ir")
SPLITS: dict[str, str] = {"train": "train_list.txt", "val": "val_private_list.txt", "test": "test_private_list.txt"}

PRESETS = {
    # Sec. 5.2 / A.3: batch 64, 100 epochs, SGD 1e-3, momentum 0.9, wd 5e-4 (the run configuration's defaults), the
    # paper's schedule of each host (no warm-up; schedules.py), fp32. The paper does not say which epoch it reports:
    # the authors' code keeps the best validation accuracy after epoch 30, validating under the host's own random
    # modality dropout (docs/training.md, "Where this differs from the authors' code").
    "paper": DatasetPreset(
        "paper",
        synthetic=False,
        run={
            "schedule": {"preset": "paper"},
            "eval": {
                "select": "best_val",
                "select_metric": "acc",
                "select_after": 30,
                "select_inputs": "training_dropout",
            },
        },
        # CRMT-JT (Table 17): the 100 epochs of every column for its step 1, then its step 2 (only the per-class
        # scales) for 100 // 3 = 33 more, as the authors' n_epochs + n_epochs // 3 (plug-in crmt's scale_epochs); the
        # evaluated weights are chosen, as every column's, by validation accuracy, but among the step-2 epochs only
        # (the model CRMT certifies).
        host_runs={"resnet18_crmt": {"train": {"epochs": 133}, "eval": {"select_after": 99}}},
    ),
    # Synthetic presets shrink the images (crop 40 / 64 instead of 112) so that SF-MD trains on a 2-core CPU; 40
    # keeps layer4 at 2 x 2 pixels, so that batch size 1 still trains (Table 10).
    "smoke": DatasetPreset(
        "smoke",
        synthetic=True,
        run={
            "data": {"options": {"resize": 52, "crop": 40}},
            "train": {"epochs": 2, "batch_size": 8},
            "optim": {"lr": 1e-2},
            "schedule": {"warmup_epochs": 1, "milestones": ()},
            "eval": {"batch_size": 32},
        },
        runtime={"log_every": 2},
        # 64 training images: Table 10's batch size 64 still gets one step per epoch.
        generator={"num_train": 64, "num_val": 16, "num_test": 32, "size": 48},
        # MMANet in 2 epochs: search after epoch 0, weak combination fixed then, full loss in epoch 1.
        methods={"mmanet": {"search_epochs": (0,), "begin_epoch": 0}},
    ),
    "demo": DatasetPreset(
        "demo",
        synthetic=True,
        run={
            "data": {"options": {"resize": 84, "crop": 64}},
            "train": {"epochs": 6, "batch_size": 32},
            "optim": {"lr": 1e-2},
            "schedule": {"warmup_epochs": 1, "milestones": (5,)},
            "eval": {"batch_size": 64},
        },
        runtime={"log_every": 4},
        generator={"num_train": 384, "num_val": 64, "num_test": 192, "size": 96},
        # MMANet in 6 epochs: search after epochs 1 and 2, full loss from epoch 3 on.
        methods={"mmanet": {"search_epochs": (1, 2), "begin_epoch": 2}},
    ),
}

#: The paper's subset rows (reproduce.subsets, ``python -m reproduce subsets casia_surf``) and why.
SUBSETS = SubsetOrder(
    header=(("rgb", "Rgb"), ("depth", "Depth"), ("ir", "Ir")),
    order=(("rgb",), ("depth",), ("ir",), ("rgb", "depth"), ("rgb", "ir"), ("depth", "ir"), ("rgb", "depth", "ir")),
    evidence=(
        "MMANet/MWAM test scripts loop p over [1,0,0],[0,1,0],[0,0,1],[1,1,0],[1,0,1],[0,1,1],[1,1,1] "
        "(R, D, I, RD, RI, DI, RDI). Table 1 confirms it: the text says losing Depth hurts most and losing "
        "RGB least -- row 5 (RI) is the lowest pair (92.24) and row 6 (DI) the highest (97.79) -- and the "
        "FRM column is largest in row 2 (Depth, 2.33e10), the modality the paper calls dominant."
    ),
)

SPEC = register_dataset(
    DatasetSpec(
        name="casia_surf",
        title="CASIA-SURF",
        modalities=MODALITIES,
        task="classification",
        num_classes=2,
        metric="pad",
        splits=SPLITS,
        source=(
            "CASIA-SURF (CVPR 2019 / ChaLearn face anti-spoofing), on request from its authors at CBSR, Institute of "
            "Automation, Chinese Academy of Sciences; see docs/datasets.md"
        ),
        layout=(
            "ROOT/train_list.txt, val_private_list.txt, test_private_list.txt (lines: rgb depth ir label, paths "
            "relative to ROOT) and the image folders they list"
        ),
        loader="mwam_harness.datasets.casia_surf.loader:CasiaSurfDataset",
        generator="mwam_harness.datasets.casia_surf.synthetic:write_casia_surf",
        checker="mwam_harness.datasets.casia_surf.check:check_data",
        presets=PRESETS,
        subsets=SUBSETS,
        schedules=SCHEDULES,
    )
)
