"""BraTS2020 (FLAIR / T1ce / T1 / T2 brain-tumour MRI): the registered data set and its presets.

Two layouts (docs/datasets.md): the **raw** one from the challenge
(``MICCAI_BraTS2020_TrainingData/BraTS20_Training_XXX/BraTS20_Training_XXX_{flair,t1ce,t1,t2,seg}.nii.gz``) and the
**prepared** one the hosts read -- the authors' preprocessed layout (``vol/<case>_vol.npy`` (H, W, D, 4) float32 in
the order flair, t1ce, t1, t2; ``seg/<case>_seg.npy`` (H, W, D) uint8 labels 0-3; split lists of case names), with a
``val.txt`` beside their ``train.txt`` / ``test.txt``. ``python -m reproduce prepare brats2020 RAW OUT`` turns the
first into the second (``prepare.py``, the authors' ``preprocess.py`` step by step); runs read the prepared root.
``loader.py`` reads it (memory-mapped), ``transforms.py`` holds the training augmentation as MONAI dictionary
transforms, ``synthetic.py`` writes a raw stand-in with real NIfTI files, ``check.py`` verifies either layout.
This module imports neither torch nor nibabel: the run configuration and the planner read it.

Its runs train the 3-D segmentation task (``reproduce/tasks/segmentation3d.py``) with the hosts RFNet and mmFormer
and the GSS method (RFNet trained further, ``reproduce/methods/gss.py``).
"""

from __future__ import annotations

from mwam_harness.datasets.registry import DatasetPreset, DatasetSpec, SubsetOrder, register_dataset

MODALITIES: tuple[str, ...] = ("flair", "t1ce", "t1", "t2")
SPLITS: dict[str, str] = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
#: Sec. 5.1: 219 / 50 / 100 subjects for training / validation / test (369 in the BraTS2020 training set).
SPLIT_SIZES: dict[str, int] = {"train": 219, "val": 50, "test": 100}

# A.3 / the authors' RFNet job.sh: batch 2, 300 epochs of 150 iterations, random 80^3 crops, Adam (amsgrad, betas
# 0.9 / 0.999), lr 2e-4, poly schedule (power 0.9, once per epoch). Weight decay: A.3 says 1e-5 for RFNet (the
# authors' job.sh: 1e-4) and 1e-4 for mmFormer, which A.3 trains 1000 epochs (``host_runs``). GSS's stages train
# with RFNet's settings (Sec. 5.1: "the experimental configuration of the respective underlying model"; the GSS
# script's default weight decay is 1e-4); docs/training.md lists the differences.
_PAPER_RUN = {
    "data": {"options": {"crop": 80}},
    "train": {"epochs": 300, "batch_size": 2, "iterations_per_epoch": 150},
    "optim": {"name": "adam", "lr": 2e-4, "weight_decay": 1e-5, "amsgrad": True},
    "schedule": {"name": "poly", "power": 0.9},
    "eval": {"batch_size": 1},
}

# mmFormer's "epoch" (its train.py: ``iter_per_epoch = len(train_loader)``). Their ``MultiEpochsDataLoader``'s
# length is its batch sampler's (``drop_last`` off): the number of *batches*, ceil(cases / batch) -- 110 at the
# paper's batch 2 on the 219 training cases (28 at the authors' batch 8), not 219. The paper is silent, so the
# released value decides: the paper preset runs 110 iterations an epoch (1000 epochs = 110,000 steps). The other
# reading, one iteration per training case (219, 219,000 steps: twice the compute), stays a named option.
#: ``loader`` -- the released code's epoch (the paper preset's); ``cases`` -- 219 iterations, one a training case.
MMFORMER_EPOCH_MODES: tuple[str, ...] = ("loader", "cases")


