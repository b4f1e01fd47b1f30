"""DroneVehicle (RGB + infrared aerial images, 5 vehicle classes, detection): the registered data set and its presets.

The layout runs read is the converted one of the two-stream fork mujianyu/TwoStream_Yolov8 (``layout.py``):
``ROOT/images/<split>/NAME.jpg`` (RGB), ``ROOT/image/<split>/NAME.jpg`` (IR, same names), ``ROOT/labels/<split>/
NAME.txt`` (YOLO ``cls xc yc w h``, normalised), all 640 x 512 (the release's 840 x 712 images with their 100-px
white border cropped), plus ``ROOT/{train,val,test}.txt`` list files and the ultralytics data yaml
``ROOT/dronevehicle.yaml``. ``python -m reproduce prepare dronevehicle SOURCE OUT`` writes it from the release
(``prepare.py``) or links a folder the fork's scripts converted. ``loader.py`` reads it as one 6-channel image per
pair for ultralytics, ``synthetic.py`` writes an aerial stand-in in the release's layout and prepares it,
``check.py`` verifies a root (or a release). This module imports neither torch nor OpenCV nor numpy.

Its runs train the ``detection`` task with the two-stream YOLOv8n host, through ultralytics' own trainer.
"""

from __future__ import annotations

from mwam_harness.datasets.registry import DatasetPreset, DatasetSpec, SubsetOrder, register_dataset

MODALITIES: tuple[str, ...] = ("rgb", "ir")
#: Class ids 0-4, the fork's ``dataProcess/xmlToTxt.py`` order.
CLASS_NAMES: tuple[str, ...] = ("car", "truck", "bus", "van", "freight_car")
#: Every class spelling of the release's XML -> class id (the misspellings are mapped to freight car by the
#: community converters; the lookup is exact after stripping surrounding white space).
CLASS_ALIASES: dict[str, int] = {
    "car": 0,
    "truck": 1,
    "bus": 2,
    "van": 3,
    "freight_car": 4,
    "freight car": 4,
    "feright_car": 4,
    "feright car": 4,
    "feright": 4,
    "*": 4,
}
SPLITS: dict[str, str] = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
#: The official release's split sizes (image pairs).
SPLIT_SIZES: dict[str, int] = {"train": 17990, "val": 1469, "test": 8980}
#: Size of a prepared image, (height, width): the release's 712 x 840 minus a 100-px border on every side.
IMAGE_SIZE: tuple[int, int] = (512, 640)
#: Size of a released image, (height, width).
RAW_SIZE: tuple[int, int] = (712, 840)
BORDER = 100

# The fork's training: ``YOLO(yaml).train(data=..., batch=16, epochs=200)`` with its modified default.yaml
# (optimizer SGD, lr0 0.01, close_mosaic 0); ultralytics' defaults momentum 0.937, weight_decay 5e-4, AMP on (fp16
# on a GPU; ultralytics turns it off on the CPU), deterministic, image size 640, and its SGD is always Nesterov
# (``BaseTrainer.build_optimizer``). Test: ``val(split='test', imgsz=640)``, batch 16 (ultralytics' default), mAP50.
# The image size is the data set's ``imgsz`` option; the rest of ultralytics' recipe is the options of the
# ``ultralytics`` method (reproduce/methods/ultralytics/recipe.py).
_OPTIM = {"name": "sgd", "lr": 0.01, "momentum": 0.937, "weight_decay": 5e-4, "nesterov": True}

# Per-epoch validation (runtime; never part of a run's key). Ultralytics validates the full set (RGB + IR) after every
# epoch whatever the runtime says; with ``val_subsets: all``, every ``val_every``-th epoch the runner also validates
# RGB alone and IR alone (two more passes over the validation split, the absent stream masked) and logs
# ``val/<subset>/mAP50`` and ``mAP50-95`` of all three to W&B (reproduce/yolo/trainer.py, ``validate_subsets``).
# Measured on a 2-core AMD EPYC, AVX-512 (2026-12-08, other jobs on the machine): the two passes take 1.3-1.7x
# ultralytics' own validation -- each runs one backbone instead of two, but loads, post-processes and scores as
# much --; smoke 0.15 s against 0.09 s, an epoch about 1.1 s; demo 0.56 s against 0.34 s, +15 % on its 3.7 s epoch
# (16 validation against 64 training images: validation is a large part of a demo epoch); at 640 px (32 training,
# 32 validation images, batch 8) 4.8-5.3 s against 3.3-3.7 s, with 1.3-1.6 s per training image.
_VALIDATION = {"val_every": 1, "val_subsets": "all"}


