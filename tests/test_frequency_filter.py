"""The frequency filters of Fig. 1 / A.5 and A.16 (datasets/frequency_filter.py) and CASIA-SURF's ``filter`` option:
identities, a cosine that one filter keeps and the other removes, hand-computed windows, the spatial reading against
OpenCV, validation, and the option reaching the data set through a run (and changing nothing when absent)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mwam_harness.datasets.casia_surf import MODALITIES
from mwam_harness.datasets.casia_surf.loader import CasiaSurfDataset, augment, augment_rng, read_image, to_tensor
from mwam_harness.datasets.casia_surf.synthetic import write_casia_surf
from mwam_harness.datasets.frequency_filter import (
    FrequencyFilter,
    box_blur,
    centred_window,
    log_spectrum,
    spectrum_filter,
    to_uint8,
)

SHAPES = [(16, 16, 3), (15, 20, 3), (9, 12), (7, 7, 1)]


def _image(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


def _cosine(h, w, ky, kx, amplitude=100.0):
    """A pure cosine of ky cycles down and kx cycles across the image, around grey 128 (H x W x 3)."""
    y, x = np.mgrid[0:h, 0:w]
    wave = 128.0 + amplitude * np.cos(2 * np.pi * (ky * y / h + kx * x / w))
    return np.repeat(wave[:, :, None], 3, axis=2)


# ------------------------------------------------------------------ the maths
@pytest.mark.parametrize("shape", SHAPES)
def test_a_low_pass_at_least_as_large_as_the_image_is_the_identity(shape):
    image = _image(shape)
    for size in (max(shape[:2]), max(shape[:2]) + 1, 1000):
        np.testing.assert_allclose(spectrum_filter(image, "low", size), image, atol=1e-9)
        out = FrequencyFilter("low", size)(image)
        assert out.dtype == np.uint8 and np.array_equal(out, image), "bit-identical after rounding"
        nothing = FrequencyFilter("high", size).apply(image)
        assert np.abs(nothing).max() < 1e-9, "the high-pass of the whole spectrum leaves nothing"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 8])
def test_low_plus_high_is_the_image_before_clipping(shape, size):
    image = _image(shape, seed=size)
    low, high = spectrum_filter(image, "low", size), spectrum_filter(image, "high", size)
    assert low.shape == high.shape == image.shape and low.dtype == np.float64
    np.testing.assert_allclose(low + high, image, atol=1e-9)


def test_a_low_frequency_cosine_survives_the_low_pass_and_vanishes_in_the_high_pass():
    image = _cosine(32, 40, ky=1, kx=2)  # frequencies (+-1, +-2): inside a centred 5 x 5 window
    for size in (5, 6, 15):
        np.testing.assert_allclose(spectrum_filter(image, "low", size), image, atol=1e-9)
        np.testing.assert_allclose(spectrum_filter(image, "high", size), 0.0, atol=1e-9)
    # and the other way round for a cosine outside the window (but the mean, the DC bin, is inside)
    fine = _cosine(32, 40, ky=0, kx=9)
    np.testing.assert_allclose(spectrum_filter(fine, "low", 5), 128.0, atol=1e-9)
    np.testing.assert_allclose(spectrum_filter(fine, "high", 5), fine - 128.0, atol=1e-9)
    # uint8 round trip: the low-pass keeps the cosine to within rounding
    wave = to_uint8(image)
    assert np.abs(FrequencyFilter("low", 5)(wave).astype(int) - wave.astype(int)).max() <= 1


def test_windows_and_the_dc_only_low_pass_by_hand():
    # after fftshift the DC bin of 8 bins is index 4; a 3-bin window covers 3..5, a 4-bin one 2..5 (one more
    # negative frequency), a window larger than the axis is clamped to it
    assert centred_window(8, 3) == slice(3, 6)
    assert centred_window(8, 4) == slice(2, 6)
    assert centred_window(7, 3) == slice(2, 5)
    assert centred_window(8, 20) == slice(0, 8)
    image = _image((6, 10, 3), seed=4).astype(np.float64)
    # a 1 x 1 low-pass keeps the DC bin only: every pixel is its channel's mean; the high-pass removes the mean
    np.testing.assert_allclose(spectrum_filter(image, "low", 1), np.broadcast_to(image.mean((0, 1)), image.shape))
    np.testing.assert_allclose(spectrum_filter(image, "high", 1), image - image.mean((0, 1)), atol=1e-9)
    # a 3 x 3 window of a 6 x 10 image: a direct DFT over the kept frequencies (-1, 0, 1) x (-1, 0, 1)
    h, w = image.shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    expected = np.zeros(image.shape)
    for c in range(3):
        spectrum = np.fft.fft2(image[:, :, c])
        for fy in (-1, 0, 1):
            for fx in (-1, 0, 1):
                phase = np.exp(2j * np.pi * (fy * y / h + fx * x / w))
                expected[:, :, c] += (spectrum[fy % h, fx % w] * phase).real / (h * w)
    np.testing.assert_allclose(spectrum_filter(image, "low", 3), expected, atol=1e-9)


def test_channels_are_filtered_independently():
    image = _image((12, 12, 3), seed=2)
    both = spectrum_filter(image, "high", 3)
    for c in range(3):
        np.testing.assert_allclose(both[:, :, c], spectrum_filter(image[:, :, c], "high", 3), atol=1e-9)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9])
def test_the_spatial_reading_low_pass_is_a_box_blur_as_opencv_and_its_high_pass_the_spectrum_one(size):
    image = _image((21, 30, 3), seed=size)
    expected = cv2.blur(image.astype(np.float32), (size, size))  # BORDER_REFLECT_101, anchor at the centre
    np.testing.assert_allclose(box_blur(image, size), expected, atol=1e-4)
    spatial = FrequencyFilter("low", size, reading="spatial")
    np.testing.assert_allclose(spatial.apply(image), expected, atol=1e-4)
    high = FrequencyFilter("high", size, reading="spatial").apply(image)
    np.testing.assert_allclose(high, spectrum_filter(image, "high", size), atol=1e-9)
    assert spatial.label == f"low-{size}-spatial" and FrequencyFilter("high", size).label == f"high-{size}"


def test_restoring_uint8_clips_and_rounds_or_rescales():
    values = np.array([[-3.0, 0.4, 0.5, 1.5], [254.5, 255.4, 300.0, 127.6]])
    assert to_uint8(values).tolist() == [[0, 0, 0, 2], [254, 255, 255, 128]]  # rint: half to even
    spanning = np.array([[-10.0, 0.4, 100.0], [245.0, 50.5, 20.0]])  # range 255: minmax adds 10, then rounds
    assert to_uint8(spanning, "minmax").tolist() == [[0, 10, 110], [255, 60, 30]]
    assert not to_uint8(np.full((3, 3), 7.0), "minmax").any()
    high = FrequencyFilter("high", 3, restore="minmax")(_image((16, 16, 3)))
    assert high.min() == 0 and high.max() == 255


def test_log_spectrum_has_dc_at_the_centre():
    image = np.full((8, 10, 3), 10, dtype=np.uint8)
    spectrum = log_spectrum(image)
    assert spectrum.shape == (8, 10)
    assert spectrum[4, 5] == pytest.approx(np.log1p(10 * 80)) and spectrum.sum() == pytest.approx(spectrum[4, 5])


def test_bad_filters_and_images_raise():
    for fields, message in [
        ({"kind": "band", "size": 3}, "kind must be one of"),
        ({"kind": "low", "size": 0}, "integer >= 1"),
        ({"kind": "low", "size": 2.5}, "integer >= 1"),
        ({"kind": "low", "size": True}, "integer >= 1"),
        ({"kind": "low", "size": 3, "reading": "fourier"}, "reading must be one of"),
        ({"kind": "low", "size": 3, "restore": "wrap"}, "restore must be one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            FrequencyFilter(**fields)
        with pytest.raises(ValueError, match=message):
            FrequencyFilter.from_option(fields)
    with pytest.raises(ValueError, match="unknown \\['window'\\]"):
        FrequencyFilter.from_option({"kind": "low", "size": 3, "window": 3})
    with pytest.raises(ValueError, match="missing \\['size'\\]"):
        FrequencyFilter.from_option({"kind": "low"})
    with pytest.raises(ValueError, match="must be a mapping"):
        FrequencyFilter.from_option("low-15")
    assert FrequencyFilter.from_option(None) is None
    assert FrequencyFilter.from_option({"kind": "high", "size": np.int64(30)}) == FrequencyFilter("high", 30)
    with pytest.raises(ValueError, match="H x W"):
        FrequencyFilter("low", 3).apply(np.zeros(5))
    with pytest.raises(ValueError, match="real-valued"):
        FrequencyFilter("low", 3).apply(np.zeros((4, 4), dtype=complex))


# ------------------------------------------------------------------ the CASIA-SURF option
@pytest.fixture(scope="module")
def surf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_casia_surf(tmp_path_factory.mktemp("surf") / "CASIA-SURF", 8, 4, 4, size=32, seed=5)


SMALL = {"resize": 30, "crop": 20}


def _expected_item(dataset, index, image_filter=None):
    """The item as the loader's pipeline defines it, written out: decode, (filter), resize, (augment), normalise."""
    side = dataset.resize if dataset.train else dataset.crop
    images = {}
    for m in MODALITIES:
        image = read_image(dataset.samples[index].path(m))
        if image_filter is not None:
            image = image_filter(image)
        images[m] = cv2.resize(image, (side, side))
    if dataset.train:
        images = augment(images, augment_rng(dataset.seed, dataset.epoch, index), dataset.crop)
    return {m: to_tensor(images[m]) for m in MODALITIES}


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_without_the_option_the_loader_is_unchanged(surf_root, split):
    plain = CasiaSurfDataset(surf_root, split, seed=3, **SMALL)
    assert plain.filter is None
    identity = CasiaSurfDataset(surf_root, split, seed=3, filter={"kind": "low", "size": 10_000}, **SMALL)
    for index in range(len(plain)):
        item, same = plain[index], identity[index]
        for m, expected in _expected_item(plain, index).items():
            assert torch.equal(item[m], expected), (split, index, m)
            assert torch.equal(same[m], expected), "a low-pass of the whole spectrum changes nothing"


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_the_filter_is_applied_per_modality_before_augmentation_in_every_split(surf_root, split):
    chosen = FrequencyFilter("high", 5)
    filtered = CasiaSurfDataset(surf_root, split, seed=3, filter={"kind": "high", "size": 5}, **SMALL)
    plain = CasiaSurfDataset(surf_root, split, seed=3, **SMALL)
    assert filtered.filter == chosen
    for index in range(len(filtered)):
        item = filtered[index]
        for m, expected in _expected_item(filtered, index, chosen).items():
            assert torch.equal(item[m], expected), (split, index, m)
            assert not torch.equal(item[m], plain[index][m]), "the filter changes every modality's image"


