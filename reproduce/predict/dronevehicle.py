"""DroneVehicle's predictor: a finished two-stream YOLOv8 run (``two_stream_yolov8n``, ``two_stream_yolov8n_pc2f_mpf``)
applied to a user's RGB / infrared image pairs; boxes of the 5 vehicle classes.

**Input** (``--input``): a folder that keeps the two cameras apart as DroneVehicle does -- ``rgb/NAME.jpg`` and
``ir/NAME.jpg`` (the same stem; suffixes .jpg .jpeg .png .bmp .tif .tiff) -- or one flat folder of ``NAME.jpg``
(RGB) and ``NAME_ir.jpg`` (IR); or one image file of either layout, its twin looked up beside it. An image without
its twin is predicted without that modality (the subset rule of :mod:`reproduce.predict.base`).

**Preprocessing**, as the run's evaluation (:mod:`reproduce.yolo.evaluation`: ultralytics' validator on the
project's :class:`~mwam_harness.datasets.dronevehicle.loader.TwoStreamYOLODataset`), by that very data set class with
only its file listing and labels replaced: the pair stacked as one 6-channel image (RGB's BGR in channels 0-2, IR in
3-5), the long side resized to the run's ``imgsz`` (the loader's ``load_image``), letterboxed (grey 114) to
ultralytics' rectangular validation shape (stride multiple, half a stride of padding; one image per batch), scaled
to [0, 1]. An absent stream's channels are zero and the model runs under
:meth:`~models.yolo.two_stream.TwoStreamDetectionModel.use_modalities` (with the default ``absent="features"`` the
absent backbone is not run at all), as evaluation computes Table 12's RGB and IR rows.

**Detections**: ultralytics' ``predict`` defaults -- confidence >= 0.25, NMS IoU 0.7, at most 300 boxes, one class
per box (evaluation keeps every box above 0.001 for the mAP, several classes per box) -- mapped back to the
original pixels by ultralytics' ``scale_boxes`` with the letterbox's ratio and padding, as the validator does.
``DroneVehiclePredictor(conf=..., iou=...)`` changes them from Python (the command line has no option for it).

**Output** (in ``--output``): ``labels/NAME.txt`` (YOLO ``class cx cy w h conf``, normalised to the original image;
empty without detections), ``detections.csv`` (a row per box of every image: name, subset, class id and name,
confidence, x1 y1 x2 y2 in pixels) and ``NAME_boxes.jpg`` (the boxes with class and confidence on the RGB image, or
on the IR one when RGB is not used, with a legend of the class colours below it).

**Weights**: the ultralytics runner copies the evaluated ultralytics checkpoint (``best.pt``, else ``last.pt``) to
the run's ``model.pt``; it is loaded with ultralytics' ``load_checkpoint`` and fused, as evaluation's ``AutoBackend``
loads it. A ``{"config_key", "host"}`` file (the engine's format) is accepted as well.
"""

from __future__ import annotations

import csv
import functools
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.predict.base import Prediction, PredictionError, Predictor, choose_subset, register_predictor
from reproduce.predict.trained import TrainedRun, TrainedRunError

RGB_FOLDER, IR_FOLDER = "rgb", "ir"
IR_SUFFIX = "_ir"
#: Ultralytics' ``predict`` defaults (``ultralytics/cfg/default.yaml``: conf 0.25 for predict, iou, max_det).
CONF, IOU, MAX_DET = 0.25, 0.7, 300
#: Padding of ultralytics' rectangular validation batches, in strides (``build_yolo_dataset``: 0.5 unless training).
VAL_PAD = 0.5
LABELS_DIR = "labels"
CSV_NAME = "detections.csv"
CSV_COLUMNS = ("name", "subset", "class_id", "class_name", "conf", "x1", "y1", "x2", "y2")
BOXES_SUFFIX = "_boxes.jpg"


@dataclass(frozen=True)
class Pair:
    """One input: its name and its RGB / IR files (None: absent)."""

    name: str
    rgb: Path | None
    ir: Path | None

    def files(self) -> dict[str, Path | None]:
        return {"rgb": self.rgb, "ir": self.ir}


