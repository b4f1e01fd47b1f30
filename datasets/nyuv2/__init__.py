"""NYU-Depth V2 (RGB + depth indoor semantic segmentation, 40 classes): the registered data set and its presets.

The layout runs read is ESANet's prepared one (``layout.py``): ``ROOT/{train,test}/{rgb,depth,labels_40}/NNNN.png``
(8-bit colour RGB, uint16 depth in millimetres, uint8 labels 0 = void and 1-40) with ``ROOT/train.txt`` /
``test.txt`` (795 / 654 four-digit indices into the 1,449 labelled images). ``python -m reproduce prepare nyuv2
SOURCE OUT`` writes it from the download (``nyu_depth_v2_labeled.mat``, ``splits.mat`` and NYU's
``classMapping40.mat``: ``prepare.py``, the steps of ESANet's ``prepare_dataset.py``) or links an ESANet-prepared
folder, and caches the median-frequency class weights of the training split (``class_weights.py``).
``loader.py`` reads the prepared root with the authors' augmentation (``transforms.py``), ``synthetic.py`` writes
an indoor-scene stand-in in the same layout, ``check.py`` verifies a root. This module imports neither torch nor
OpenCV nor numpy: the run configuration and the planner read it.

Its runs train the 2-D segmentation task (``reproduce/tasks/segmentation2d.py``) with the hosts ESANet-MD
(``esanet_md``) and MMANet-seg (``mmanet_seg``, from the full-modality ``esanet`` teacher).
"""

from __future__ import annotations

from mwam_harness.datasets.registry import DatasetPreset, DatasetSpec, SubsetOrder, register_dataset

MODALITIES: tuple[str, ...] = ("rgb", "depth")
SPLITS: dict[str, str] = {"train": "train.txt", "test": "test.txt"}
#: Sec. 5.1: 795 training and 654 test images (NYU's official split, ``splits.mat``) of the 1,449 labelled ones.
SPLIT_SIZES: dict[str, int] = {"train": 795, "test": 654}
NUM_CLASSES = 40
#: The 40-class labelling (Gupta et al.) with 0 = void, in label order.
CLASS_NAMES: tuple[str, ...] = (
    "void", "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refrigerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture",
    "otherprop",
)  # fmt: skip
#: ESANet's depth statistics of the refined training depth in millimetres (``src/datasets/nyuv2/pytorch_dataset.py``).
DEPTH_MEAN = 2841.94941272766
DEPTH_STD = 1417.2594281672277
#: The size of every NYU-Depth V2 image, (height, width).
IMAGE_SIZE: tuple[int, int] = (480, 640)

# NYUv2 has no validation split. The authors' training scripts evaluate the test split during training (ESANet's
# train.py every epoch; MMANet's from epoch 230 to pick its teacher). The runs here monitor it the same way --
# ``runtime.val_split: test``, logged as ``monitor_test/<subset>/miou`` and in the history, never used to pick the
# weights of a column (Table 3 evaluates epoch 298, ``eval.select``). Paper preset: every 10 epochs on the whole
# split, all three subsets (654 images x 3 subsets at 480 x 640, forward only, about one training epoch of 795
# images forward and backward: an estimated +10 % of training, not measured on a GPU). Synthetic presets: every
# epoch (smoke) or every 5 (demo).
_MONITOR = {"val_split": "test", "val_subsets": "all"}