def _run(epochs: int, batch_size: int, imgsz: int, amp: str = "off") -> dict:
    return {
        "data": {"options": {"imgsz": imgsz}},
        "train": {"epochs": epochs, "batch_size": batch_size, "amp": amp, "deterministic": True},
        "optim": dict(_OPTIM),
        "eval": {"batch_size": batch_size},
    }


PRESETS = {
    "paper": DatasetPreset(
        "paper",
        synthetic=False,
        run=_run(epochs=200, batch_size=16, imgsz=640, amp="fp16"),  # the fork's train(batch=16, epochs=200)
        # Every subset every epoch: with 17,990 training and 1,469 validation pairs, the two extra passes cost
        # 1.3-1.7x ultralytics' own validation, i.e. about 1 % of an epoch at the CPU costs measured above (0.11 s per
        # validation image, 1.3-1.6 s per training image); on a GPU, where validation weighs more (NMS and scoring on
        # the CPU, loading as much as a training image), an estimated few per cent (no GPU measurement yet) -- a
        # reasonable price for the RGB / IR curves of every epoch.
        runtime=dict(_VALIDATION),
        methods={"ultralytics": {"close_mosaic": 0}},  # the fork's default.yaml
    ),
    # Synthetic presets: small images (the vehicles are 60-160 px long at 640, 9-24 px at 96), the nominal batch
    # equal to the batch (no accumulation: a 64-image epoch at batch 8 would otherwise be one optimiser step), no
    # warm-up and no ultralytics plots on the two-epoch smoke run (the table's figures are drawn either way).
    "smoke": DatasetPreset(
        "smoke",
        synthetic=True,
        run=_run(epochs=2, batch_size=4, imgsz=96),
        runtime={"log_every": 1, **_VALIDATION},  # every subset every epoch: 0.15 s (above)
        methods={"ultralytics": {"close_mosaic": 0, "warmup_epochs": 0, "nbs": 4, "plots": False}},
        generator={"num_train": 8, "num_val": 4, "num_test": 6},
    ),
    "demo": DatasetPreset(
        "demo",
        synthetic=True,
        run=_run(epochs=30, batch_size=8, imgsz=160),
        # every subset every third epoch: 10 points per run for 6 s (+5 %) instead of 30 for 17 s (+15 %, above)
        runtime={"log_every": 2, **_VALIDATION, "val_every": 3},
        methods={"ultralytics": {"close_mosaic": 0, "warmup_epochs": 1, "nbs": 8}},
        # 40 % night scenes (the smoke set and the generator's default: 60 %): at 60 % RGB alone reached mAP50 0.09
        # in 30 epochs, a PR curve of a few points; at 40 % the RGB row still collapses against IR (docs/demos.md).
        generator={"num_train": 64, "num_val": 16, "num_test": 32, "night_fraction": 0.4},
    ),
}

#: The paper's subset rows (reproduce.subsets, ``python -m reproduce subsets dronevehicle``) and why.
SUBSETS = SubsetOrder(
    header=(("rgb", "RGB"), ("ir", "IR")),
    order=(("rgb",), ("ir",), ("rgb", "ir")),
    evidence=(
        "Header order RGB, IR; row 1 (mAP50 0.215, PCR 72.78) is the weak RGB stream -- DroneVehicle is "
        "dominated by night scenes where infrared carries the objects -- and row 2 (0.669) infrared."
    ),
)

SPEC = register_dataset(
    DatasetSpec(
        name="dronevehicle",
        title="DroneVehicle",
        modalities=MODALITIES,
        task="detection",
        num_classes=len(CLASS_NAMES),
        metric="map50",
        splits=SPLITS,
        source=(
            "the official DroneVehicle release, https://github.com/VisDrone/DroneVehicle (train, val and test "
            "archives: {train,val,test}/{split}img, {split}imgr, {split}label, {split}labelr), or a folder converted "
            "by mujianyu/TwoStream_Yolov8's dataProcess scripts (images/, image/, labels/); see docs/datasets.md"
        ),
        layout=(
            "prepared ROOT/images/{train,val,test}/NAME.jpg (RGB 640 x 512), ROOT/image/... (IR, same names), "
            "ROOT/labels/.../NAME.txt (YOLO cls xc yc w h), ROOT/{train,val,test}.txt, ROOT/dronevehicle.yaml; "
            "`python -m reproduce prepare dronevehicle SOURCE ROOT` writes it from the release"
        ),
        loader="mwam_harness.datasets.dronevehicle.loader:DroneVehicleDataset",
        generator="mwam_harness.datasets.dronevehicle.synthetic:write_dronevehicle",
        checker="mwam_harness.datasets.dronevehicle.check:check_data",
        presets=PRESETS,
        subsets=SUBSETS,
        preparer="mwam_harness.datasets.dronevehicle.prepare:prepare_dronevehicle",
    )
)
