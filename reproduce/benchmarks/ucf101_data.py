"""The UCF-101 data path's costs (Table 11): decoding a video with PyAV, one TV-L1 frame pair with scikit-image
(``prepare``), and the loader's clips per second against the training step's (does the loader keep up?).

Measured on a synthetic set written by the data set's generator (real ``.avi`` files, prepared to BalanceBenchmark's
layout) in a temporary folder: decoding per video (median over the set's videos), TV-L1 per frame pair at the
synthetic size and with the frames resized to 224 x 224 and 320 x 240 (UCF-101's own size) -- the same frame pair
at each size, timed interleaved (:mod:`reproduce.benchmarks.interleave`) --, then the training loader (random frame
per segment, resize, flips, normalisation) over the prepared training split with ``workers`` processes, in clips/s.
``keeps_up`` compares that with a step's clips/s when one is given (``scripts/bench_ucf101_data.py`` takes it from
``reproduce.benchmarks.video_step``). CPU numbers; noisy on a shared machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from reproduce.benchmarks.interleave import interleave
from reproduce.devices import cpu_model

#: The synthetic set measured: a smoke-sized download (4 classes x 4 groups x 2 clips = 32 videos of 24 frames).
SET = {"classes": 4, "groups": 4, "clips": 2, "frames": 24, "width": 64, "height": 48, "workers": 1}
SIZES = {"synthetic": None, "224x224": (224, 224), "320x240": (320, 240)}


def _decode_times(videos: list[Path]) -> list[float]:
    from mwam_harness.datasets.ucf101.prepare import decode_video

    times = []
    for path in videos:
        start = time.perf_counter()
        decode_video(path)
        times.append(time.perf_counter() - start)
    return times


def _tvl1_variants(frames: list[Any]) -> dict[str, Any]:
    import cv2

    from mwam_harness.datasets.ucf101.prepare import tvl1

    def gray(image: Any, size: tuple[int, int] | None) -> Any:
        image = image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)

    pairs = {name: (gray(frames[0], size), gray(frames[1], size)) for name, size in SIZES.items()}
    return {name: (lambda a=a, b=b: tvl1(a, b)) for name, (a, b) in pairs.items()}


def loader_clips_per_s(root: Path, size: int, batch: int, workers: int, batches: int = 4) -> float:
    """Clips per second of the training loader over ``batches`` batches (after one warm-up batch)."""
    from torch.utils.data import DataLoader

    from mwam_harness.datasets.ucf101.loader import Ucf101Dataset

    dataset = Ucf101Dataset(root, "train", train=True, size=size)
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    iterator = iter(loader)
    next(iterator)
    start, clips = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch_data = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch_data = next(iterator)
        clips += len(batch_data["label"]) if isinstance(batch_data, dict) and "label" in batch_data else batch
    return clips / (time.perf_counter() - start)


def run_benchmark(
    size: int = 112, batch: int = 4, workers: int = 0, rounds: int = 3, step_clips_per_s: float | None = None
) -> dict[str, Any]:
    """Decode and TV-L1 timings and the loader's clips/s (JSON-ready); ``step_clips_per_s``: a training step's."""
    from mwam_harness.datasets.ucf101.prepare import decode_video
    from mwam_harness.datasets.ucf101.synthetic import write_ucf101

    with tempfile.TemporaryDirectory(prefix="bench-ucf101-") as scratch:
        root = write_ucf101(Path(scratch) / "set", **SET)
        videos = sorted(Path(scratch).rglob("*.avi"))
        decode = _decode_times(videos)
        frames = decode_video(videos[0])
        tvl1 = interleave(_tvl1_variants(frames), rounds=rounds, warmup=1, baseline="synthetic")
        loader = loader_clips_per_s(root, size, batch, workers)
    report: dict[str, Any] = {
        "benchmark": "ucf101_data",
        "cpu": cpu_model(),
        "videos": len(videos),
        "frames_per_video": SET["frames"],
        "decode_ms_per_video": {
            "median": 1e3 * statistics.median(decode),
            "min": 1e3 * min(decode),
            "max": 1e3 * max(decode),
        },
        "tvl1_ms_per_frame_pair": {name: v["median_ms"] for name, v in tvl1["variants"].items()},
        "tvl1_measurement": tvl1["measurement"],
        "tvl1_s_per_video_224": tvl1["variants"]["224x224"]["median_ms"] * (SET["frames"] - 1) / 1e3,
        "loader": {"size": size, "batch": batch, "workers": workers, "clips_per_s": loader},
    }
    if step_clips_per_s is not None:
        report["step_clips_per_s"] = step_clips_per_s
        report["keeps_up"] = loader >= step_clips_per_s
    return report