# A.3 ("the experimental settings recommended for MMANet") / MMANet's train_missing_amp.py and src/args.py: batch
# 8, 300 epochs, SGD lr 0.01, momentum 0.9, weight decay 1e-4, Nesterov (their get_optimizer: nesterov=True),
# OneCycleLR(div_factor=25, pct_start=0.1, anneal_strategy='cos', final_div_factor=1e4, total_steps=epochs) stepped
# once per epoch (at the start of each epoch, ``step(epoch)``), mixed precision (torch.cuda.amp autocast + GradScaler:
# fp16), images 480 x 640 (random rescale x U(1.0, 1.4) then a 480 x 640 crop in training). Their OneCycleLR also
# cycles SGD's momentum (PyTorch's default cycle_momentum=True: 0.95 -> 0.85 -> 0.95, overriding the 0.9 they set):
# ``cycle_momentum: true`` here (schedule.cycle_momentum: false keeps 0.9, A.3's number).
# Evaluation: MMANet's test script (segmentation/test/test_missing.py, ``i=298``) loads ``ckpt_epoch_298.pth`` of the
# trained run (their training saves every epoch after 290), not the last epoch (299): ``eval.select: epoch:298``
# (0-based, as the trainer counts) for every Table 3 column (ESANet-MD, MMANet-seg, +MWAM, +SDE: the one test script).
_PAPER_RUN = {
    "data": {"options": {"height": 480, "width": 640}},
    "train": {"epochs": 300, "batch_size": 8, "amp": "fp16"},
    "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True},
    "schedule": {
        "name": "onecycle",
        "interval": "epoch",
        "div_factor": 25.0,
        "pct_start": 0.1,
        "anneal": "cos",
        "final_div_factor": 1e4,
        "cycle_momentum": True,
    },
    "eval": {"batch_size": 8, "select": "epoch:298"},
}

# MMANet-seg's teacher: the authors' student loads the teacher's ckpt_epoch_245.pth, a checkpoint their saving rule
# keeps only when it is the best test-split MIoU so far (from epoch 230): ``teacher_select: best_test``. This is
# test-set selection (of the teacher only; the student's weak-combination search also reads the test split, as the
# code does); the method's default, ``last``, is the clean alternative (docs/training.md).
_PAPER_METHODS = {"mmanet_seg": {"teacher_select": "best_test"}}


def _synthetic_run(epochs: int, height: int, width: int, batch_size: int) -> dict:
    """The paper's run on a synthetic set of ``height`` x ``width`` images (crop = image size, as 480 x 640 is),
    fp32 (CPU), the learning rate scaled as the authors' scripts scale it for another batch size (``lr * batch /
    8``: at 0.01, a short run from scratch on batch 4 diverges)."""
    return {
        "data": {"options": {"height": height, "width": width}},
        "train": {"epochs": epochs, "batch_size": batch_size},
        "optim": {**_PAPER_RUN["optim"], "lr": _PAPER_RUN["optim"]["lr"] * batch_size / 8},
        "schedule": dict(_PAPER_RUN["schedule"]),
        "eval": {"batch_size": batch_size},
    }


# The smoke preset's hosts: ESANet's ResNet-18 encoders (its ``--encoder resnet18``, BasicBlock) and a narrow decoder
# (128, 64, 32), 23.9 M parameters (91 MB of weights a run) instead of the paper's 71.7 M (274 MB; MMANet-seg's 88.1 M,
# 336 MB): Table 3's smoke keeps one model.pt per run, so the smoke weights stay a third of the paper model's. The
# ResNet-50 model is what the unit tests build (tests/test_esanet.py) and what the demo and paper presets train.
_SMOKE_HOST = {"encoder": "resnet18", "channels_decoder": (128, 64, 32)}

