"""The FRM column of Table 1: each modality's Frequency Ratio Metric (Eq. 4) of a data set's training split.

Table 1 of "Plug, Play, and Fortify" prints one FRM per missing-modality subset of CASIA-SURF (R = 1.81e8,
D = 2.33e10, I = 1.02e9, RD = 2.34e10, ..., RDI = 2.45e10). The paper does not say how they are reduced; the printed
values agree, within rounding, with this reading (the subsets' values are sums of the single modalities'):

- a **modality's FRM** is the Eq. 4 value of each of its training images, **summed** over the training split (no
  mean, no normalisation): :func:`data_frm`;
- a **subset's FRM** is the sum of its members' (1.81e8 + 2.33e10 = 2.348e10, printed 2.34e10): :func:`subset_frm`.

What is measured (the paper does not say; the choice here is what MWAM measures during training): the **network
inputs as the data set's loader delivers them** -- for CASIA-SURF the images resized to the crop side (112 px at the
paper's settings, the loader's ``resize`` / ``crop`` options otherwise) and normalised as ``(x - 127.5) / 128``,
three (BGR) channels. By default the loader's evaluation transform (``train=False``: deterministic, no random
rotation / crop / flip, whose black rotation corners would add to the metric); ``train=True`` measures the training
transform of epoch 0 (one fixed augmentation per image, from the loader's seed). The metric is MWAM's own
(:func:`mwam.frm`: 8 x 8 patch DCT, q = 2 corners, sigma = 1e-6, the ``ratio`` rule with the released code's patch
pairing; any :class:`mwam.MWAMConfig` may be given), per image in float32 (as MWAM computes it; Eq. 4 divides by
high-frequency coefficients that are near 0 in flat patches, so float32 rounding moves the sum by up to about 1% from
float64's: ``transform=torch.Tensor.double`` measures in float64) and summed in float64. The values depend
strongly on that normalisation (an exactly constant patch has zero high-frequency coefficients, so its low / sigma
terms dominate), which is why it is stated; ``transform`` maps each input batch before it is measured (e.g. back to
0..255 with ``lambda x: x * 128 + 127.5``) to measure another reading.

``python -m reproduce.frm_of_data casia_surf ROOT [--split train] [--progress]`` prints the per-modality and
per-subset values (the Table 1 column).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Eq. 4's settings when no MWAM configuration is given (the paper's and MWAMConfig's defaults).
DEFAULT_METRIC: dict[str, Any] = {"rule": "ratio", "patch": 8, "window": 2, "sigma": 1e-6, "omega": 0.9,
                                  "pairing": "patch"}  # fmt: skip


def _metric_settings(config: Any) -> dict[str, Any]:
    if config is None:
        return dict(DEFAULT_METRIC)
    return {name: getattr(config, name) for name in DEFAULT_METRIC}


def _dataset(spec_or_dataset: Any, root: Any, split: str, train: bool, seed: int, options: Mapping[str, Any] | None):
    """``(dataset, modalities or None)`` from a data set name, a ``DatasetSpec`` or a built data set."""
    from mwam_harness.datasets.registry import DatasetSpec, dataset_spec

    spec = dataset_spec(spec_or_dataset) if isinstance(spec_or_dataset, str) else spec_or_dataset
    if isinstance(spec, DatasetSpec):
        if root is None:
            raise ValueError(f"data_frm: {spec.name} needs the data root (root=...)")
        if split not in spec.splits:
            raise ValueError(f"data_frm: {spec.name} has no split {split!r}; it has {sorted(spec.splits)}")
        return spec.build_dataset(root, split, train=train, seed=seed, **dict(options or {})), spec.modalities
    if root is not None or options:
        raise ValueError("data_frm: a built data set is measured as it is; root and options go with a DatasetSpec")
    if not (hasattr(spec, "__getitem__") and hasattr(spec, "__len__")):
        raise ValueError(f"data_frm: expected a data set name, a DatasetSpec or a data set, got {type(spec).__name__}")
    return spec, getattr(spec, "modalities", None)


def per_image_frm(
    spec_or_dataset: Any,
    root: Any = None,
    split: str = "train",
    *,
    modalities: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    train: bool = False,
    seed: int = 0,
    config: Any = None,
    transform: Callable[[Any], Any] | None = None,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = False,
) -> dict[str, list[float]]:
    """Each modality's Eq. 4 value of every image of ``split``, in the data set's order: ``{modality: [float]}``.

    ``spec_or_dataset``: a registered data set's name or ``DatasetSpec`` (built at ``root`` with the loader
    ``options``, ``train`` / ``seed`` as the engine passes them), or a built data set (items are mappings with one
    (C, H, W) tensor per modality). ``modalities``: which to measure (default: the data set's). ``config``: an
    ``mwam.MWAMConfig`` whose metric settings (rule, patch, window, sigma, omega, pairing) are used; default Eq. 4
    with the paper's settings. ``transform``: applied to each (B, C, H, W) batch before it is measured.
    """
    import torch
    from torch.utils.data import DataLoader

    from mwam import frm

    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    dataset, known = _dataset(spec_or_dataset, root, split, train, seed, options)
    if len(dataset) == 0:
        raise ValueError(f"data_frm: the {split} split is empty")
    if modalities is None:
        if known is None:
            first = dataset[0]
            known = [k for k, v in first.items() if torch.is_tensor(v) and v.is_floating_point() and v.dim() >= 3]
        modalities = tuple(known)
    modalities = tuple(modalities)
    if not modalities:
        raise ValueError("data_frm: no modality to measure")
    if known is not None:
        unknown = [m for m in modalities if m not in known]
        if unknown:
            raise ValueError(f"data_frm: unknown modalities {unknown}; the data set has {list(known)}")
    settings = _metric_settings(config)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    values: dict[str, list[float]] = {m: [] for m in modalities}
    from tqdm.auto import tqdm

    for batch in tqdm(loader, desc=f"FRM {split}", disable=not progress):
        for m in modalities:
            if m not in batch:
                raise ValueError(f"data_frm: the data set's items have no {m!r}; they have {sorted(batch)}")
            x = batch[m]
            if transform is not None:
                x = transform(x)
            values[m].extend(frm(x, reduction="none", **settings).tolist())
    return values


def data_frm(
    spec_or_dataset: Any,
    root: Any = None,
    split: str = "train",
    **kwargs: Any,
) -> dict[str, float]:
    """Each modality's FRM of ``split``: the sum (no normalisation) of its images' Eq. 4 values,
    ``{modality: float}``. Arguments as :func:`per_image_frm` (``progress=True`` shows a progress bar)."""
    per_image = per_image_frm(spec_or_dataset, root, split, **kwargs)
    return {m: math.fsum(values) for m, values in per_image.items()}


def subset_frm(per_modality: Mapping[str, float], subset: Sequence[str] | str) -> float:
    """The FRM of a subset of modalities: the sum of its members' (Table 1). ``subset``: modality names, or a
    subset key ``"rgb+depth"``."""
    members = subset.split("+") if isinstance(subset, str) else list(subset)
    if not members or len(set(members)) != len(members):
        raise ValueError(f"a subset names distinct modalities, got {subset!r}")
    missing = [m for m in members if m not in per_modality]
    if missing:
        raise ValueError(f"no FRM for {missing}; measured: {sorted(per_modality)}")
    return math.fsum(float(per_modality[m]) for m in members)


def frm_column(per_modality: Mapping[str, float], subsets: Sequence[Sequence[str]]) -> dict[str, float]:
    """Table 1's FRM column: ``{subset key: FRM}`` for ``subsets`` in their order (e.g. ``reproduce.subsets``'s
    paper order)."""
    return {"+".join(s): subset_frm(per_modality, s) for s in subsets}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reproduce.frm_of_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a registered data set, e.g. casia_surf")
    parser.add_argument("root", help="its data root")
    parser.add_argument("--split", default="train")
    parser.add_argument("--train-transform", action="store_true", help="measure epoch 0's augmented inputs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    from mwam_harness.datasets.registry import dataset_spec
    from reproduce.subsets import subsets

    spec = dataset_spec(args.dataset)
    per_modality = data_frm(spec, args.root, args.split, train=args.train_transform, batch_size=args.batch_size,
                            workers=args.workers, progress=args.progress)  # fmt: skip
    column = frm_column(per_modality, subsets(spec.name))
    print(json.dumps({"split": args.split, "modalities": per_modality, "subsets": column}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
