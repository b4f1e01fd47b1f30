"""UCF-101 data: synthetic .avi files -> prepare (both layouts) -> check-data -> the loader (shapes, normalisation,
BalanceBenchmark's frame choice), resumability, unreadable videos, the TV-L1 mapping, splits 2 / 3, the spec."""

import re
import shutil
import subprocess
import sys
import time

import av
import cv2
import numpy as np
import pytest
import torch

from mwam_harness.datasets import dataset_spec
from mwam_harness.datasets.paper_only import PAPER_ONLY
from mwam_harness.datasets.ucf101 import CLASS_NAMES, PRESETS, SPLITS
from mwam_harness.datasets.ucf101.check import check_data
from mwam_harness.datasets.ucf101.layout import LAYOUTS, group_of, list_name, read_videos
from mwam_harness.datasets.ucf101.loader import IMAGENET_MEAN, IMAGENET_STD, Ucf101Dataset, Ucf101Error
from mwam_harness.datasets.ucf101.prepare import (
    PrepareError,
    flow_to_uint8,
    prepare_ucf101,
    sampled_frames,
    tvl1,
    uint8_to_flow,
    video_done,
)
from mwam_harness.datasets.ucf101.synthetic import split_test_groups, write_ucf101
from reproduce.cli import main

#: 3 classes x 4 groups x 1 clip = 12 videos of 9 frames, 32 x 24: split N tests group N.
TINY = {"classes": 3, "groups": 4, "clips": 1, "frames": 9, "width": 32, "height": 24, "workers": 1}
BB, DIMML = LAYOUTS["balancebenchmark"], LAYOUTS["dimml"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The synthetic set: its download in raw/ and its balancebenchmark layout at the root."""
    return write_ucf101(tmp_path_factory.mktemp("ucf") / "synthetic", **TINY)


@pytest.fixture(scope="module")
def dimml(synthetic, tmp_path_factory):
    """The same download prepared in the dimml layout (frames of shorter side 16)."""
    out = tmp_path_factory.mktemp("ucf") / "dimml"
    return prepare_ucf101(synthetic / "raw", out, layout="dimml", short_side=16, workers=2, progress=False)


def _copy_download(synthetic, tmp_path):
    return shutil.copytree(synthetic / "raw", tmp_path / "raw")


# ---------------------------------------------------------------- the spec
def test_ucf101_is_registered_torch_free_with_balancebenchmarks_settings():
    code = (
        "import sys; from mwam_harness.datasets import dataset_spec; s = dataset_spec('ucf101');"
        "print(s.modalities, s.task, s.num_classes, s.metric, sorted(s.presets), s.preparer is not None,"
        " any(m in sys.modules for m in ('torch', 'cv2', 'numpy', 'av', 'skimage')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('video', 'flow') classification 101 acc ['demo', 'paper', 'smoke'] True False"
    assert "ucf101" not in PAPER_ONLY, "registered: its subset order lives in its spec"
    spec = dataset_spec("ucf101")
    assert spec.subsets.order == (("video",), ("flow",), ("video", "flow"))
    assert [printed for _, printed in spec.subsets.header] == ["Video", "O.F."]
    assert SPLITS == {"train": "trainlist01.txt", "test": "testlist01.txt"} and len(CLASS_NAMES) == 101
    assert {split: list_name(split) for split in SPLITS} == SPLITS
    from reproduce.runs.config import EvalConfig, OptimConfig, ScheduleConfig, TrainConfig
    from reproduce.runs.schedules import lr_per_epoch

    run = PRESETS["paper"].run
    optim, train = OptimConfig(**run["optim"]), TrainConfig(**run["train"])
    assert (optim.name, optim.lr, optim.weight_decay) == ("adamw", 1e-3, 0.01)
    assert (train.epochs, train.batch_size, train.amp) == (30, 32, "off")
    assert run["data"]["options"] == {"size": 224, "frames": 3} and EvalConfig(**run["eval"]).select == "last"
    # StepLR(step_size=10, gamma=0.1), stepped once per epoch
    lrs = lr_per_epoch(ScheduleConfig(**run["schedule"]), optim.lr, train.epochs, 1)
    assert lrs == pytest.approx([1e-3] * 10 + [1e-4] * 10 + [1e-5] * 10)
    for name, preset in PRESETS.items():
        assert preset.runtime["val_split"] == "test" and preset.runtime["val_subsets"] == "all", name
        assert preset.synthetic == (name != "paper")


# ---------------------------------------------------------------- synthetic download -> prepare -> check-data
def test_the_synthetic_download_has_ucf101s_layout_and_group_splits(synthetic):
    raw = synthetic / "raw"
    classes = CLASS_NAMES[:3]
    avis = sorted(p.relative_to(raw / "UCF-101").as_posix() for p in (raw / "UCF-101").rglob("*.avi"))
    assert avis == sorted(f"{c}/v_{c}_g{g:02d}_c01.avi" for c in classes for g in range(1, 5))
    with av.open(str(raw / "UCF-101" / avis[0])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "mpeg4" and container.format.name == "avi"
        frames = [f.to_ndarray(format="rgb24", threads=1) for f in container.decode(stream)]  # fork-safe
    assert len(frames) == 9 and frames[0].shape == (24, 32, 3)
    lists = raw / "ucfTrainTestlist"
    assert (lists / "classInd.txt").read_bytes() == b"1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 Archery\r\n"
    for fold in (1, 2, 3):
        train = (lists / list_name("train", fold)).read_text().splitlines()
        test = (lists / list_name("test", fold)).read_text().splitlines()
        assert all(len(line.split()) == 2 for line in train) and all(len(line.split()) == 1 for line in test)
        train_groups = {group_of(line.split()[0].split("/")[1][:-4]) for line in train}
        test_groups = {group_of(line.split("/")[1][:-4]) for line in test}
        assert test_groups == set(split_test_groups(4, fold)) == {fold} and not train_groups & test_groups
    assert dataset_spec("ucf101").is_synthetic(synthetic)
    stamp = (synthetic / "synthetic.json").stat().st_mtime_ns
    assert write_ucf101(synthetic, **TINY) == synthetic and (synthetic / "synthetic.json").stat().st_mtime_ns == stamp


def test_both_prepared_layouts_check_clean_with_their_frames_and_flows(synthetic, dimml):
    assert check_data(synthetic, progress=False) == [] and check_data(dimml, progress=False) == []
    assert check_data(synthetic / "raw", progress=False) == [], "the download checks clean too"
    video = "v_Archery_g02_c01"
    bb_rgb = sorted(p.name for p in BB.rgb_dir(synthetic, video).iterdir())
    assert bb_rgb == [f"frame_0000{k}.jpg" for k in range(1, 7)]
    assert sorted(p.name for p in BB.flow_dir(synthetic, video, "u").iterdir()) == [
        f"frame00000{k}.jpg" for k in range(1, 7)
    ]
    assert cv2.imread(str(BB.rgb_path(synthetic, video, 1))).shape == (24, 32, 3), "kept at the video's size"
    assert len(list(DIMML.rgb_dir(dimml, video).iterdir())) == 9, "dimml: every frame"
    assert len(list(DIMML.flow_dir(dimml, video, "v").iterdir())) == 8, "the flow of every consecutive pair"
    assert cv2.imread(str(DIMML.rgb_path(dimml, video, 9))).shape == (16, 21, 3), "shorter side 16"
    assert cv2.imread(str(DIMML.flow_path(dimml, video, "u", 1)), cv2.IMREAD_UNCHANGED).ndim == 2
    for root in (synthetic, dimml):
        for name in ("classInd.txt", *[list_name(s, f) for f in (1, 2, 3) for s in ("train", "test")]):
            assert (root / name).read_bytes() == (synthetic / "raw" / "ucfTrainTestlist" / name).read_bytes()
    assert sampled_frames(9) == [0, 2, 3, 5, 6, 8] and sampled_frames(186) == [15, 46, 77, 108, 139, 170]


def test_balancebenchmarks_layout_with_every_flow(synthetic, tmp_path):
    out = prepare_ucf101(synthetic / "raw", tmp_path / "all", flows="all", workers=1, progress=False)
    video = "v_ApplyLipstick_g01_c01"
    assert len(list(BB.rgb_dir(out, video).iterdir())) == 6 and len(list(BB.flow_dir(out, video, "u").iterdir())) == 8
    # the sampled flow 1 is the flow from frame t_1 = 0 to frame 1: every pair's flow 1 is the same pair
    same = [BB.flow_path(root, video, "v", 1).read_bytes() for root in (synthetic, out)]
    assert same[0] == same[1]
    assert check_data(out, progress=False) == []
    assert Ucf101Dataset(out, "test", size=16).choice(0)["flow"] == [1, 3, 5], "8 flows: seg 2 -> 1, 3, 5"


def test_check_data_reports_missing_frames_flows_and_shared_groups(synthetic, tmp_path):
    root = shutil.copytree(synthetic, tmp_path / "root", ignore=shutil.ignore_patterns("raw"))
    (BB.rgb_dir(root, "v_Archery_g02_c01") / "frame_00004.jpg").unlink()
    shutil.rmtree(BB.flow_dir(root, "v_ApplyLipstick_g03_c01", "v"))
    data = BB.flow_path(root, "v_ApplyEyeMakeup_g04_c01", "u", 2).read_bytes()
    BB.flow_path(root, "v_ApplyEyeMakeup_g04_c01", "u", 2).write_bytes(data[: len(data) // 2])
    test_list = root / "testlist01.txt"
    test_list.write_bytes(test_list.read_bytes() + b"Archery/v_Archery_g02_c01.avi\r\n")
    problems = [str(p) for p in check_data(root, progress=False)]
    assert any("frame_00004.jpg: missing RGB frame 4 of video v_Archery_g02_c01" in p for p in problems)
    assert any("v/v_ApplyLipstick_g03_c01: missing v flow folder" in p for p in problems)
    assert any("frame000002.jpg: truncated JPEG" in p for p in problems)
    assert any("testlist01.txt:4: in two splits: v_Archery_g02_c01 is also in trainlist01.txt" in p for p in problems)
    assert len(problems) == 4, problems
    # another clip of a group split 1 trains on (its frames are missing too)
    test_list.write_bytes(test_list.read_bytes() + b"Archery/v_Archery_g03_c07.avi\r\n")
    problems = [str(p) for p in check_data(root, progress=False)]
    shared = [p for p in problems if "never share a group" in p]
    assert shared == [
        f"{test_list}:5: group g03 of Archery is also trained on (trainlist01.txt, line 8): UCF-101's splits never "
        "share a group between train and test"
    ]
    assert any("v_Archery_g03_c07: missing RGB frame folder" in p for p in problems)


# ---------------------------------------------------------------- the loader
@pytest.mark.parametrize("layout", ["balancebenchmark", "dimml"])
def test_the_loader_reads_both_layouts_as_balancebenchmark(synthetic, dimml, layout):
    root = synthetic if layout == "balancebenchmark" else dimml
    spec = LAYOUTS[layout]
    test = dataset_spec("ucf101").build_dataset(root, "test", train=False, seed=0, layout=layout, size=20)
    assert len(test) == 3 and test.labels == [0, 1, 2] and test.case_ids()[0] == "v_ApplyEyeMakeup_g01_c01"
    item = test[1]
    assert item["video"].shape == (3, 3, 20, 20) and item["flow"].shape == (2, 3, 20, 20)
    assert item["video"].dtype == torch.float32 and item["flow"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and int(item["label"]) == 1 and item["index"] == 1
    rgb_count = 6 if layout == "balancebenchmark" else 9  # flows: 6 (sampled) or 8 (every pair)
    # test: frame i * seg + max(seg // 2, 1) of segment i, seg = count // 3 (6 -> 1, 3, 5; 9 -> 1, 4, 7; 8 -> 1, 3, 5)
    fixed = {"rgb": [1, 3, 5] if rgb_count == 6 else [1, 4, 7], "flow": [1, 3, 5]}
    assert test.choice(1)["rgb"] == fixed["rgb"] and test.choice(1)["flow"] == fixed["flow"]
    # normalisation: RGB x / 255 with ImageNet's mean / std, flow x / 255 and nothing else (after the same resize)
    video = test.videos[1].name
    image = cv2.cvtColor(cv2.imread(str(spec.rgb_path(root, video, fixed["rgb"][0]))), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (20, 20), interpolation=cv2.INTER_AREA if image.shape[0] * image.shape[1] > 400 else 1)
    expected = (image.astype(np.float32) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    assert torch.allclose(item["video"][:, 0], torch.from_numpy(expected.transpose(2, 0, 1)), atol=1e-5)
    v = cv2.imread(str(spec.flow_path(root, video, "v", fixed["flow"][2])), cv2.IMREAD_GRAYSCALE)
    v = cv2.resize(v, (20, 20), interpolation=cv2.INTER_AREA if v.shape[0] * v.shape[1] > 400 else 1)
    assert torch.allclose(item["flow"][1, 2], torch.from_numpy(v.astype(np.float32) / 255))
    assert 0 <= item["flow"].min() and item["flow"].max() <= 1
    # training: a random frame per segment, a function of (seed, epoch, index) only
    train = Ucf101Dataset(root, "train", seed=3, layout=layout, size=20)
    seen = set()
    for epoch in range(8):
        train.set_epoch(epoch)
        choice = train.choice(0)
        seg = rgb_count // 3
        assert all(i * seg + 1 <= k <= i * seg + seg for i, k in enumerate(choice["rgb"])), choice
        seen.add(tuple(choice["rgb"]))
    assert len(seen) > 1, "the frames change with the epoch"
    train.set_epoch(5)
    again = Ucf101Dataset(root, "train", seed=3, layout=layout, size=20)
    again.set_epoch(5)
    assert again.choice(4) == train.choice(4) and torch.equal(again[4]["video"], train[4]["video"])


def test_flips_per_frame_per_clip_or_none(synthetic):
    root = synthetic
    plain = Ucf101Dataset(root, "train", train=True, seed=1, size=24, flip="none")
    clip = Ucf101Dataset(root, "train", train=True, seed=1, size=24, flip="clip")
    frame = Ucf101Dataset(root, "train", train=True, seed=1, size=24, flip="frame")
    flipped = next(i for i in range(len(clip)) if clip.choice(i)["flips"]["rgb"][0])
    assert not any(any(f) for f in plain.choice(flipped)["flips"].values())
    a, b = plain[flipped], clip[flipped]
    for kind in ("rgb", "flow"):  # the frames are drawn before the flips: the same in every flip mode
        assert plain.choice(flipped)[kind] == clip.choice(flipped)[kind] == frame.choice(flipped)[kind]
    assert torch.equal(b["video"], a["video"].flip(-1))
    assert torch.allclose(b["flow"][0], 1 - a["flow"][0].flip(-1)), "u mirrored: 255 - u"
    assert torch.equal(b["flow"][1], a["flow"][1].flip(-1))
    draws = [frame.choice(i)["flips"] for i in range(len(frame))]
    assert any(len({*d["rgb"], *d["u"], *d["v"]}) == 2 for d in draws), "BalanceBenchmark: each image on its own"
    with pytest.raises(Ucf101Error, match="flip must be one of"):
        Ucf101Dataset(root, "train", flip="sometimes")


def test_splits_two_and_three_and_the_loaders_refusals(synthetic, tmp_path):
    for fold in (1, 2, 3):
        test = Ucf101Dataset(synthetic, "test", fold=fold, size=16)
        train = Ucf101Dataset(synthetic, "train", fold=fold, size=16)
        assert {v.group for v in test.videos} == {fold} and fold not in {v.group for v in train.videos}
        assert len(test) == 3 and len(train) == 9
    _, videos = read_videos(synthetic, "train", 2)
    assert videos[0].path == "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" and videos[0].label == 0
    with pytest.raises(Ucf101Error, match="fold must be UCF-101's split 1, 2 or 3"):
        Ucf101Dataset(synthetic, "test", fold=4)
    with pytest.raises(Ucf101Error, match="no validation split"):
        Ucf101Dataset(synthetic, "val")
    root = shutil.copytree(synthetic, tmp_path / "root", ignore=shutil.ignore_patterns("raw"))
    missing = BB.rgb_dir(root, "v_Archery_g01_c01")
    shutil.rmtree(missing)
    with pytest.raises(Ucf101Error, match=rf"1 folder\(s\) of listed videos are missing .*\n  {missing} "):
        Ucf101Dataset(root, "test")
    Ucf101Dataset(root, "train")  # split 1's training list does not name it
    with pytest.raises(Ucf101Error, match=r"testlist01\.txt: 1 bad line"):
        (root / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\nBowling/v_Bowling_g01_c01.avi\n")
        Ucf101Dataset(root, "test")


# ---------------------------------------------------------------- prepare: resume, atomicity, errors, TV-L1
def test_prepare_resumes_and_never_takes_a_half_written_video_for_done(synthetic, tmp_path):
    raw = _copy_download(synthetic, tmp_path)
    out = prepare_ucf101(raw, tmp_path / "out", workers=1, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    time.sleep(0.01)
    prepare_ucf101(raw, out, workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")} == stamps, "a second run skips every video"
    # a run killed while writing one video: its RGB folder gone, a temporary folder with a part of it left behind;
    # another video lost its v folder after u was renamed into place
    video, other = "v_ApplyLipstick_g02_c01", "v_Archery_g04_c01"
    shutil.rmtree(BB.rgb_dir(out, video))
    partial = BB.rgb_dir(out, video).parent / f".{video}.tmp-0badf00d"
    partial.mkdir()
    (partial / "frame_00001.jpg").write_bytes(b"\xff\xd8 half")
    shutil.rmtree(BB.flow_dir(out, other, "v"))
    assert not video_done(out, BB, video) and not video_done(out, BB, other)
    with pytest.raises(Ucf101Error, match="missing"):
        Ucf101Dataset(out, "train")
    prepare_ucf101(raw, out, workers=1, progress=False)
    assert video_done(out, BB, video) and video_done(out, BB, other)
    assert check_data(out, progress=False) == [], "the temporary folder is neither read nor reported"
    redone = {p for p, stamp in stamps.items() if p.exists() and p.stat().st_mtime_ns != stamp}
    assert redone and all(video in str(p) or other in str(p) for p in redone)
    with pytest.raises(PrepareError, match="prepared with"):
        prepare_ucf101(raw, out, flows="all", workers=1, progress=False)


def test_an_unreadable_or_missing_video_is_named(synthetic, tmp_path):
    raw = _copy_download(synthetic, tmp_path)
    bad = raw / "UCF-101" / "Archery" / "v_Archery_g03_c01.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI not a video at all")
    out = tmp_path / "out"
    with pytest.raises(PrepareError, match=r"1 of 12 videos cannot be prepared") as error:
        prepare_ucf101(raw, out, workers=2, progress=False)
    assert f"{bad}: unreadable video" in str(error.value)
    assert video_done(out, BB, "v_Archery_g01_c01") and not video_done(out, BB, "v_Archery_g03_c01")
    assert not (out / "trainlist01.txt").exists(), "the lists are written when every video is"
    assert not list(out.rglob(".*tmp-*")), "nothing half-written"
    assert any(str(bad) in str(p) and "unreadable video" in str(p) for p in check_data(raw, progress=False))
    bad.unlink()
    with pytest.raises(PrepareError, match=re.escape(f"{bad}: missing video (listed in trainlist01.txt, line 8)")):
        prepare_ucf101(raw, out, workers=1, progress=False)


def test_tvl1_sign_and_the_uint8_mapping():
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur((rng.random((56, 72)) * 255).astype(np.float32), (0, 0), 1.5)
    previous = np.clip(texture[8:48, 8:64], 0, 255).astype(np.uint8)
    following = np.clip(texture[8:48, 6:62], 0, 255).astype(np.uint8)  # the content moved 2 px to the right
    u, v = tvl1(previous, following)
    assert np.median(u[4:-4, 4:-4]) == pytest.approx(2.0, abs=0.2) and abs(np.median(v[4:-4, 4:-4])) < 0.2
    mapped = flow_to_uint8(np.array([-20.0, -15.0, -1.0, 0.0, 1.0, 2.0, 15.0, 40.0]))
    assert mapped.dtype == np.uint8 and mapped.tolist() == [0, 0, 119, 128, 136, 144, 255, 255]
    assert np.median(flow_to_uint8(u)[4:-4, 4:-4]) > 128, "rightward motion: u above the no-motion grey"
    assert uint8_to_flow(np.array([0, 255])).tolist() == [-15.0, 15.0]


def test_the_cli_prepares_and_checks(synthetic, tmp_path, capsys):
    raw = _copy_download(synthetic, tmp_path)
    assert main(["prepare", "ucf101", str(raw), str(tmp_path / "out"), "--workers", "1", "--no-progress"]) == 0
    assert "UCF-101 prepared at" in capsys.readouterr().out
    assert main(["check-data", "ucf101", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "(train 9, test 3 samples)" in capsys.readouterr().out
    assert main(["check-data", "ucf101", str(tmp_path / "nothing"), "--no-progress"]) == 1


@pytest.mark.ci  # about 40 s on 2 cores: the dimml layout's TV-L1 runs on every frame pair at shorter side 256
def test_the_prepare_command_writes_the_layout_it_is_asked_for(tmp_path, capsys):
    from mwam_harness.datasets.ucf101.synthetic import write_ucf101
    from reproduce.cli import main

    write_ucf101(tmp_path / "set", classes=2, groups=4, clips=1, frames=8, width=32, height=24, workers=1)
    raw, out = tmp_path / "set" / "raw", tmp_path / "dimml"
    assert main(["prepare", "ucf101", str(raw), str(out), "--layout", "dimml", "--workers", "1", "--no-progress"]) == 0
    assert "prepared at" in capsys.readouterr().out
    assert (out / "jpegs_256").is_dir() and (out / "tvl1_flow" / "u").is_dir()
    assert not (out / "ucf101-frames-1fps").exists()