# ---------------------------------------------------------------- finding the pairs
def _suffixes() -> tuple[str, ...]:
    from mwam_harness.datasets.dronevehicle.layout import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def _images(folder: Path) -> dict[str, Path]:
    """Stem -> image file of ``folder`` (no recursion); PredictionError for two images with one stem."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in _suffixes():
            if path.stem in found:
                raise PredictionError(f"{found[path.stem]} and {path}: two images named {path.stem!r}; keep one")
            found[path.stem] = path
    return found


def _is_ir_stem(stem: str) -> bool:
    return stem.endswith(IR_SUFFIX) and len(stem) > len(IR_SUFFIX)


def _layout_help() -> str:
    return (
        f"rgb/NAME.jpg and ir/NAME.jpg, or NAME.jpg and NAME{IR_SUFFIX}.jpg in one folder; "
        f"image suffixes {' '.join(_suffixes())}"
    )


def find_pairs(inputs: Path) -> list[Pair]:
    """The pairs under ``inputs`` (a folder of either layout, or one image), sorted by name (module docstring)."""
    if inputs.is_file():
        return [_pair_of_file(inputs)]
    if not inputs.is_dir():
        raise PredictionError(f"{inputs}: not a folder or an image file")
    rgb_dir, ir_dir = inputs / RGB_FOLDER, inputs / IR_FOLDER
    if rgb_dir.is_dir() or ir_dir.is_dir():
        loose = _images(inputs)
        if loose:
            raise PredictionError(
                f"{inputs}: images beside its {RGB_FOLDER}/ and {IR_FOLDER}/ folders ({next(iter(loose.values())).name}"
                f"{', ...' if len(loose) > 1 else ''}); use one layout: {_layout_help()}"
            )
        rgb = _images(rgb_dir) if rgb_dir.is_dir() else {}
        ir = _images(ir_dir) if ir_dir.is_dir() else {}
    else:
        images = _images(inputs)
        ir = {stem[: -len(IR_SUFFIX)]: path for stem, path in images.items() if _is_ir_stem(stem)}
        rgb = {stem: path for stem, path in images.items() if not _is_ir_stem(stem)}
    pairs = [Pair(name, rgb.get(name), ir.get(name)) for name in sorted(set(rgb) | set(ir))]
    if not pairs:
        raise PredictionError(f"{inputs}: no images found (expected {_layout_help()})")
    return pairs


def _twin(folder: Path, stem: str) -> Path | None:
    """The image of ``folder`` named ``stem`` (any image suffix), None when there is none."""
    if not folder.is_dir():
        return None
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and p.stem == stem and p.suffix.lower() in _suffixes()]
    if len(found) > 1:
        raise PredictionError(f"{found[0]} and {found[1]}: two images named {stem!r}; keep one")
    return found[0] if found else None


def _pair_of_file(path: Path) -> Pair:
    """The pair of one image file: its twin in the sibling ``rgb/`` / ``ir/`` folder, or ``NAME_ir`` beside it."""
    if path.suffix.lower() not in _suffixes():
        raise PredictionError(f"{path}: not an image ({_layout_help()})")
    folder, stem = path.parent, path.stem
    if folder.name in (RGB_FOLDER, IR_FOLDER):
        is_rgb = folder.name == RGB_FOLDER
        twin = _twin(folder.parent / (IR_FOLDER if is_rgb else RGB_FOLDER), stem)
        return Pair(stem, path, twin) if is_rgb else Pair(stem, twin, path)
    if _is_ir_stem(stem):
        name = stem[: -len(IR_SUFFIX)]
        return Pair(name, _twin(folder, name), path)
    return Pair(stem, path, _twin(folder, stem + IR_SUFFIX))


# ---------------------------------------------------------------- reading and checking the images
def read_image(path: Path) -> Any:
    """The (H, W, 3) uint8 BGR image at ``path``, read as the data set's loader reads it; PredictionError naming the
    file when it is empty, cut short or cannot be decoded."""
    import cv2
    from ultralytics.utils.patches import imread

    from mwam_harness.datasets.checking import image_file_problem

    problem = image_file_problem(path)
    if problem is None:
        image = imread(str(path), flags=cv2.IMREAD_COLOR)
        problem = None if image is not None and image.size else "not an image OpenCV can decode"
    if problem is not None:
        raise PredictionError(f"{path}: unreadable image ({problem})")
    return image


def check_pair(pair: Pair, subset: Sequence[str]) -> tuple[int, int]:
    """``(height, width)`` of ``pair``'s images of ``subset`` (decoded once); PredictionError for an unreadable image
    or an RGB / IR pair of different sizes."""
    shapes = {m: read_image(path).shape[:2] for m in subset if (path := pair.files()[m]) is not None}
    if len(set(shapes.values())) > 1:
        (h0, w0), (h1, w1) = shapes["rgb"], shapes["ir"]
        raise PredictionError(
            f"{pair.name}: the RGB image {pair.rgb} is {w0} x {h0} but the IR image {pair.ir} is {w1} x {h1}; "
            "the two-stream model needs registered pairs of one size"
        )
    return next(iter(shapes.values()))


# ---------------------------------------------------------------- the model
def load_model(run: TrainedRun, device: Any) -> Any:
    """The run's two-stream detection model from ``model.pt`` (module docstring), fused, in eval mode on ``device``."""
    import torch

    from mwam_harness.models.yolo.offline import ultralytics_offline

    ultralytics_offline()
    from ultralytics.nn.tasks import load_checkpoint

    try:
        model, _ = load_checkpoint(run.weights)
    except TypeError:  # not an ultralytics checkpoint: the engine's {"config_key", "host"}
        model = None
    except (EOFError, RuntimeError, pickle.UnpicklingError) as error:  # a truncated or foreign file
        raise TrainedRunError(f"{run.weights}: not a readable checkpoint ({error})") from None
    if model is None:
        model = _engine_host(run)
    if not hasattr(model, "use_modalities"):
        raise TrainedRunError(f"{run.weights} does not hold a two-stream model (got {type(model).__name__})")
    model = model.float().fuse(verbose=False) if hasattr(model, "fuse") else model.float()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.to(torch.device(device)).eval()