def mmformer_iterations_per_epoch(
    mode: str = "loader", batch_size: int = 2, train_cases: int = SPLIT_SIZES["train"]
) -> int:
    """mmFormer's iterations per epoch: ``loader`` -- ``len(train_loader)`` of the authors' loader, ceil(cases /
    batch) (110 at batch 2, 28 at batch 8); ``cases`` -- the number of training cases (219). A run takes the second
    with ``--set train.iterations_per_epoch=219`` (docs/training.md)."""
    if mode not in MMFORMER_EPOCH_MODES:
        raise ValueError(f"mode must be one of {MMFORMER_EPOCH_MODES}, got {mode!r}")
    return train_cases if mode == "cases" else -(-train_cases // batch_size)


_PAPER_HOST_RUNS = {
    "mmformer": {
        "train": {
            "epochs": 1000,
            "iterations_per_epoch": mmformer_iterations_per_epoch("loader", _PAPER_RUN["train"]["batch_size"]),
        },
        "optim": {"weight_decay": 1e-4},
    }
}

PRESETS = {
    # Per-epoch validation is cheap: the full set of the first 5 validation cases (a 15-subset sliding-window pass
    # over all 50 would cost more than the epoch); every 25th epoch all 15 subsets of those 5 cases (75 sliding-
    # window passes, estimated at about three epochs' forward-backward compute: roughly +12 % over the run, not
    # measured on a GPU), so W&B shows every subset's Dice 12 times in 300 epochs. The final evaluation is the full
    # protocol.
    "paper": DatasetPreset(
        "paper",
        synthetic=False,
        run=_PAPER_RUN,
        runtime={"val_every": 1, "val_cases": 5, "val_subsets": "full", "val_all_every": 25},
        host_runs=_PAPER_HOST_RUNS,
    ),
    # Synthetic presets: small volumes (the prepare step keeps its 128-voxel minimum window, clamped to the
    # volume), 32^3 crops, a few iterations: the pipeline on a 2-core CPU.
    "smoke": DatasetPreset(
        "smoke",
        synthetic=True,
        run={
            "data": {"options": {"crop": 32}},
            "train": {"epochs": 2, "batch_size": 2, "iterations_per_epoch": 2},
            "optim": {"name": "adam", "lr": 2e-3, "weight_decay": 1e-5, "amsgrad": True},
            "schedule": {"name": "poly", "power": 0.9},
            "eval": {"batch_size": 1},
        },
        runtime={"val_every": 1, "val_cases": 1, "val_subsets": "full", "val_all_every": 2, "log_every": 1},
        generator={"num_cases": 10, "shape": (48, 48, 40), "split": (6, 2, 2)},
        # RFNet's fused term starts at epoch 20 of 300; in two epochs it starts at the second. mmFormer's token grid
        # is the crop / 16. GSS: two stages (RFNet -> stage 1 -> stage 2) instead of five.
        hosts={"rfnet": {"fused_loss_start_epoch": 1}, "mmformer": {"patch_size": 2}},
        methods={"gss": {"stage": 2}},
    ),
    # The demo: a set RFNet learns in 150 steps on a 2-core CPU (whole-tumour Dice about 90 on the full set, the
    # subsets without FLAIR or T2 lowest). Its tumours are larger than the smoke set's (radius 0.5-0.65 of the
    # half-extent, 6-9 % of the voxels: in 72 steps on the smaller ones RFNet still marked most of the brain as
    # tumour, Dice ~22), on 32^3 volumes with 24^3 crops (0.65 s a step) and 8 windows a test volume. mmFormer's
    # token grid is the crop / 16: its columns crop 32^3 (the whole volume).
    "demo": DatasetPreset(
        "demo",
        synthetic=True,
        run={
            "data": {"options": {"crop": 24}},
            "train": {"epochs": 25, "batch_size": 2, "iterations_per_epoch": 6},
            "optim": {"name": "adam", "lr": 2e-3, "weight_decay": 1e-5, "amsgrad": True},
            "schedule": {"name": "poly", "power": 0.9},
            "eval": {"batch_size": 1},
        },
        runtime={"val_every": 5, "val_cases": 3, "val_subsets": "full", "val_all_every": 25, "log_every": 6},
        generator={"num_cases": 24, "shape": (32, 32, 32), "split": (16, 3, 5), "tumour_size": (0.5, 0.65)},
        hosts={"rfnet": {"fused_loss_start_epoch": 1}, "mmformer": {"patch_size": 2}},
        host_runs={"mmformer": {"data": {"options": {"crop": 32}}}},
        methods={"gss": {"stage": 2}},
    ),
}

#: The paper's subset rows (reproduce.subsets, ``python -m reproduce subsets brats2020``) and why.
SUBSETS = SubsetOrder(
    header=(("flair", "F"), ("t1", "T1"), ("t1ce", "T1c"), ("t2", "T2")),
    order=(
        ("t2",),
        ("t1ce",),
        ("t1",),
        ("flair",),
        ("t1ce", "t2"),
        ("t1ce", "t1"),
        ("flair", "t1"),
        ("t1", "t2"),
        ("flair", "t2"),
        ("flair", "t1ce"),
        ("flair", "t1ce", "t1"),
        ("flair", "t1", "t2"),
        ("flair", "t1ce", "t2"),
        ("t1ce", "t1", "t2"),
        ("flair", "t1ce", "t1", "t2"),
    ),
    evidence=(
        "RFNet/mmFormer/GSS evaluate the 15 masks in this order (host-facts). The header 'F T1 T1c T2' is the "
        "column order of the check marks, not the row order. Whole-tumour Dice confirms it in every column of "
        "Tables 2 and 15: rows 1 and 4 (T2, FLAIR alone) score ~85 while rows 2-3 (T1c, T1) score 72-75; row 6 "
        "(T1c+T1, the only pair without FLAIR or T2) is the lowest pair; row 14 (T1c+T1+T2, the only triple "
        "without FLAIR) is the lowest triple."
    ),
)

SPEC = register_dataset(
    DatasetSpec(
        name="brats2020",
        title="BraTS2020",
        modalities=MODALITIES,
        task="segmentation3d",
        num_classes=4,
        metric="brats_dice",
        splits=SPLITS,
        source=(
            "BraTS2020 training data (369 subjects) from the challenge site, https://www.med.upenn.edu/cbica/brats2020/"
            " (registration required), or the authors' preprocessed BRATS2020_Training_none_npy from RFNet's README; "
            "see docs/datasets.md"
        ),
        layout=(
            "prepared ROOT/vol/<case>_vol.npy, ROOT/seg/<case>_seg.npy, ROOT/train.txt, val.txt, test.txt "
            "(case names); "
            "`python -m reproduce prepare brats2020 RAW ROOT` writes it from the raw "
            "BraTS20_Training_XXX/BraTS20_Training_XXX_{flair,t1ce,t1,t2,seg}.nii.gz folders"
        ),
        loader="mwam_harness.datasets.brats2020.loader:Brats2020Dataset",
        generator="mwam_harness.datasets.brats2020.synthetic:write_brats2020",
        checker="mwam_harness.datasets.brats2020.check:check_data",
        presets=PRESETS,
        subsets=SUBSETS,
        preparer="mwam_harness.datasets.brats2020.prepare:prepare_brats2020",
    )
)
