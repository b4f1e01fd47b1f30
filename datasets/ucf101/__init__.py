"""UCF-101 (RGB video + TV-L1 optical flow, 101 action classes, Table 11): the registered data set and its presets.

Two prepared layouts are read (``layout.py``; the loader's ``layout`` option), both with UCF-101's own list files
at the root (``classInd.txt``, ``trainlist0N.txt`` / ``testlist0N.txt``, N = 1, 2, 3: the data option ``fold``):

- ``balancebenchmark`` (default) -- what BalanceBenchmark's ``ucf101_dataset.py`` reads: exactly 6 RGB frames per
  video, ``ucf101-frames-1fps/video-set/<video>/frame_00001.jpg`` ... ``frame_00006.jpg``, and the TV-L1 flow as
  grayscale JPEGs ``u/<video>/frame000001.jpg`` ... and ``v/<video>/...``;
- ``dimml`` -- the common pre-extracted layout (Feichtenhofer's twostreamfusion release, read by DI-MML's
  ``UCFDataset.py``): every frame, ``jpegs_256/<video>/frame000001.jpg`` ..., and ``tvl1_flow/{u,v}/<video>/
  frame000001.jpg`` ....

``python -m reproduce prepare ucf101 SOURCE OUT`` writes either from the download (``UCF-101/<Class>/*.avi`` and
``ucfTrainTestlist/``): PyAV decodes, scikit-image's TV-L1 computes the flow (``prepare.py``). ``loader.py`` reads a
prepared root with BalanceBenchmark's sampling (3 segments, a random frame of each in training, fixed frames in
test), ``synthetic.py`` writes real ``.avi`` files of moving patterns in the download's layout and prepares them,
``check.py`` verifies a root (either prepared layout, or a download). This module imports neither torch nor OpenCV
nor numpy: the run configuration and the planner read it.

Its runs train the ``classification`` task; the host of Table 11 is the two-ResNet-18 concat host with a time axis.
"""

from __future__ import annotations

from mwam_harness.datasets.registry import DatasetPreset, DatasetSpec, SubsetOrder, register_dataset

MODALITIES: tuple[str, ...] = ("video", "flow")
#: The list files of split 1 (UCF-101's official train / test lists; there is no validation list). The loader's
#: ``fold`` option reads ``trainlist02.txt`` / ``testlist02.txt`` or ``...03.txt`` instead.
SPLITS: dict[str, str] = {"train": "trainlist01.txt", "test": "testlist01.txt"}
#: Videos of split 1 (UCF-101's ``trainlist01.txt`` / ``testlist01.txt``); 13,320 videos in all.
SPLIT_SIZES: dict[str, int] = {"train": 9537, "test": 3783}
NUM_CLASSES = 101
#: UCF-101's ``classInd.txt``: class name of label 0, 1, ... (the file numbers them 1-101).
CLASS_NAMES: tuple[str, ...] = (
    "ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "BalanceBeam", "BandMarching", "BaseballPitch",
    "Basketball", "BasketballDunk", "BenchPress", "Biking", "Billiards", "BlowDryHair", "BlowingCandles",
    "BodyWeightSquats", "Bowling", "BoxingPunchingBag", "BoxingSpeedBag", "BreastStroke", "BrushingTeeth",
    "CleanAndJerk", "CliffDiving", "CricketBowling", "CricketShot", "CuttingInKitchen", "Diving", "Drumming",
    "Fencing", "FieldHockeyPenalty", "FloorGymnastics", "FrisbeeCatch", "FrontCrawl", "GolfSwing", "Haircut",
    "Hammering", "HammerThrow", "HandstandPushups", "HandstandWalking", "HeadMassage", "HighJump", "HorseRace",
    "HorseRiding", "HulaHoop", "IceDancing", "JavelinThrow", "JugglingBalls", "JumpingJack", "JumpRope", "Kayaking",
    "Knitting", "LongJump", "Lunges", "MilitaryParade", "Mixing", "MoppingFloor", "Nunchucks", "ParallelBars",
    "PizzaTossing", "PlayingCello", "PlayingDaf", "PlayingDhol", "PlayingFlute", "PlayingGuitar", "PlayingPiano",
    "PlayingSitar", "PlayingTabla", "PlayingViolin", "PoleVault", "PommelHorse", "PullUps", "Punch", "PushUps",
    "Rafting", "RockClimbingIndoor", "RopeClimbing", "Rowing", "SalsaSpin", "ShavingBeard", "Shotput",
    "SkateBoarding", "Skiing", "Skijet", "SkyDiving", "SoccerJuggling", "SoccerPenalty", "StillRings",
    "SumoWrestling", "Surfing", "Swing", "TableTennisShot", "TaiChi", "TennisSwing", "ThrowDiscus",
    "TrampolineJumping", "Typing", "UnevenBars", "VolleyballSpiking", "WalkingWithDog", "WallPushups",
    "WritingOnBoard", "YoYo",
)  # fmt: skip