def _engine_host(run: TrainedRun) -> Any:
    """The host rebuilt from a ``{"config_key", "host"}`` weights file (the engine's format)."""
    from mwam_harness import models
    from reproduce.checkpoints import load_checkpoint

    state = load_checkpoint(run.weights, "cpu")
    if not isinstance(state, dict) or "host" not in state:
        raise TrainedRunError(
            f"{run.weights}: neither an ultralytics checkpoint (the YOLO runner's) nor a run's host weights"
        )
    if state.get("config_key") not in (None, run.key):
        raise TrainedRunError(f"{run.weights} holds the weights of run {state['config_key']}, not of {run.key}")
    host = models.build(run.config.host.name, **run.config.host.options)
    host.load_state_dict(state["host"])
    return host


def class_names(model: Any) -> list[str]:
    """The class names: DroneVehicle's (car, truck, bus, van, freight_car), unless the model has another count."""
    from mwam_harness.datasets.dronevehicle import CLASS_NAMES

    names = getattr(model, "names", None)
    if isinstance(names, dict) and names and len(names) != len(CLASS_NAMES):
        return [str(names[k]) for k in sorted(names)]
    return list(CLASS_NAMES)


# ---------------------------------------------------------------- the data set evaluation reads, on the user's pairs
@functools.cache
def _pairs_dataset_class() -> type:
    """:class:`TwoStreamYOLODataset` over in-memory pairs (imported on first use: it imports ultralytics)."""
    import numpy as np

    from mwam_harness.models.yolo.offline import ultralytics_offline

    ultralytics_offline()
    from mwam_harness.datasets.dronevehicle.loader import TwoStreamYOLODataset

    class UserPairs(TwoStreamYOLODataset):
        """Evaluation's data set with the user's pairs for the listed files and no labels; ``load_pair`` stacks the
        images of each pair's subset and zeros for the absent stream, and keeps the last one read (``last``)."""

        def __init__(self, pairs: dict[str, tuple[Pair, tuple[str, ...], tuple[int, int]]], **kwargs: Any) -> None:
            self.pairs = pairs
            self.last: tuple[str, dict[str, Any]] | None = None
            super().__init__(img_path="", **kwargs)

        def get_img_files(self, img_path: Any) -> list[str]:
            return list(self.pairs)

        def get_labels(self) -> list[dict]:
            return [
                {
                    "im_file": name,
                    "shape": shape,
                    "cls": np.zeros((0, 1), dtype=np.float32),
                    "bboxes": np.zeros((0, 4), dtype=np.float32),
                    "segments": [],
                    "keypoints": None,
                    "normalized": True,
                    "bbox_format": "xywh",
                }
                for name, (_, _, shape) in self.pairs.items()
            ]

        def load_pair(self, i: int) -> Any:
            name = self.im_files[i]
            pair, subset, _ = self.pairs[name]
            images = {m: read_image(pair.files()[m]) for m in subset}  # type: ignore[arg-type]
            blank = np.zeros_like(next(iter(images.values())))
            self.last = (name, images)
            return np.concatenate([images.get("rgb", blank), images.get("ir", blank)], axis=2)

    return UserPairs


