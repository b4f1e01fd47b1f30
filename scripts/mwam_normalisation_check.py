"""What MWAM's ``frm_normalisation`` does to K on a data set's training images (no model is trained).

``python scripts/mwam_normalisation_check.py [--root DIR]`` reads the training split of NYU-Depth V2 (by default
the demo's synthetic scenes, written if missing) as the model sees it, runs ``MWAM.step`` (``intervention="none"``)
on consecutive batches of 4 with ``frm_normalisation`` ``none`` (Eq. 4 summed, the paper's) and ``per_element``,
and prints the mean K per modality and the last batch's FRM (docs/mwam.md, section 6).
"""

from __future__ import annotations

import argparse
import warnings

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="a prepared NYUv2 root (default: the demo's synthetic set)")
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()

    from mwam import MWAM
    from mwam_harness.datasets import dataset_spec
    from mwam_harness.datasets.registry import load_object
    from reproduce.paths import results_root

    spec = dataset_spec("nyuv2")
    preset = spec.preset("demo")
    root = args.root or spec.write_synthetic(results_root() / "cache" / "synthetic" / "nyuv2_demo", **preset.generator)
    options = preset.run["data"]["options"]
    data = load_object(spec.loader)(root, split="train", train=False, **options)
    warnings.simplefilter("ignore", UserWarning)  # the unequal-size warning is the point of the check
    for normalisation in ("none", "per_element"):
        mwam = MWAM(("rgb", "depth"), intervention="none", frm_normalisation=normalisation)
        weights = []
        for start in range(0, min(len(data), 4 * args.batches) - 3, 4):
            batch = [data[i] for i in range(start, start + 4)]
            weights.append(mwam.step({m: torch.stack([b[m] for b in batch]) for m in ("rgb", "depth")}).clone())
        k = torch.stack(weights).mean(dim=0).tolist()
        frm = [f"{v:.3g}" for v in mwam.record().frm.tolist()]
        print(f"{normalisation:12s} mean K rgb {k[0]:.3f} depth {k[1]:.3f}; last batch FRM rgb {frm[0]} depth {frm[1]}")


if __name__ == "__main__":
    main()
