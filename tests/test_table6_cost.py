"""Table 6 computed from the models: the inference parameter count (the paper's convention), FLOPs by PyTorch's
counter against a hand count, MWAM's step time, and the table beside the paper's numbers (small inputs here; the
paper's sizes are what ``make table6`` uses)."""

import json

import pytest
import torch

import reproduce.benchmarks.model_cost as cost
from mwam_harness import models
from reproduce.benchmarks.model_cost import CostModel, counted_flops, inference_parameters


def test_inference_parameters_leave_out_the_training_only_modules_as_the_paper_counts():
    rfnet = models.build("rfnet")
    volumes = {m: torch.randn(1, 1, 16, 16, 16) for m in rfnet.modalities}
    sep = sum(p.numel() for p in rfnet.decoder_sep.parameters())
    # RFNet: all but the separate decoder (the region-map generators count although their output is detached)
    assert inference_parameters(rfnet, volumes) == 8_984_960 - sep == 8_398_572  # paper: 8.4 M
    mmanet = models.build("mmanet")
    images = {m: torch.randn(1, 3, 40, 40) for m in mmanet.modalities}
    assert round(inference_parameters(mmanet, images) / 1e6, 2) == 13.18  # paper: 13.18 M (the auxiliary trunk out)


def test_flops_of_a_3d_convolution_are_two_per_multiply_accumulate():
    conv = torch.nn.Conv3d(4, 8, 3, padding=1, bias=False)
    x = torch.randn(1, 4, 6, 6, 6)
    with torch.inference_mode():
        assert counted_flops(lambda: conv(x)) == 2 * 6**3 * 8 * 4 * 27


def test_cost_table_and_markdown_beside_the_paper(monkeypatch, tmp_path):
    from reproduce.cli import main

    small = (CostModel("RFNet", "rfnet", (1, 16, 16, 16), 2, "BraTS2020 (test: 16^3)"),)
    monkeypatch.setattr(cost, "COST_MODELS", small)
    assert main(["cost", "--device", "cpu", "--iters", "2", "--warmup", "0", "--output-dir", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "table6.json").read_text())
    rfnet = report["models"]["RFNet"]
    assert rfnet["parameters_inference"] == 8_398_572 and rfnet["mwam_step_ms"]["iters"] == 2
    table = report["table"]
    assert table["RFNet +MWAM"]["params_m"] == table["RFNet"]["params_m"], "MWAM adds no parameter"
    assert table["RFNet +MWAM"]["flops_g"] > table["RFNet"]["flops_g"] > 0
    assert table["RFNet +MWAM"]["mwam_time_mean"] > 0 and "mwam_time_mean" not in table["RFNet"]
    text = (tmp_path / "table6.md").read_text()
    assert report["device"] in text.splitlines()[0]
    row = next(line for line in text.splitlines() if line.startswith("| RFNet +MWAM |"))
    assert "204.5604" in row and "8.40" in row  # ours and the paper's, side by side
    mmanet = next(line for line in text.splitlines() if line.startswith("| MMANet |"))
    assert "13.1800" in mmanet and "|  |" in mmanet  # not measured in this run: the paper's numbers only
    assert "RFNet,params_m,8.39857" in (tmp_path / "table6.csv").read_text()
    with pytest.raises(ValueError, match="not \\['VGG'\\]"):
        cost.run_cost("cpu", ("VGG",))
    assert table["RFNet"]["macs_batch_g"] == pytest.approx(table["RFNet"]["flops_g"] / 2 * 2)
