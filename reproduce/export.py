"""Export a finished run's host to ONNX: ``python -m reproduce export RUN --format onnx [--output FILE]
[--subset a+b] [--opset N] [--exporter auto|dynamo|torchscript]``.

**Which runs.** The 2-D data sets: CASIA-SURF (classification hosts: ``sf``, ``sf_md``, ``mmanet``, ...) and
NYU-Depth V2 (segmentation hosts: ``esanet_md``, ``mmanet_seg``, ...). BraTS is refused (its prediction is a 3-D
sliding window over the volume, not one forward pass of the host), and so is DroneVehicle (the two-stream YOLOv8
runs are ultralytics models with their own box decoding and NMS; export them with ultralytics).

**The graph.** One input per modality, named after it, in the run's modality order (``run.config.modalities``),
float32 (B, C, H, W) at the run's evaluation size (CASIA-SURF: ``crop`` x ``crop``, 3 channels each; NYUv2:
``height`` x ``width``, RGB 3 channels, depth 1), preprocessed as the data set's loader preprocesses its test split.
By default a second kind of input follows: ``present``, bool (B, M), True where sample b has modality m (the host
contract's mask), so one file serves every missing-modality subset; an absent modality's input is still fed (zeros,
as ``predict`` does) and does not change the output. ``--subset a+b`` instead bakes that subset in: the graph then
takes only the subset's modalities (the others are zeros inside it) and has no ``present``. The output is ``logits``
(classification (B, K); segmentation (B, K, H, W)). The batch axis is dynamic; H and W are fixed (ESANet's pyramid
pooling, an adaptive average pool to 5 x 5, only exports at a fixed size).

**Exporters.** ``auto`` (default) tries torch's ``torch.export``-based exporter (``dynamo=True``, needs onnxscript)
and falls back to the TorchScript one (``dynamo=False``) if it fails; ESANet-based hosts only export with the
former (the latter cannot export an adaptive average pool whose output does not divide its input). The dynamo
exporter writes opset 18 or later, so ``--opset`` below 18 uses the TorchScript one.

**The check.** The file is loaded with onnxruntime (CPU) and run on one batch of standard-normal inputs, one row per
non-empty subset (the baked one: two rows), against the PyTorch host (``host(inputs, present).logits``, absent
modalities zero). The largest absolute difference must be at most :data:`RELATIVE_TOLERANCE` times the output's
scale (its largest absolute value, at least 1); else the file is removed and :class:`ExportError` raised.

Writes the ONNX file (default ``<run folder>/model.onnx``) and ``<file>.json``: the run, the inputs and output
(names, shapes, dtypes), the mask convention, the opset, the exporter, the packages' versions and the check.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.predict.trained import TrainedRun

#: The check's bound on ``max |onnx - torch|``, relative to the output's scale (its largest absolute value, at least
#: 1). Both run float32 and differ only in the order of additions: ~1e-7 relative per operation, ~1e-6 after a
#: ResNet's depth (measured: 2e-7 .. 9e-7); 1e-4 leaves two orders of magnitude of room, while a real mismatch (a
#: mask applied wrongly, BatchNorm in training mode, a baked batch size) is of the order of the output itself.
RELATIVE_TOLERANCE = 1e-4
#: Default opset: the dynamo exporter's functions are written in opset 18 (no version conversion), the TorchScript
#: exporter supports it, and onnxruntime >= 1.14 runs it.
DEFAULT_OPSET = 18
#: The dynamo exporter writes no earlier opset (asked for one, it writes 18): earlier ones are the TorchScript one's.
DYNAMO_MIN_OPSET = 18
#: The lowest opset asked for (the exporters refuse what they cannot write, e.g. the TorchScript one above 20).
MIN_OPSET = 7
EXPORTERS = ("auto", "dynamo", "torchscript")
FORMATS = ("onnx",)
MASK_INPUT = "present"
OUTPUT = "logits"
#: The batch the graph is traced with (the axis stays dynamic).
EXAMPLE_BATCH = 2
#: Above this many bytes of weights the ONNX file keeps them in ``<file>.data`` (protobuf's 2 GiB limit).
EXTERNAL_DATA_BYTES = 1_800_000_000
SUPPORTED = "CASIA-SURF (casia_surf) and NYU-Depth V2 (nyuv2) runs"


class ExportError(ValueError):
    """The run cannot be exported as asked, or the exported file disagrees with PyTorch (the message says why)."""


@dataclass(frozen=True)
class InputSpec:
    """The graph's image inputs: channels per modality (run order), the fixed height and width, and what the
    preprocessing of each input is (for the sidecar)."""

    channels: dict[str, int]
    height: int
    width: int
    preprocessing: str


def input_spec(run: TrainedRun) -> InputSpec:
    """The run's evaluation inputs (the data set's test-split loader), or ExportError for a data set not exported."""
    dataset, task = run.dataset, run.config.task_name
    modalities = tuple(run.config.modalities)
    if task == "segmentation3d" or dataset == "brats2020":
        raise ExportError(
            f"run {run.key} ({run.config.host.name} on {dataset}) is not exported: BraTS predicts 3-D volumes by a "
            f"sliding window over the host (task.predict), which one ONNX forward pass does not reproduce; export "
            f"supports {SUPPORTED}"
        )
    if dataset == "dronevehicle":
        raise ExportError(
            f"run {run.key} ({run.config.host.name} on dronevehicle) is not exported: the two-stream YOLOv8 runs are "
            f"ultralytics models (box decoding and NMS outside the host); export supports {SUPPORTED}"
        )
    options = dict(run.config.data.options or {})
    if dataset == "casia_surf":
        from mwam_harness.datasets.casia_surf.loader import CROP

        side = int(options.get("crop", CROP))
        text = (
            f"cv2.imread(IMREAD_COLOR) BGR images (Depth and IR too, 3 channels), filter {options.get('filter')!r}, "
            f"cv2.resize to {side} x {side}, (x - 127.5) / 128, CHW"
        )
        return InputSpec({m: 3 for m in modalities}, side, side, text)
    if dataset == "nyuv2":
        from reproduce.predict.nyuv2 import eval_options

        o = eval_options(run)
        text = (
            f"rescale to {o['height']} x {o['width']} (RGB bilinear, depth nearest), normalise_rgb (ImageNet mean / "
            f"std), normalise_depth (mm, mean {o['depth_mean']}, std {o['depth_std']}, invalid depth zero: "
            f"{o['invalid_depth_zero']}); datasets/nyuv2/transforms.py"
        )
        return InputSpec({m: {"rgb": 3, "depth": 1}[m] for m in modalities}, int(o["height"]), int(o["width"]), text)
    raise ExportError(f"run {run.key}: no export for {dataset} runs; export supports {SUPPORTED}")


def _wrapper(host: Any, modalities: Sequence[str], spec: InputSpec, subset: tuple[str, ...] | None) -> Any:
    """The module the exporters trace: tensors in (the fed modalities, then ``present`` unless a subset is baked
    in), ``logits`` out."""
    import torch
    from torch import nn

    class OnnxHost(nn.Module):
        """``forward(*images[, present]) -> logits`` over ``host(inputs, present)``."""

        def __init__(self) -> None:
            super().__init__()
            self.host = host
            self.modalities = tuple(modalities)
            self.fed = self.modalities if subset is None else tuple(subset)
            fixed = [m in (subset or self.modalities) for m in self.modalities]
            self.register_buffer("fixed", torch.tensor([fixed], dtype=torch.bool), persistent=False)

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            images = dict(zip(self.fed, tensors, strict=False))
            first = tensors[0]
            batch, height, width = first.shape[0], first.shape[2], first.shape[3]
            inputs = {
                m: images[m] if m in images else first.new_zeros((batch, spec.channels[m], height, width))
                for m in self.modalities
            }
            present = tensors[-1] if subset is None else self.fixed.expand(batch, -1)
            return self.host(inputs, present).logits

    return OnnxHost().eval()


def _example(spec: InputSpec, fed: Sequence[str], mask_input: bool, batch: int, seed: int = 0) -> tuple[Any, ...]:
    """Standard-normal images of the fed modalities (and an all-True mask): the tensors traced."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    images = [torch.randn(batch, spec.channels[m], spec.height, spec.width, generator=generator) for m in fed]
    if mask_input:
        images.append(torch.ones(batch, len(spec.channels), dtype=torch.bool))
    return tuple(images)


