"""DroneVehicle: the spec, the conversion of the release, the fork-layout route, errors, the 6-channel ultralytics
loader, the checker and the synthetic stand-in (tiny sets, cheap)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mwam_harness.datasets import dataset_spec
from mwam_harness.datasets.dronevehicle import BORDER, CLASS_ALIASES, CLASS_NAMES, PRESETS, RAW_SIZE, SPLITS
from mwam_harness.datasets.dronevehicle.check import check_data
from mwam_harness.datasets.dronevehicle.layout import (
    data_dict,
    ir_path,
    is_fork_layout,
    is_prepared,
    is_raw,
    parse_label_text,
)
from mwam_harness.datasets.dronevehicle.prepare import MANIFEST, PrepareError, prepare_dronevehicle, read_manifest
from mwam_harness.datasets.dronevehicle.synthetic import IR_GROUP, IR_SIGNATURE, SIZES, render_pair, write_dronevehicle


# ---------------------------------------------------------------- helpers
def _xml(objects: str) -> str:
    return (
        "<annotation><filename>x.jpg</filename><size><width>840</width><height>712</height><depth>3</depth></size>"
        f"{objects}</annotation>"
    )


def _polygon(name: str, xs, ys) -> str:
    corners = "".join(f"<x{i}>{x}</x{i}><y{i}>{y}</y{i}>" for i, (x, y) in enumerate(zip(xs, ys, strict=True), 1))
    return f"<object><name>{name}</name><pose>Unspecified</pose><polygon>{corners}</polygon></object>"


def _bndbox(name: str, x0, y0, x1, y1) -> str:
    box = f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
    return f"<object><name>{name}</name><bndbox>{box}</bndbox></object>"


KNOWN = _xml(
    _polygon("car", [200, 260, 260, 200], [150, 150, 180, 180])  # -> 100..160 x 50..80 in the crop
    + _bndbox("feright car", 400, 300, 480, 340)  # -> 300..380 x 200..240, class 4
    + _polygon("truck", [50, 150, 150, 50], [600, 600, 650, 650])  # clipped: x 0..50, y 500..512
    + _polygon("bus", [10, 90, 90, 10], [300, 300, 320, 320])  # in the border only: dropped
)


def _image(value: int, size=RAW_SIZE) -> np.ndarray:
    image = np.full((*size, 3), value, np.uint8)
    image[size[0] // 2 :, : size[1] // 3] = 255 - value
    return image


def _release(root: Path, names=("00001",), xml: str = KNOWN, size=RAW_SIZE) -> Path:
    for split in SPLITS:
        for kind in ("img", "imgr", "label", "labelr"):
            (root / split / f"{split}{kind}").mkdir(parents=True, exist_ok=True)
        for name in names:
            cv2.imwrite(str(root / split / f"{split}img" / f"{name}.jpg"), _image(60, size))
            cv2.imwrite(str(root / split / f"{split}imgr" / f"{name}.jpg"), _image(120, size))
            van = _polygon("van", [300, 340, 340, 300], [300, 300, 330, 330])
            (root / split / f"{split}label" / f"{name}.xml").write_text(_xml(van))
            (root / split / f"{split}labelr" / f"{name}.xml").write_text(xml)
    return root


def _rows(path: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split()] for line in path.read_text().splitlines()])


# ---------------------------------------------------------------- spec
def test_the_spec_is_torch_free_and_its_presets_are_the_forks():
    code = (
        "import sys; from mwam_harness.datasets import dataset_spec; s = dataset_spec('dronevehicle');"
        "print(s.modalities, s.task, s.num_classes, s.metric, sorted(s.presets),"
        " any(m in sys.modules for m in ('torch', 'cv2', 'numpy', 'ultralytics')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "('rgb', 'ir') detection 5 map50 ['demo', 'paper', 'smoke'] False"
    paper = PRESETS["paper"]
    assert not paper.synthetic
    assert paper.run["train"] == {"epochs": 200, "batch_size": 16, "amp": "fp16", "deterministic": True}
    assert paper.run["optim"] == {"name": "sgd", "lr": 0.01, "momentum": 0.937, "weight_decay": 5e-4, "nesterov": True}
    assert paper.run["data"] == {"options": {"imgsz": 640}} and paper.methods == {"ultralytics": {"close_mosaic": 0}}
    assert PRESETS["smoke"].generator == {"num_train": 8, "num_val": 4, "num_test": 6}
    assert PRESETS["demo"].methods["ultralytics"]["nbs"] == PRESETS["demo"].run["train"]["batch_size"]
    assert {CLASS_ALIASES[n] for n in ("feright_car", "feright car", "feright", "*", "freight_car")} == {4}
    assert CLASS_NAMES.index("van") == 3


# ---------------------------------------------------------------- layout
def test_ir_path_replaces_the_last_images_folder_only():
    assert ir_path("/data/images/dv/images/train/00001.jpg") == Path("/data/images/dv/image/train/00001.jpg")
    assert ir_path("/a/images/val/x.jpg", ir_dir="imagesIR") == Path("/a/imagesIR/val/x.jpg")
    with pytest.raises(ValueError, match="not inside an 'images' folder"):
        ir_path("/a/rgb/images.jpg")


def test_parse_label_text_reports_each_bad_line():
    rows, problems = parse_label_text("0 0.5 0.5 0.1 0.1\n7 0.5 0.5 0.1 0.1\n1 0.5 x 0.1 0.1\n1 1.5 0.5 0.1 0.1\n"
                                      "1 0.5 0.5 0 0.1\n1 0.5 0.5\n")  # fmt: skip
    assert rows == [(0, 0.5, 0.5, 0.1, 0.1)]
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5", "line 6"]


# ---------------------------------------------------------------- prepare
def test_prepare_converts_polygons_bndboxes_misspellings_and_clips(tmp_path, capsys):
    source = _release(tmp_path / "images" / "src")  # "images" elsewhere in the path
    out = prepare_dronevehicle(source, tmp_path / "out")
    assert is_prepared(out) and not is_raw(out)
    assert _rows(out / "labels" / "train" / "00001.txt") == pytest.approx(
        np.array([[0, 130 / 640, 65 / 512, 60 / 640, 30 / 512], [4, 340 / 640, 220 / 512, 80 / 640, 40 / 512],
         [1, 25 / 640, 506 / 512, 50 / 640, 12 / 512]]), abs=1e-6)  # fmt: skip
    rgb = cv2.imread(str(out / "images" / "val" / "00001.jpg"))
    ir = cv2.imread(str(out / "image" / "val" / "00001.jpg"))
    assert rgb.shape == ir.shape == (512, 640, 3)
    expected = _image(60)[BORDER : BORDER + 512, BORDER : BORDER + 640]
    assert np.abs(rgb.astype(int) - expected).mean() < 2
    assert (out / "test.txt").read_text() == "./images/test/00001.jpg\n"
    manifest = read_manifest(out)
    assert manifest["dropped"] == {"train": 1, "val": 1, "test": 1} and manifest["objects"]["train"] == 3
    assert "3 boxes lie in the 100-px border" in capsys.readouterr().err
    # RGB annotations instead
    rgb_out = prepare_dronevehicle(source, tmp_path / "out_rgb", annotations="rgb", progress=False)
    van = np.array([[3, 220 / 640, 215 / 512, 40 / 640, 30 / 512]])
    assert _rows(rgb_out / "labels" / "test" / "00001.txt") == pytest.approx(van, abs=1e-6)


def test_prepare_is_idempotent_and_rebuilds_on_a_changed_option(tmp_path):
    source = _release(tmp_path / "src")
    out = prepare_dronevehicle(source, tmp_path / "out", progress=False)
    stamp = (out / "labels" / "train" / "00001.txt").stat().st_mtime_ns
    time.sleep(0.01)
    prepare_dronevehicle(source, out, progress=False)
    assert (out / "labels" / "train" / "00001.txt").stat().st_mtime_ns == stamp  # reused
    prepare_dronevehicle(source, out, annotations="rgb", progress=False)
    assert _rows(out / "labels" / "train" / "00001.txt")[0][0] == 3 and read_manifest(out)["options"] == {
        "annotations": "rgb"
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no build folder left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(PrepareError, match="neither empty nor a DroneVehicle root"):
        prepare_dronevehicle(source, tmp_path / "mine", progress=False)


def test_prepare_links_the_fork_layout(tmp_path):
    fork = tmp_path / "fork"
    for split in SPLITS:
        for folder in ("images", "image", "labels"):
            (fork / folder / split).mkdir(parents=True)
        for name in ("b", "a"):
            cv2.imwrite(str(fork / "images" / split / f"{name}.jpg"), np.zeros((512, 640, 3), np.uint8))
            cv2.imwrite(str(fork / "image" / split / f"{name}.jpg"), np.zeros((512, 640, 3), np.uint8))
            (fork / "labels" / split / f"{name}.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    assert is_fork_layout(fork) and not is_raw(fork)
    out = prepare_dronevehicle(fork, tmp_path / "out", progress=False)
    assert (out / "images" / "train").is_symlink() and (out / "labels" / "val" / "a.txt").is_file()
    assert (out / "train.txt").read_text() == "./images/train/a.jpg\n./images/train/b.jpg\n"
    assert check_data(out, progress=False) == []
    cv2.imwrite(str(fork / "image" / "val" / "a.jpg"), np.zeros((500, 640, 3), np.uint8))
    with pytest.raises(PrepareError, match=r"images/val/a.jpg: RGB is 640 x 512 but its IR twin .*image/val/a.jpg"):
        prepare_dronevehicle(fork, tmp_path / "out2", progress=False)
    (fork / "image" / "val" / "a.jpg").unlink()
    with pytest.raises(PrepareError, match=r"images/val/a.jpg: RGB image without its IR twin"):
        prepare_dronevehicle(fork, tmp_path / "out2", progress=False)


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<annotation><object>", "unreadable annotation XML"),
        (_xml("<object><name>car</name></object>"), "no <polygon> or <bndbox> coordinates"),
        (_xml(_polygon("tank", [1, 2, 2, 1], [1, 1, 2, 2])), "unknown class 'tank'"),
        (_xml(_polygon("car", [900, 950, 950, 900], [10, 10, 20, 20])), "lies entirely outside the 840 x 712 image"),
        (_xml(_polygon("car", [1, "a", 2, 1], [1, 1, 2, 2])), "non-numeric <x2> 'a'"),
        (_xml("<object><name>car</name><polygon><x1>3</x1></polygon></object>"), "no <x2> coordinate"),
    ],
)
def test_prepare_names_the_bad_annotation(tmp_path, xml, message):
    source = _release(tmp_path / "src", xml=xml)
    with pytest.raises(PrepareError, match=message) as error:
        prepare_dronevehicle(source, tmp_path / "out", progress=False)
    assert "trainlabelr/00001.xml" in str(error.value)
    assert not (tmp_path / "out").exists()


def test_prepare_names_missing_twins_sizes_and_annotations(tmp_path):
    source = _release(tmp_path / "src", names=("00001", "00002", "00003", "00004"))
    (source / "train" / "trainimgr" / "00001.jpg").unlink()
    (source / "val" / "valimg" / "00002.jpg").unlink()
    (source / "test" / "testlabelr" / "00003.xml").unlink()
    (source / "test" / "testlabelr" / "00004.xml").write_text(_xml(""))  # zero objects: fine
    with pytest.raises(PrepareError) as error:
        prepare_dronevehicle(source, tmp_path / "out", progress=False)
    text = str(error.value)
    assert "train/trainimg/00001.jpg: RGB image without its IR twin" in text
    assert "val/valimgr/00002.jpg: IR image without its RGB twin" in text
    assert "test/testimg/00003.jpg: no annotation file" in text and "00004" not in text
    other = _release(tmp_path / "small", size=(700, 840))
    with pytest.raises(
        PrepareError, match=r"trainimg/00001.jpg \(and .*\): 840 x 700, expected the release's 840 x 712"
    ):
        prepare_dronevehicle(other, tmp_path / "out", progress=False)
    mixed = _release(tmp_path / "mixed")
    cv2.imwrite(str(mixed / "val" / "valimgr" / "00001.jpg"), _image(1, (712, 800)))
    with pytest.raises(PrepareError, match=r"valimg/00001.jpg: RGB is 840 x 712 but its IR twin .*valimgr/00001.jpg"):
        prepare_dronevehicle(mixed, tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_dronevehicle(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match="neither the DroneVehicle release"):
        prepare_dronevehicle(tmp_path / "empty", tmp_path / "o")


# ---------------------------------------------------------------- checker
def test_check_data_finds_each_problem(tmp_path):
    root = write_dronevehicle(tmp_path / "dv", num_train=3, num_val=1, num_test=1)
    assert check_data(root, progress=False) == []
    (root / "image" / "train" / "00001.jpg").unlink()
    (root / "images" / "train" / "00002.jpg").write_bytes(b"not a jpeg")
    (root / "labels" / "train" / "00003.txt").write_text("9 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.1\n")
    cv2.imwrite(str(root / "image" / "val" / "00001.jpg"), np.zeros((100, 100, 3), np.uint8))
    (root / "labels" / "test" / "00001.txt").unlink()
    (root / "source" / "val" / "vallabel" / "00001.xml").write_text("<annotation>")
    found = {(Path(p.file).relative_to(root).as_posix(), p.message.split(" (")[0]) for p in check_data(root, False)}
    assert ("image/train/00001.jpg", "missing IR image") in found
    assert ("images/train/00002.jpg", "unreadable RGB image") in found
    assert ("labels/train/00003.txt", "line 1: class 9 is not an integer in 0-4") in found
    assert ("labels/train/00003.txt", "line 2: 4 values, expected 5") in found
    assert any(f == "images/val/00001.jpg" and m.startswith("RGB is 640 x 512 but its IR twin") for f, m in found)
    assert ("labels/test/00001.txt", "missing label file") in found
    assert any(f == "source/val/vallabel/00001.xml" for f, _ in found)
    assert check_data(tmp_path / "nothing", progress=False)[0].message.startswith("not a directory")
    # a raw release: pairs and annotations
    (root / "source" / "test" / "testimgr" / "00001.jpg").unlink()
    raw = {(Path(p.file).name, p.message.split(" (")[0]) for p in check_data(root / "source", progress=False)}
    assert ("00001.jpg", "RGB image without its IR twin") in raw and any(f == "00001.xml" for f, _ in raw)


# ---------------------------------------------------------------- synthetic
def test_synthetic_set_layout_reuse_and_speed(tmp_path):
    start = time.perf_counter()
    root = write_dronevehicle(tmp_path / "dv", **PRESETS["smoke"].generator)
    elapsed = time.perf_counter() - start
    assert elapsed < 4.0  # ~0.8 s on a 2-core CPU
    spec = dataset_spec("dronevehicle")
    assert [spec.listed_samples(root, s) for s in SPLITS] == [8, 4, 6] and spec.is_synthetic(root)
    assert is_raw(root / "source") and is_prepared(root)
    assert json.loads((root / "synthetic.json").read_text())["num_train"] == 8 and not (root / MANIFEST).exists()
    raw = cv2.imread(str(root / "source" / "train" / "trainimg" / "00001.jpg"))
    assert raw.shape == (712, 840, 3) and raw[:BORDER].min() > 240 and raw[:, -BORDER:].min() > 240
    xml = "".join(p.read_text() for p in (root / "source").rglob("*labelr/*.xml"))
    assert "<bndbox>" in xml and "<polygon>" in xml
    fingerprint = spec.fingerprint(root)
    assert write_dronevehicle(root, **PRESETS["smoke"].generator) == root and spec.fingerprint(root) == fingerprint
    assert spec.fingerprint(write_dronevehicle(tmp_path / "other", num_train=8, num_val=4, num_test=6, seed=1)) != (
        fingerprint
    )
    assert check_data(root, progress=False) == []


def _vehicle_contrast(image: np.ndarray, objects) -> float:
    """Mean |vehicle - surrounding ground| over the objects (pixels inside vs a ring around the box)."""
    grey = image.astype(np.float32).mean(2)
    values = []
    for obj in objects:
        mask = np.zeros(grey.shape, np.uint8)
        cv2.fillConvexPoly(mask, np.round(obj["corners"]).astype(np.int32), 1)
        ring = cv2.dilate(mask, np.ones((15, 15), np.uint8)) - mask
        inner = mask[BORDER : BORDER + 512, BORDER : BORDER + 640].astype(bool)
        outer = ring[BORDER : BORDER + 512, BORDER : BORDER + 640].astype(bool)
        if inner.sum() > 50 and outer.sum() > 50:
            crop = grey[BORDER : BORDER + 512, BORDER : BORDER + 640]
            values.append(abs(crop[inner].mean() - crop[outer].mean()) + abs(crop[inner].std() - crop[outer].std()))
    return float(np.mean(values))


def test_synthetic_night_hides_vehicles_in_rgb_and_ir_groups_share_signatures():
    rgb_night, ir_night, rgb_day = [], [], []
    for k in range(4):
        rgb, ir, objects = render_pair(np.random.default_rng([5, k]), night=True)
        rgb_night.append(_vehicle_contrast(rgb, objects))
        ir_night.append(_vehicle_contrast(ir, objects))
        rgb, _, objects = render_pair(np.random.default_rng([5, k]), night=False)
        rgb_day.append(_vehicle_contrast(rgb, objects))
    assert np.mean(rgb_night) * 3 < np.mean(ir_night) and np.mean(rgb_night) * 4 < np.mean(rgb_day)
    # car = van and truck = freight car in IR (sizes and signatures by group); bus apart
    assert IR_GROUP[0] == IR_GROUP[3] != IR_GROUP[2] != IR_GROUP[1] == IR_GROUP[4]
    assert len({IR_SIGNATURE[g] for g in IR_GROUP.values()}) == len({SIZES[g] for g in IR_GROUP.values()}) == 3


# ---------------------------------------------------------------- loader
@pytest.fixture(scope="module")
def twin_root(tmp_path_factory):
    """A prepared root whose IR images are copies of the RGB ones."""
    root = write_dronevehicle(tmp_path_factory.mktemp("dv") / "twin", num_train=4, num_val=1, num_test=1)
    for rgb in (root / "images").rglob("*.jpg"):
        (root / "image" / rgb.parent.name / rgb.name).write_bytes(rgb.read_bytes())
    return root


def test_the_loader_stacks_six_channels_and_transforms_both_halves_alike(twin_root):
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    from mwam_harness.datasets.dronevehicle.loader import DroneVehicleDataset, build_two_stream_dataset

    im, hw0, hw = DroneVehicleDataset(twin_root, "val", imgsz=96).load_image(0)
    assert im.shape == (77, 96, 6) and im.dtype == np.uint8 and hw0 == (512, 640) and hw == (77, 96)
    none = DroneVehicleDataset(twin_root, "train", train=True, imgsz=96, hsv="none", batch_size=4)
    np.random.seed(0)
    for k in range(4):  # mosaic, perspective, flips: both halves identical
        img = none[k]["img"].numpy()
        assert img.shape == (6, 96, 96) and np.array_equal(img[:3], img[3:])
    rgb = DroneVehicleDataset(twin_root, "train", train=True, imgsz=96, hsv="rgb", batch_size=4)
    changed = 0
    for k in range(4):
        img = rgb[k]["img"].numpy()
        changed += not np.array_equal(img[:3], img[3:])
        assert img[3:].std() > 0
    assert changed >= 3  # RGB recoloured, IR not
    cfg = get_cfg(DEFAULT_CFG, {"imgsz": 64})
    built = build_two_stream_dataset(cfg, str(twin_root / "val.txt"), 2, data_dict(twin_root), mode="val")
    assert built[0]["img"].shape == (6, 64, 64) and not built.augment
    assert type(built.transforms.transforms[0]).__name__ == "LetterBox"


def test_the_loader_refuses_disk_cache_and_bad_pairs_and_labels(twin_root, tmp_path):
    import shutil

    from mwam_harness.datasets.dronevehicle.loader import DroneVehicleDataset, TwoStreamYOLODataset

    with pytest.raises(ValueError, match="cache='disk' is not supported"):
        DroneVehicleDataset(twin_root, "val", cache="disk")
    ram = DroneVehicleDataset(twin_root, "train", train=True, imgsz=64, cache="ram", batch_size=2)
    assert ram.load_image(1)[0].shape[2] == 6 and ram[0]["img"].shape == (6, 64, 64)
    root = tmp_path / "bad"
    shutil.copytree(twin_root, root, ignore=shutil.ignore_patterns("*.cache", "source"))
    (root / "labels" / "train" / "00002.txt").write_text("0 0.5 0.5 0.1 1.7\n")
    (root / "labels" / "train" / "00003.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(
        ValueError, match=r"00002.txt: line 1: coordinates outside \[0, 1\][\s\S]*00003.txt: line 1: class"
    ):
        DroneVehicleDataset(root, "train")
    cv2.imwrite(str(root / "image" / "val" / "00001.jpg"), np.zeros((100, 120, 3), np.uint8))
    with pytest.raises(ValueError, match=r"images/val/00001.jpg is 640 x 512 but its IR twin .*image/val/00001.jpg"):
        DroneVehicleDataset(root, "val").load_image(0)
    (root / "image" / "test" / "00001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"images/test/00001.jpg: no IR twin .*image/test/00001.jpg"):
        TwoStreamYOLODataset(img_path=str(root / "test.txt"), data=data_dict(root), augment=False)
    with pytest.raises(ValueError, match="hsv must be one of"):
        DroneVehicleDataset(root, "val", hsv="all")


def test_the_yaml_resolves_relative_to_its_folder_in_ultralytics(twin_root, monkeypatch):
    import ultralytics.data.utils as data_utils

    monkeypatch.setattr(data_utils, "check_font", lambda *a, **k: None)  # no font download
    assert os.environ.get("YOLO_OFFLINE") == "1"
    data = data_utils.check_det_dataset(str(twin_root / "dronevehicle.yaml"))
    expected = data_dict(twin_root)
    assert {k: data[k] for k in ("train", "val", "test", "channels", "nc", "ir_dir")} == {
        k: expected[k] for k in ("train", "val", "test", "channels", "nc", "ir_dir")
    }
    assert data["names"] == expected["names"]