PRESETS = {
    "paper": DatasetPreset(
        "paper", synthetic=False, run=_PAPER_RUN, runtime={**_MONITOR, "val_every": 10}, methods=_PAPER_METHODS
    ),
    # Synthetic presets: small images whose sides are multiples of 32 (ESANet's encoders downsample 32-fold),
    # cropped at the image size as the paper's 480 x 640 is; a few epochs on a 2-core CPU. MMANet-seg's search
    # after epochs 6-9 and its terms from epoch 11 shrink with the schedule (as CASIA-SURF's MMANet).
    "smoke": DatasetPreset(
        "smoke",
        synthetic=True,
        run=_synthetic_run(epochs=2, height=64, width=96, batch_size=4),
        runtime={**_MONITOR, "val_every": 1, "log_every": 1},
        generator={"num_train": 24, "num_test": 8, "height": 64, "width": 96},
        methods={"mmanet_seg": {"search_epochs": (0,), "begin_epoch": 0, "teacher_host_options": dict(_SMOKE_HOST)}},
        hosts={host: dict(_SMOKE_HOST) for host in ("esanet", "esanet_md", "mmanet_seg")},
    ),
    # The demo: ESANet-MD learns its synthetic scenes in 360 steps on a 2-core CPU. Its two ResNet-50 encoders start
    # from random weights (no ImageNet weights here); with the paper's SGD (lr scaled to batch 4) 240 steps left
    # the full set below RGB alone (mean IoU over the 10 classes shown: RGB 38, RGB-D 19). Adam (lr 1e-3, the same
    # one-cycle schedule, its momentum not cycled) at 64 x 96 gets RGB-D above RGB and Depth (docs/demos.md). A
    # step costs about the same at 96 x 128 (the 72 M parameters' update dominates on a CPU), so the images stay
    # small; checkpoints every 10 epochs (one is 0.6 GB).
    "demo": DatasetPreset(
        "demo",
        synthetic=True,
        run={
            **_synthetic_run(epochs=30, height=64, width=96, batch_size=4),
            "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4},
            "schedule": {**_PAPER_RUN["schedule"], "cycle_momentum": False},
        },
        runtime={**_MONITOR, "val_every": 5, "log_every": 6, "checkpoint_every": 10},
        generator={"num_train": 48, "num_test": 16, "height": 64, "width": 96},
        methods={"mmanet_seg": {"search_epochs": (1, 2), "begin_epoch": 2}},
    ),
}

#: The paper's subset rows (reproduce.subsets, ``python -m reproduce subsets nyuv2``) and why.
SUBSETS = SubsetOrder(
    header=(("rgb", "Rgb"), ("depth", "Depth")),
    order=(("rgb",), ("depth",), ("rgb", "depth")),
    evidence=(
        "Two-modality tables print the header's first modality alone first (Tables 11, 12, 13, 17, 18-22: "
        "see their evidence). MMANet's NYUv2 test loops Depth, RGB, RGB-D instead; the paper's Table 3 rows "
        "(41.30 then 38.79 for ESANet-MD) follow the header order Rgb, Depth, as RGB-only NYUv2 models "
        "outscore depth-only ones. Uncertain: recorded in docs/tables.md."
    ),
)

SPEC = register_dataset(
    DatasetSpec(
        name="nyuv2",
        title="NYU-Depth V2",
        modalities=MODALITIES,
        task="segmentation2d",
        num_classes=NUM_CLASSES,
        metric="miou",
        splits=SPLITS,
        source=(
            "the labelled NYU-Depth V2 set, http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
            " (2.8 GB), with NYU's official split splits.mat and the 894 -> 40 class map classMapping40.mat (both in "
            "ESANet's src/datasets/nyuv2/, github.com/TUI-NICR/ESANet, or VainF/nyuv2-python-toolkit), or a folder "
            "prepared by ESANet's prepare_dataset.py; see docs/datasets.md"
        ),
        layout=(
            "prepared ROOT/{train,test}/{rgb,depth,labels_40}/NNNN.png (8-bit RGB, uint16 depth in mm, uint8 labels "
            "0 = void, 1-40), ROOT/train.txt, test.txt (4-digit indices); `python -m reproduce prepare nyuv2 SOURCE "
            "ROOT` writes it from a folder holding nyu_depth_v2_labeled.mat, splits.mat and classMapping40.mat"
        ),
        loader="mwam_harness.datasets.nyuv2.loader:Nyuv2Dataset",
        generator="mwam_harness.datasets.nyuv2.synthetic:write_nyuv2",
        checker="mwam_harness.datasets.nyuv2.check:check_data",
        presets=PRESETS,
        subsets=SUBSETS,
        preparer="mwam_harness.datasets.nyuv2.prepare:prepare_nyuv2",
    )
)