def test_the_option_reaches_the_data_set_through_a_run(surf_root, tmp_path, toy):
    from reproduce.engine.trainer import Trainer
    from reproduce.runs.registry import Registry
    from tests.toy_run import RUNTIME, toy_config

    option = {"kind": "low", "size": 7, "reading": "spatial"}
    sections = {"host": {"name": "resnet18_concat"}, "task": "classification"}
    data = {"root": str(surf_root), "options": {**SMALL, "filter": option}}
    config = toy_config(surf_root, data=data, **sections)
    plain_config = toy_config(surf_root, data={"root": str(surf_root), "options": SMALL}, **sections)
    assert config.data.options["filter"] == option and config.key != plain_config.key
    task = Trainer(config, Registry(tmp_path / "runs"), RUNTIME).build_task()
    plain_task = Trainer(plain_config, Registry(tmp_path / "runs"), RUNTIME).build_task()
    for split, train in (("train", True), ("val", False), ("test", False)):
        dataset, plain = task.build_dataset(split, train), plain_task.build_dataset(split, train)
        assert dataset.filter == FrequencyFilter("low", 7, "spatial") and plain.filter is None
        assert not torch.equal(dataset[0]["rgb"], plain[0]["rgb"])
        assert torch.equal(dataset[0]["depth"], _expected_item(dataset, 0, dataset.filter)["depth"])


def test_a_bad_filter_option_is_refused_by_the_loader(surf_root):
    with pytest.raises(ValueError, match="filter size must be"):
        CasiaSurfDataset(surf_root, "val", filter={"kind": "low", "size": -1}, **SMALL)
    with pytest.raises(ValueError, match="filter must be a mapping"):
        CasiaSurfDataset(surf_root, "val", filter=15, **SMALL)