def _export(
    model: Any, example: tuple[Any, ...], names: list[str], path: Path, opset: int, exporter: str, large: bool
) -> None:
    """One exporter's ``torch.onnx.export`` of ``model`` to ``path`` (dynamic batch axis)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings of the hosts' input checks, the deprecation of TorchScript
        common = {"input_names": names, "output_names": [OUTPUT], "opset_version": opset}
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1)
            shapes = (tuple({0: batch} for _ in names),)  # forward(*tensors): one argument, a tuple
            torch.onnx.export(model, example, str(path), **common, dynamo=True, dynamic_shapes=shapes,
                              external_data=large, verbose=False)  # fmt: skip
        else:
            axes = {name: {0: "batch"} for name in [*names, OUTPUT]}
            torch.onnx.export(model, example, str(path), **common, dynamo=False, dynamic_axes=axes)


def _remove(path: Path) -> None:
    """Remove an export that failed: the file and its external weights (``<file>.data``), if written."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".data").unlink(missing_ok=True)


def _first_line(error: BaseException) -> str:
    """The first line of ``error``'s root cause (ANSI colours removed), for one-line reports."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def check_rows(modalities: Sequence[str], subset: tuple[str, ...] | None) -> list[tuple[str, ...]]:
    """The subsets of the check's batch: every non-empty subset (mask as input), else the baked one twice."""
    if subset is not None:
        return [subset] * EXAMPLE_BATCH
    return [s for k in range(1, len(modalities) + 1) for s in itertools.combinations(modalities, k)]