def pairs_dataset(
    pairs: Sequence[tuple[Pair, tuple[str, ...], tuple[int, int]]], imgsz: int, stride: int, hsv: str = "rgb"
) -> Any:
    """Evaluation's validation data set (``build_two_stream_dataset(..., mode="val", rect=True)``, one image a batch)
    over ``(pair, subset, (h, w))``."""
    from ultralytics.cfg import get_cfg

    return _pairs_dataset_class()(
        {pair.name: (pair, subset, shape) for pair, subset, shape in pairs},
        imgsz=imgsz,
        batch_size=1,
        augment=False,
        hyp=get_cfg(),
        rect=True,
        cache=None,
        single_cls=False,
        stride=stride,
        pad=VAL_PAD,
        prefix="predict: ",
        task="detect",
        classes=None,
        data={"channels": 6, "nc": 5, "names": {}},
        fraction=1.0,
        hsv=hsv,
    )


# ---------------------------------------------------------------- drawing
def draw_boxes(image: Any, boxes: Any, classes: Sequence[int], scores: Sequence[float], names: Sequence[str]) -> Any:
    """``image`` (BGR) with each box, its class name and confidence, and a legend of the class colours below it."""
    import cv2
    import numpy as np
    from ultralytics.utils.plotting import colors

    canvas = np.ascontiguousarray(image.copy())
    height, width = canvas.shape[:2]
    scale = max(0.35, min(height, width) / 900)
    thickness = max(1, round(min(height, width) / 400))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for box, cls, score in zip(boxes, classes, scores, strict=True):
        color = colors(int(cls), bgr=True)
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        text = f"{names[int(cls)]} {float(score):.2f}"
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y1
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), color, -1)
        ink = (0, 0, 0) if sum(color) > 3 * 140 else (255, 255, 255)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), font, scale, ink, 1, cv2.LINE_AA)
    return np.vstack([canvas, legend(width, names, scale)])