# UCF-101 has no validation split. BalanceBenchmark (``validation: false``) evaluates the test split during training
# and keeps the last epoch; the runs here monitor the test split the same way (``runtime.val_split: test``, logged as
# ``monitor_test/<subset>/acc``, never used to pick weights) and evaluate the last epoch (``eval.select: last``).
_MONITOR = {"val_split": "test", "val_subsets": "all"}

# BalanceBenchmark's UCF-101 settings (issue #27; its configs/global_config.yaml and the UCF entry of
# dataset_config.yaml): AdamW, weight decay 0.01, base lr 1e-3, StepLR(step_size=10, gamma=0.1) stepped once per
# epoch, effective batch 32 (drop_last, as the trainer drops the incomplete last batch), 30 epochs, fp32, frames
# resized to 224 x 224, 3 frames (segments) per clip. StepLR(10, 0.1) over 30 epochs is the ``step`` schedule with
# milestones 10 and 20 (lr 1e-3, 1e-4, 1e-5): the same learning rate at every epoch. AdamW's betas / eps are torch's
# defaults (the run configuration's). The paper says only "default configuration"; MWAM's A.3 settings are the
# documented option (docs/training.md's differences table).
_PAPER_RUN = {
    "data": {"options": {"size": 224, "frames": 3}},
    "train": {"epochs": 30, "batch_size": 32},
    "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01},
    "schedule": {"name": "step", "interval": "epoch", "milestones": (10, 20), "gamma": 0.1},
    "eval": {"batch_size": 32, "select": "last"},
}


def _synthetic_run(epochs: int, size: int, batch_size: int, milestones: tuple[int, ...]) -> dict:
    """The paper's run on a synthetic set: frames resized to ``size`` (the synthetic videos are small), fewer epochs
    with the learning rate's steps moved inside them."""
    return {
        "data": {"options": {"size": size, "frames": 3}},
        "train": {"epochs": epochs, "batch_size": batch_size},
        "optim": dict(_PAPER_RUN["optim"]),
        "schedule": {**_PAPER_RUN["schedule"], "milestones": milestones},
        "eval": {"batch_size": 2 * batch_size, "select": "last"},
    }


