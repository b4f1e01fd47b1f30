"""Table 1's FRM column, computed from the data rather than trained: each subset's FRM is the sum of its members'
Eq. 4 sums over the training split (``reproduce.frm_of_data``), measured on the data and at the input size of the
table's Multi-modal run. The values are cached per data fingerprint and loader options under
``<results>/computed/`` (the paper's training set takes minutes to measure)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from reproduce.io import write_text_atomic
from reproduce.paths import results_root
from reproduce.runs.records import ResultRecord

#: The column the values fill, and the run whose data and loader options are measured.
COLUMN = "FRM"
MEASURED_RUN = "Multi-modal"


def frm_records(requested: Sequence[tuple[Any, Any]]) -> list[ResultRecord]:
    """One record per subset of the data set: ``{column FRM, metric FRM, seed 0}`` (the same for every seed), from
    the data of the requested ``Multi-modal`` run; none when that run is not requested."""
    from mwam_harness.datasets import dataset_spec
    from reproduce.frm_of_data import data_frm
    from reproduce.subsets import subset_key, subsets

    runs = [config for config, runtime in requested if runtime.column == MEASURED_RUN]
    if not runs:
        return []
    config = runs[0]
    spec = dataset_spec(config.data.dataset)
    root = config.data.locate()
    options = {k: v for k, v in config.data.options.items() if k != "filter"}
    fingerprint = spec.fingerprint(root)
    tag = hashlib.sha256(json.dumps({"options": options, "fingerprint": fingerprint}, sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]  # fmt: skip
    cache = results_root() / "computed" / f"frm_{spec.name}_{tag}.json"
    if cache.exists():
        per_modality = json.loads(cache.read_text(encoding="utf-8"))["per_modality"]
    else:
        per_modality = data_frm(spec, str(root), "train", options=options, progress=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cache, json.dumps({"per_modality": per_modality, "options": options,
                                             "fingerprint": fingerprint}, indent=2, default=str))  # fmt: skip
    synthetic = bool(spec.is_synthetic(root))
    return [
        ResultRecord(
            table=1,
            column=COLUMN,
            variant="data",
            dataset=spec.name,
            subset=subset_key(subset),
            metric="FRM",
            value=sum(float(per_modality[m]) for m in subset),
            seed=0,
            run_id=f"data:{fingerprint}",
            synthetic=synthetic,
        )
        for subset in subsets(spec.name)
    ]
