"""The prepared DroneVehicle as an ultralytics dataset: each RGB / IR pair is ONE 6-channel image.

:class:`TwoStreamYOLODataset` subclasses pip ultralytics' ``YOLODataset`` (8.4) and overrides ``load_image`` to read
the RGB image (``.../images/...``) and its IR twin (the last ``images`` folder replaced by ``ir_dir``, ``image``)
and stack them, ``np.concatenate([rgb, ir], axis=2)``: channels 0-2 are the RGB image and 3-5 the IR image (the
release's IR JPEGs are 3-channel), so ultralytics' mosaic, letterbox, random perspective, mix-up and flips move both
identically. The resize is the base class's. Notes on the other transforms under 6 channels (ultralytics 8.4.190):

- **Channel order**: both halves stay in OpenCV's **BGR** order -- ultralytics reverses BGR to RGB in ``Format``
  only for 3-channel images (and its ``bgr`` hyper-parameter acts only there), so the network sees ``B G R`` of the
  RGB image in channels 0-2 and the IR image's three (equal) channels in 3-5.
- **HSV**: ultralytics' ``RandomHSV`` skips images that are not 3-channel; the two-stream fork (mujianyu/
  TwoStream_Yolov8) recoloured channels ``[:3]``. ``hsv="rgb"`` (default, the fork's) replaces ``RandomHSV`` in the
  built transforms by :class:`RGBRandomHSV`: the same transform with the same gains (``hsv_h``, ``hsv_s``,
  ``hsv_v``), applied to channels 0-2 only. ``hsv="none"`` keeps pip ultralytics' behaviour (no HSV at all).
- **Albumentations** (blur, CLAHE, ... when the ``albumentations`` package is installed) skips images that are not
  1- or 3-channel: it never runs on the 6-channel images.
- **Cache**: ``cache="ram"`` (or True) is the base class's (the stacked images); ``cache="disk"`` is refused --
  the base class writes its ``.npy`` files from the RGB file alone. Existing ``.npy`` files are never read.
- **Strict labels**: ultralytics drops a corrupt label file (bad numbers, class out of range, coordinates outside
  [0, 1]) or an unreadable image with a warning; here construction raises a ValueError naming every such file (and
  a missing label file -- ``prepare`` writes one for every image, empty when it has no objects).
- **Strict images**: ultralytics "restores" a JPEG without its end-of-image marker by re-encoding it in place and
  never looks at the IR twins; here construction raises a ValueError naming every empty or cut-short RGB or IR image
  (``datasets.checking.image_file_problem``) before ultralytics reads any, and every IR twin whose size differs from
  its RGB image (headers only), so that none is found mid-run. A list file that is not UTF-8 is named with its line.
  ``check-data`` reports all of these first.

:func:`build_two_stream_dataset` mirrors ``ultralytics.data.build.build_yolo_dataset`` (for a trainer's or
validator's ``build_dataset``); :class:`DroneVehicleDataset` is the data set's registered loader. Ultralytics is
kept offline (``YOLO_OFFLINE=1`` unless set otherwise, before it is imported: nothing here downloads anything).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics.utils.is_online() reads it at import: no network probes

import cv2
import numpy as np
from ultralytics.data.augment import Compose, RandomHSV
from ultralytics.data.dataset import YOLODataset
from ultralytics.utils.patches import imread

from mwam_harness.datasets.checking import ListFileError, image_file_problem, read_list_text
from mwam_harness.datasets.dronevehicle.layout import IR_DIR, data_dict, ir_path, list_path, parse_label_text

HSV_MODES = ("rgb", "none")
MAX_LISTED = 20


class RGBRandomHSV(RandomHSV):
    """ultralytics' ``RandomHSV`` (same gains, same random draws) applied to channels 0-2 of a 6-channel image."""

    def apply_image(self, labels: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        img = labels["img"]
        if img.shape[-1] == 3:
            return super().apply_image(labels, params)
        rgb = np.ascontiguousarray(img[..., :3])
        img[..., :3] = super().apply_image({"img": rgb}, params)["img"]
        return labels


def _replace_hsv(transforms: Any) -> int:
    """Replace every ``RandomHSV`` inside ``transforms`` (nested ``Compose`` included) by :class:`RGBRandomHSV`."""
    replaced = 0
    if isinstance(transforms, Compose):
        for k, transform in enumerate(transforms.transforms):
            if type(transform) is RandomHSV:
                transforms.transforms[k] = RGBRandomHSV(transform.hgain, transform.sgain, transform.vgain)
                replaced += 1
            else:
                replaced += _replace_hsv(transform)
    return replaced


def _listed(problems: list[str]) -> str:
    shown = problems[:MAX_LISTED] + (
        [f"... and {len(problems) - MAX_LISTED} more"] if len(problems) > MAX_LISTED else []
    )
    return "\n  ".join(shown)


class TwoStreamYOLODataset(YOLODataset):
    """A ``YOLODataset`` of RGB / IR pairs as 6-channel images (see the module docstring).

    Takes ``YOLODataset``'s arguments (``img_path``, ``imgsz``, ``cache``, ``augment``, ``hyp``, ``data``, ...) and:
    ir_dir: the folder that replaces the last ``images`` component of an RGB path (default ``data["ir_dir"]``, else
        ``image``). hsv: ``"rgb"`` (HSV jitter on channels 0-2, the fork's) or ``"none"`` (pip ultralytics': none).
    """

    def __init__(self, *args: Any, data: dict, ir_dir: str | None = None, hsv: str = "rgb", **kwargs: Any) -> None:
        if hsv not in HSV_MODES:
            raise ValueError(f"hsv must be one of {HSV_MODES}, not {hsv!r}")
        cache = kwargs.get("cache")
        if isinstance(cache, str) and cache.lower() == "disk":
            raise ValueError(
                "cache='disk' is not supported for RGB + IR pairs: ultralytics writes each .npy from the RGB file "
                "alone; use cache='ram' or no cache"
            )
        if data.get("channels", 6) != 6:
            raise ValueError(f"a two-stream data set has 6 channels (RGB + IR), the data dict says {data['channels']}")
        self.ir_dir = ir_dir or data.get("ir_dir") or IR_DIR
        self.hsv = hsv
        super().__init__(*args, data={**data, "channels": 6}, **kwargs)

    # -------------------------------------------------------------- files and labels
    def get_img_files(self, img_path: str | list[str]) -> list[str]:
        """The base class's RGB files; FileNotFoundError naming both paths when an IR twin is missing, ListFileError (a
        ValueError) naming a list file that is not UTF-8 and its line (the base class's error names neither cause nor
        line)."""
        for path in img_path if isinstance(img_path, list) else [img_path]:
            if os.path.isfile(path):
                read_list_text(path, "utf-8-sig")
        files = super().get_img_files(img_path)
        missing = []
        for f in files:
            twin = ir_path(f, self.ir_dir)
            if not twin.is_file():
                missing.append(f"{f}: no IR twin {twin}")
        if missing:
            raise FileNotFoundError(f"{len(missing)} RGB images without their IR twin:\n  {_listed(missing)}")
        return files

    def get_labels(self) -> list[dict]:
        """The base class's labels, after checking every label file strictly; ValueError naming each bad file (the
        base class would drop it with a warning) and each image the base class dropped."""
        label_files = self.get_label_files()
        num_classes = len(self.data["names"])
        problems = []
        for im_file, label in zip(self.im_files, label_files, strict=True):
            if not os.path.isfile(label):
                problems.append(f"{label}: missing label file of {im_file}")
                continue
            try:
                text = read_list_text(label, "utf-8-sig")
            except ListFileError as error:
                problems.append(str(error))
                continue
            _, bad = parse_label_text(text, num_classes)
            problems += [f"{label}: {message}" for message in bad]
        if problems:
            raise ValueError(f"corrupt DroneVehicle label files:\n  {_listed(problems)}")
        images = [(f, kind) for rgb in self.im_files for f, kind in ((rgb, "RGB"), (ir_path(rgb, self.ir_dir), "IR"))]
        problems = [f"{f}: {kind} image: {p}" for f, kind in images if (p := image_file_problem(f)) is not None]
        if problems:  # before the base class reads them: it would re-encode a cut-short JPEG in place
            raise ValueError(f"empty or cut-short DroneVehicle images (run check-data):\n  {_listed(problems)}")
        listed = list(self.im_files)
        labels = super().get_labels()
        dropped = sorted(set(listed) - {lb["im_file"] for lb in labels})
        if dropped:
            raise ValueError(f"images ultralytics cannot read (corrupt or unsupported):\n  {_listed(dropped)}")
        problems = [p for lb in labels if (p := self._twin_size_problem(lb["im_file"], lb["shape"])) is not None]
        if problems:
            raise ValueError(f"RGB / IR pairs of different sizes (run check-data):\n  {_listed(problems)}")
        return labels

    def _twin_size_problem(self, rgb: str, shape: tuple[int, int]) -> str | None:
        """Why the IR twin of ``rgb`` (whose ``(h, w)`` the base class read, EXIF-rotated) cannot be stacked with it:
        another size (read from its header, EXIF-rotated as ``cv2.imread`` does), or an unreadable header."""
        from PIL import Image
        from ultralytics.data.utils import exif_size

        twin = ir_path(rgb, self.ir_dir)
        try:
            with Image.open(twin) as image:
                w1, h1 = exif_size(image)
        except (OSError, ValueError) as error:
            return f"{twin}: unreadable IR image ({error}; twin of {rgb})"
        (h0, w0) = shape
        if (h0, w0) != (h1, w1):
            return f"{rgb} is {w0} x {h0} but its IR twin {twin} is {w1} x {h1}"
        return None

    # -------------------------------------------------------------- images
    def load_pair(self, i: int) -> np.ndarray:
        """The (H, W, 6) uint8 stack of pair ``i`` at its stored size (RGB's BGR in 0-2, IR in 3-5)."""
        f = self.im_files[i]
        twin = ir_path(f, self.ir_dir)
        rgb = imread(f, flags=cv2.IMREAD_COLOR)
        if rgb is None:
            raise FileNotFoundError(f"Image Not Found {f}")
        ir = imread(str(twin), flags=cv2.IMREAD_COLOR)
        if ir is None:
            raise FileNotFoundError(f"IR image not found or unreadable: {twin} (twin of {f})")
        if rgb.shape[:2] != ir.shape[:2]:
            raise ValueError(
                f"{f} is {rgb.shape[1]} x {rgb.shape[0]} but its IR twin {twin} is {ir.shape[1]} x {ir.shape[0]}"
            )
        return np.concatenate([rgb, ir], axis=2)

    def load_image(
        self, i: int, rect_mode: bool = True, resize_short: bool = False
    ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """``(im (h, w, 6), (h0, w0), (h, w))`` exactly as the base class loads and resizes a 3-channel image, with
        its RAM cache and mosaic buffer; never reads ``.npy`` files."""
        if self.ims[i] is not None:
            return self.ims[i], self.im_hw0[i], self.im_hw[i]
        im = self.load_pair(i)
        h0, w0 = im.shape[:2]
        shape = tuple(self.imgsz) if isinstance(self.imgsz, (tuple, list)) else (self.imgsz, self.imgsz)
        imgsz = max(shape)
        if rect_mode:
            if resize_short:
                r = imgsz / min(h0, w0)
                if r != 1:
                    w, h = (math.ceil(w0 * r), imgsz) if h0 < w0 else (imgsz, math.ceil(h0 * r))
                    im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
            else:
                r = imgsz / max(h0, w0)
                if r != 1:
                    w, h = (min(math.ceil(w0 * r), imgsz), min(math.ceil(h0 * r), imgsz))
                    im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
        elif (h0, w0) != shape:
            im = cv2.resize(im, shape[::-1], interpolation=cv2.INTER_LINEAR)
        if self.augment and self.cache != "ram":  # the base class's mosaic buffer
            self.ims[i], self.im_hw0[i], self.im_hw[i] = im, (h0, w0), im.shape[:2]
            self.buffer.append(i)
            if 1 < len(self.buffer) >= self.max_buffer_length:
                j = self.buffer.pop(0)
                self.ims[j], self.im_hw0[j], self.im_hw[j] = None, None, None
        return im, (h0, w0), im.shape[:2]

    def build_transforms(self, hyp: Any = None) -> Compose:
        """The base class's transforms, ``RandomHSV`` replaced by :class:`RGBRandomHSV` when ``hsv="rgb"``."""
        transforms = super().build_transforms(hyp)
        if self.hsv == "rgb":
            _replace_hsv(transforms)
        return transforms


def build_two_stream_dataset(
    cfg: Any,
    img_path: str | list[str],
    batch: int,
    data: dict[str, Any],
    mode: str = "train",
    rect: bool = False,
    stride: int = 32,
    hsv: str = "rgb",
    fraction: float | None = None,
) -> TwoStreamYOLODataset:
    """``ultralytics.data.build.build_yolo_dataset`` for RGB + IR pairs (detection only): the same arguments from
    ``cfg`` (imgsz, cache, single_cls, classes, fraction, rect), plus ``hsv``."""
    from ultralytics.data.utils import get_split_fraction
    from ultralytics.utils import colorstr

    if getattr(cfg, "task", "detect") != "detect":
        raise ValueError(f"two-stream RGB + IR data sets are for detection, not task {cfg.task!r}")
    if data.get("complete"):
        fraction = 1.0
    elif fraction is None:
        fraction = get_split_fraction(cfg.fraction, "train" if mode == "train" else cfg.split)
    return TwoStreamYOLODataset(
        img_path=img_path,
        imgsz=cfg.imgsz,
        batch_size=batch,
        augment=mode == "train",
        hyp=cfg,
        rect=cfg.rect or rect,
        cache=cfg.cache or None,
        single_cls=cfg.single_cls or False,
        stride=stride,
        pad=0.0 if mode == "train" else 0.5,
        prefix=colorstr(f"{mode}: "),
        task="detect",
        classes=cfg.classes,
        data=data,
        fraction=fraction,
        hsv=hsv,
    )


class DroneVehicleDataset(TwoStreamYOLODataset):
    """One split of a prepared DroneVehicle root (``ROOT/<split>.txt``) with ultralytics' default hyper-parameters
    (``get_cfg(DEFAULT_CFG)``, or ``hyp``), augmented when ``train``. ``seed`` is recorded: ultralytics'
    augmentation draws from Python's and NumPy's global generators, which its trainer seeds."""

    def __init__(
        self,
        root: str | Path,
        split: str,
        train: bool = False,
        seed: int = 0,
        imgsz: int = 640,
        hsv: str = "rgb",
        batch_size: int = 16,
        cache: bool | str | None = None,
        hyp: Any = None,
    ) -> None:
        from ultralytics.cfg import get_cfg
        from ultralytics.utils import DEFAULT_CFG

        self.root, self.split, self.seed = Path(root), split, seed
        data = data_dict(root)
        super().__init__(
            img_path=str(list_path(root, split)),
            imgsz=imgsz,
            cache=cache,
            augment=train,
            hyp=get_cfg(DEFAULT_CFG) if hyp is None else hyp,
            prefix=f"{split}: ",
            batch_size=batch_size,
            pad=0.0 if train else 0.5,
            data=data,
            task="detect",
            hsv=hsv,
        )