def compare(
    path: Path, host: Any, modalities: Sequence[str], spec: InputSpec, subset: tuple[str, ...] | None
) -> dict[str, Any]:
    """Run the ONNX file (onnxruntime, CPU) and the PyTorch host on one batch (:func:`check_rows`); the check's
    record: max abs difference, output scale, tolerance, the subsets, the session's inputs and outputs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rows = check_rows(modalities, subset)
    images = _example(spec, modalities, False, len(rows), seed=1)
    present = torch.tensor([[m in row for m in modalities] for row in rows], dtype=torch.bool)
    fed = {m: x * present[:, i, None, None, None] for i, (m, x) in enumerate(zip(modalities, images, strict=True))}
    with torch.no_grad():
        expected = host(fed, present).logits.float().numpy()
    feeds = {m: fed[m].numpy() for m in (subset or modalities)}
    if subset is None:
        feeds[MASK_INPUT] = present.numpy()
    got = session.run([OUTPUT], feeds)[0]
    if got.shape != expected.shape:
        raise ExportError(f"{path}: onnxruntime's {OUTPUT} has shape {got.shape}, PyTorch's {expected.shape}")
    difference = float(np.max(np.abs(got.astype(np.float64) - expected.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    return {
        "max_abs_diff": difference,
        "output_scale": scale,
        "tolerance": RELATIVE_TOLERANCE * max(1.0, scale),
        "relative_tolerance": RELATIVE_TOLERANCE,
        "batch": len(rows),
        "subsets": ["+".join(row) for row in rows],
        "inputs": "standard normal (seed 1), absent modalities zero",
        "runtime": f"onnxruntime {ort.__version__}, CPUExecutionProvider",
        "session_inputs": [_describe(i) for i in session.get_inputs()],
        "session_outputs": [_describe(o) for o in session.get_outputs()],
    }


def _describe(value: Any) -> dict[str, Any]:
    """An onnxruntime input / output as ``{"name", "shape", "dtype"}`` (symbolic axes by name)."""
    dtypes = {"tensor(float)": "float32", "tensor(bool)": "bool", "tensor(float16)": "float16"}
    return {"name": value.name, "shape": list(value.shape), "dtype": dtypes.get(value.type, value.type)}


def _opset(path: Path) -> int:
    """The default domain's opset of the ONNX file at ``path``, after ``onnx.checker`` has checked it."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(str(path))
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _import_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise ExportError(f"export needs onnx, onnxscript and onnxruntime ({error}): pip install them") from None