PRESETS = {
    # Monitoring: every 5 epochs the test split (3,783 videos) on all three subsets; a host that encodes once per
    # batch (encode / fuse) pays about one forward pass of the split, estimated at +3 % of the 30 epochs' compute
    # (not measured on a GPU).
    "paper": DatasetPreset("paper", synthetic=False, run=_PAPER_RUN, runtime={**_MONITOR, "val_every": 5}),
    # Seconds on a 2-core CPU: 4 classes, 32 videos of 48 x 36 (24 training, 8 test, split 1), frames resized to 32.
    "smoke": DatasetPreset(
        "smoke",
        synthetic=True,
        run=_synthetic_run(epochs=2, size=32, batch_size=8, milestones=(1,)),
        runtime={**_MONITOR, "val_every": 1, "log_every": 1},
        generator={"classes": 4, "groups": 4, "clips": 2, "frames": 12, "width": 48, "height": 36},
    ),
    # About two minutes on a 2-core CPU (generation and prepare ~20 s, 16 epochs ~70 s):
    # 6 classes whose hue (video) and vertical speed (flow) each carry the class, with noise that confuses each
    # alone with its neighbours -- different neighbours for the two (synthetic.py) --, 8 groups of 5 clips (240
    # videos: 180 training, 60 test), frames resized to 32. Trained with these settings (2-core CPU, about 70 s of
    # training a run; a stand-in ResNet-18 pair and resnet18_concat_video, five runs) models reached 72-77 % on
    # video alone, 52-65 % on flow alone and 93-98 % on both (chance 16.7 %; docs/datasets.md).
    "demo": DatasetPreset(
        "demo",
        synthetic=True,
        run=_synthetic_run(epochs=16, size=32, batch_size=16, milestones=(12,)),
        runtime={**_MONITOR, "val_every": 4, "log_every": 4},
        generator={
            "classes": 6,
            "groups": 8,
            "clips": 5,
            "frames": 24,
            "width": 64,
            "height": 48,
            "hue_noise": 15.0,
            "speed_noise": 0.45,
        },
    ),
}

#: The paper's subset rows (reproduce.subsets, ``python -m reproduce subsets ucf101``) and why.
SUBSETS = SubsetOrder(
    header=(("video", "Video"), ("flow", "O.F.")),
    order=(("video",), ("flow",), ("video", "flow")),
    evidence=(
        "Sec. A.11: MWAM 'enhances model performance in the absence of the dominant modality (video)'; MWAM "
        "raises row 2 (55.68 -> 60.45) and not row 1 (74.41 -> 72.36), so row 2 is optical flow alone."
    ),
)

SPEC = register_dataset(
    DatasetSpec(
        name="ucf101",
        title="UCF-101",
        modalities=MODALITIES,
        task="classification",
        num_classes=NUM_CLASSES,
        metric="acc",
        splits=SPLITS,
        source=(
            "UCF-101 from https://www.crcv.ucf.edu/data/UCF101.php: the videos UCF101.rar (6.5 GB, 13,320 .avi) and "
            "the split lists UCF101TrainTestSplits-RecognitionTask.zip (classInd.txt, trainlist0N / testlist0N); "
            "pre-extracted frames and TV-L1 flows are commonly taken from Feichtenhofer's twostreamfusion release "
            "(jpegs_256, tvl1_flow); see docs/datasets.md"
        ),
        layout=(
            "ROOT/classInd.txt, trainlist0N.txt, testlist0N.txt (UCF-101's lists) and either BalanceBenchmark's "
            "ROOT/ucf101-frames-1fps/video-set/<video>/frame_00001.jpg ... frame_00006.jpg with ROOT/{u,v}/<video>/"
            "frame000001.jpg ... (data option layout: balancebenchmark, the default) or ROOT/jpegs_256/<video>/"
            "frame000001.jpg ... with ROOT/tvl1_flow/{u,v}/<video>/frame000001.jpg ... (layout: dimml); "
            "`python -m reproduce prepare ucf101 SOURCE ROOT` writes it from a folder holding UCF-101/<Class>/*.avi "
            "and ucfTrainTestlist/"
        ),
        loader="mwam_harness.datasets.ucf101.loader:Ucf101Dataset",
        generator="mwam_harness.datasets.ucf101.synthetic:write_ucf101",
        checker="mwam_harness.datasets.ucf101.check:check_data",
        presets=PRESETS,
        subsets=SUBSETS,
        preparer="mwam_harness.datasets.ucf101.prepare:prepare_ucf101",
    )
)