def legend(width: int, names: Sequence[str], scale: float) -> Any:
    """A white strip ``width`` wide: a colour square and the name of every class, wrapped onto rows as needed."""
    import cv2
    import numpy as np
    from ultralytics.utils.plotting import colors

    font = cv2.FONT_HERSHEY_SIMPLEX
    (_, th), base = cv2.getTextSize("Ag", font, scale, 1)
    row, gap = th + base + 6, max(4, th // 2)
    places, x, y = [], gap, 0
    for k, name in enumerate(names):
        (tw, _), _ = cv2.getTextSize(name, font, scale, 1)
        item = th + gap // 2 + tw
        if x > gap and x + item > width:
            x, y = gap, y + row
        places.append((k, name, x, y))
        x += item + 2 * gap
    strip = np.full((y + row, width, 3), 255, dtype=np.uint8)
    for k, name, x, y in places:
        cv2.rectangle(strip, (x, y + 3), (x + th, y + 3 + th), colors(k, bgr=True), -1)
        cv2.rectangle(strip, (x, y + 3), (x + th, y + 3 + th), (96, 96, 96), 1)  # a light colour on white
        cv2.putText(strip, name, (x + th + gap // 2, y + 3 + th), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


# ---------------------------------------------------------------- the predictor
@register_predictor("dronevehicle")
class DroneVehiclePredictor(Predictor):
    """Vehicle boxes of a two-stream YOLOv8 run on RGB / IR pairs (module docstring)."""

    input_help = (
        "a folder with rgb/NAME.jpg and ir/NAME.jpg (or NAME.jpg and NAME_ir.jpg side by side), or one image; "
        "an image without its twin is predicted without that modality"
    )

    def __init__(self, conf: float = CONF, iou: float = IOU, max_det: int = MAX_DET) -> None:
        self.conf, self.iou, self.max_det = conf, iou, max_det

    def predict(
        self, run: TrainedRun, inputs: Path, output: Path, subset: tuple[str, ...] | None, device: Any
    ) -> list[Prediction]:
        from mwam_harness.models.yolo.offline import ultralytics_offline
        from reproduce.yolo.arguments import imgsz

        ultralytics_offline()  # before ultralytics' first import
        modalities = tuple(run.config.modalities)
        checked = []
        for pair in find_pairs(Path(inputs)):  # every input is checked before anything is written
            chosen = choose_subset(modalities, {m: f is not None for m, f in pair.files().items()}, subset, pair.name)
            checked.append((pair, chosen, check_pair(pair, chosen)))
        model = load_model(run, device)
        stride = max(int(model.stride.max()), 32)  # as ultralytics' AutoBackend gives the validator its stride
        dataset = pairs_dataset(checked, imgsz(run.config), stride, str(run.config.data.options.get("hsv", "rgb")))
        names = class_names(model)
        (output / LABELS_DIR).mkdir(parents=True, exist_ok=True)
        predictions, rows = [], []
        order = {name: k for k, name in enumerate(dataset.im_files)}  # rect batches are sorted by aspect ratio
        for pair, chosen, _ in checked:
            detections, image = self.detect(model, dataset, order[pair.name], chosen, modalities, device)
            predictions.append(self.write(output, pair.name, chosen, detections, image, names, rows))
        with (output / CSV_NAME).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(rows)
        return predictions

    def detect(
        self, model: Any, dataset: Any, index: int, subset: tuple[str, ...], modalities: Sequence[str], device: Any
    ) -> tuple[Any, Any]:
        """``((N, 6) detections x1 y1 x2 y2 conf class in original pixels, the image to draw on)`` of item
        ``index``."""
        import torch
        from ultralytics.utils import nms, ops

        batch = dataset.collate_fn([dataset[index]])
        _, images = dataset.last
        img = batch["img"].to(torch.device(device)).float() / 255  # the validator's preprocess (fp32)
        for k, modality in enumerate(modalities):
            if modality not in subset:
                img[:, 3 * k : 3 * k + 3] = 0  # the absent stream: blank channels (and not run: use_modalities)
        with torch.inference_mode(), model.use_modalities(subset):
            raw = model(img)
        found = nms.non_max_suppression(
            raw, self.conf, self.iou, None, False, max_det=self.max_det, nc=0, end2end=getattr(model, "end2end", False)
        )[0]
        found = found[:, :6].clone()
        shape, ratio_pad = batch["ori_shape"][0], batch["ratio_pad"][0]
        found[:, :4] = ops.scale_boxes(img.shape[2:], found[:, :4], shape, ratio_pad=ratio_pad)  # as the validator
        return found.cpu(), images["rgb" if "rgb" in subset else "ir"]

    def write(
        self, output: Path, name: str, subset: tuple[str, ...], detections: Any, image: Any, names: Sequence[str],
        rows: list[list[Any]],
    ) -> Prediction:  # fmt: skip
        """One image's label file and drawing; its CSV rows appended to ``rows``."""
        import cv2

        height, width = image.shape[:2]
        lines = []
        for x1, y1, x2, y2, conf, cls in detections.tolist():
            c = int(cls)
            cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
            lines.append(f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f} {conf:.6f}")
            rows.append([name, "+".join(subset), c, names[c], f"{conf:.6f}", *(f"{v:.2f}" for v in (x1, y1, x2, y2))])
        label = f"{LABELS_DIR}/{name}.txt"
        (output / label).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        drawing = f"{name}{BOXES_SUFFIX}"
        boxes = detections[:, :4].tolist()
        picture = draw_boxes(image, boxes, detections[:, 5].int().tolist(), detections[:, 4].tolist(), names)
        if not cv2.imwrite(str(output / drawing), picture):
            raise OSError(f"cannot write {output / drawing}")
        return Prediction(name, subset, [label, CSV_NAME, drawing], {"detections": len(lines)})