def export_run(
    run: TrainedRun,
    output: Path | None = None,
    subset: tuple[str, ...] | None = None,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
) -> dict[str, Any]:
    """Export ``run``'s host to ONNX at ``output`` (default ``<run folder>/model.onnx``), check it against PyTorch
    and write the sidecar ``<file>.json``; returns the sidecar's record (module docstring)."""
    import torch

    from reproduce.predict.trained import load_host

    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; choose one of {', '.join(EXPORTERS)}")
    if opset < MIN_OPSET:
        raise ExportError(f"--opset {opset}: choose an opset of at least {MIN_OPSET}")
    spec = input_spec(run)
    modalities = tuple(run.config.modalities)
    if subset is not None and (not subset or any(m not in modalities for m in subset)):
        raise ExportError(f"subset {'+'.join(subset)}: give distinct modalities of the run ({'+'.join(modalities)})")
    subset = None if subset is None else tuple(m for m in modalities if m in subset)
    _import_onnx()
    path = Path(output) if output is not None else run.folder / "model.onnx"
    if path.is_dir():
        path = path / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)

    sidecar = path.with_name(path.name + ".json")
    sidecar.unlink(missing_ok=True)  # never left describing another file
    host, _ = load_host(run, "cpu")
    model = _wrapper(host, modalities, spec, subset)
    fed = subset or modalities
    names = [*fed] + ([MASK_INPUT] if subset is None else [])
    example = _example(spec, fed, subset is None, EXAMPLE_BATCH)
    large = sum(p.numel() * p.element_size() for p in host.parameters()) > EXTERNAL_DATA_BYTES
    tried = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    failures: dict[str, str] = {}
    used = None
    for name in tried:
        if name == "dynamo" and opset < DYNAMO_MIN_OPSET:
            failures[name] = f"writes opset {DYNAMO_MIN_OPSET} or later (asked for {opset})"
            continue
        try:
            _export(model, example, names, path, opset, name, large)
            written = _opset(path)
        except Exception as error:  # an exporter's failure is reported, the next one tried
            failures[name] = _first_line(error)
            continue
        if written != opset:
            failures[name] = f"wrote opset {written}, not {opset}"
            continue
        used = name
        break
    if used is None:
        _remove(path)
        shown = "; ".join(f"{k}: {v}" for k, v in failures.items())
        raise ExportError(f"run {run.key} ({run.config.host.name}) did not export to ONNX ({shown})")
    check = compare(path, host, modalities, spec, subset)
    if not check["max_abs_diff"] <= check["tolerance"]:
        _remove(path)
        raise ExportError(
            f"{path}: onnxruntime and PyTorch differ by {check['max_abs_diff']:.3g} (tolerance {check['tolerance']:.3g}"
            f" = {RELATIVE_TOLERANCE:g} x output scale {check['output_scale']:.3g}); the file was removed"
        )
    import onnx
    import onnxruntime

    mask = (
        {
            "as_input": True,
            "input": MASK_INPUT,
            "dtype": "bool",
            "order": list(modalities),
            "convention": f"{MASK_INPUT}[b, m] is True when sample b has modality m (the order above); the input of "
            "an absent modality is still fed (zeros) and does not change the output",
        }
        if subset is None
        else {
            "as_input": False,
            "subset": list(subset),
            "convention": f"subset {'+'.join(subset)} baked in: only its modalities are inputs, the others are "
            "absent (zeros inside the graph)",
        }
    )
    record: dict[str, Any] = {
        **run.describe(),
        "task": run.config.task_name,
        "format": "onnx",
        "file": path.name,
        "opset": opset,
        "exporter": used,
        "exporter_failures": failures,
        "inputs": check.pop("session_inputs"),
        "outputs": check.pop("session_outputs"),
        "dynamic_axes": {"batch": "axis 0 of every input and of the output"},
        "input_size": [spec.height, spec.width],
        "mask": mask,
        "preprocessing": spec.preprocessing,
        "check": check,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }
    sidecar.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return {**record, "path": str(path), "sidecar": str(sidecar)}


def cmd_export(args: argparse.Namespace) -> int:
    """``python -m reproduce export``: export, check, write the sidecar, print one line."""
    from reproduce.paths import runs_dir
    from reproduce.predict.base import parse_subset
    from reproduce.predict.trained import find_trained_run

    if args.format not in FORMATS:
        raise ExportError(f"--format {args.format}: only {', '.join(FORMATS)}")
    run = find_trained_run(args.reference, runs_dir(args.results_dir))
    input_spec(run)  # refuse BraTS / DroneVehicle before anything is loaded
    subset = parse_subset(args.subset, run.config.modalities)
    record = export_run(run, args.output, subset, args.opset, args.exporter)
    inputs = ", ".join(f"{i['name']} {'x'.join(map(str, i['shape']))} {i['dtype']}" for i in record["inputs"])
    check = record["check"]
    synthetic = " (trained on SYNTHETIC data)" if run.synthetic else ""
    print(
        f"exported run {run.key} ({record['host']}, {record['dataset']}){synthetic} -> {record['path']} "
        f"(opset {record['opset']}, {record['exporter']} exporter; inputs {inputs}; max |onnx - torch| "
        f"{check['max_abs_diff']:.2e} <= {check['tolerance']:.1e}; sidecar {Path(record['sidecar']).name})"
    )
    return 0


def add_export_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``export`` to the ``commands`` sub-parsers (``set_defaults(run=cmd_export)``); returns its parser."""
    export = commands.add_parser(
        "export",
        help="export a finished run's host network to ONNX (checked against PyTorch with onnxruntime)",
        description="Export a finished CASIA-SURF or NYU-Depth V2 run's host to ONNX: one input per modality (the "
        "run's evaluation size, dynamic batch) and the bool mask 'present' (B, M) -- or, with --subset, that subset "
        "baked in -- and the output 'logits'. The file is checked against PyTorch on one batch with onnxruntime and "
        "described in <file>.json.",
    )
    export.add_argument("reference", metavar="RUN", help="a run key, a run folder, or its model.pt")
    export.add_argument("--format", choices=FORMATS, default="onnx", help="the export format (default: onnx)")
    export.add_argument(
        "--output", type=Path, default=None, metavar="FILE", help="the file to write (default: <run folder>/model.onnx)"
    )
    export.add_argument(
        "--subset",
        default=None,
        metavar="A+B",
        help="bake this subset in, e.g. rgb+depth (default: the mask is an input)",
    )
    export.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, metavar="N", help=f"ONNX opset (default: {DEFAULT_OPSET})"
    )
    export.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="auto",
        help="torch's ONNX exporter (default: auto = dynamo, else torchscript)",
    )
    export.add_argument("--results-dir", type=Path, default=None, help="the results root holding runs/")
    export.set_defaults(run=cmd_export)
    return export
