"""examples/own_training_loop.py (docs/mwam.md, "MWAM in your own training loop") runs in every mode, and MWAM
really edits the gradients it trains with: the branches' gradients are K x those of a run without MWAM."""

import importlib.util
import math
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^step +(\d+) +loss (\S+) +K audio (\S+) visual (\S+) +visual present ([01]+)$", re.M)
FAST = ["--steps", "3", "--batch", "8", "--device", "cpu"]


def load_example():
    spec = importlib.util.spec_from_file_location("own_training_loop", ROOT / "examples" / "own_training_loop.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


example = load_example()


@pytest.mark.parametrize(
    "options",
    [
        ["--mode", "grad"],
        ["--mode", "loss"],
        ["--mode", "hybrid"],
        ["--accumulate", "2"],
        ["--missing", "0.25"],
        ["--amp"],
        ["--mode", "hybrid", "--amp", "--accumulate", "2", "--missing", "0.25", "--per-element"],
    ],
    ids=lambda options: " ".join(options),
)
def test_the_example_runs_and_prints_what_to_log(options, capsys, recwarn):
    result = example.main([*options, *FAST])
    out = capsys.readouterr().out
    lines = LINE.findall(out)
    assert [int(line[0]) for line in lines] == [1, 2, 3], out
    accumulate = int(options[options.index("--accumulate") + 1]) if "--accumulate" in options else 1
    for _, loss, k_audio, k_visual, mask in lines:
        assert math.isfinite(float(loss))
        assert all(math.isfinite(float(k)) and float(k) > 0 for k in (k_audio, k_visual))
        assert abs(float(k_audio) - float(k_visual)) > 1e-3, "K must differ between the modalities"
        assert len(mask) == 8 * accumulate
        assert mask.count("0") == (2 * accumulate if "--missing" in options else 0)  # round(0.25 x 8) per batch
    assert re.search(r"^held-out accuracy (0|1)\.\d{3} \(256 synthetic samples\)$", out, re.M)
    assert 0.0 <= result.accuracy <= 1.0
    # the log is record().log_dict() plus the applied K and the loss
    assert {"mwam/K/audio", "mwam/T/visual", "mwam/frm/visual", "mwam/present/visual", "K/visual", "loss"} <= set(
        result.log[-1]
    )
    assert result.mwam.record().step == 3 * accumulate
    # loss / hybrid: the auxiliary heads are trained through weighted_loss (Eq. 7); grad: they are not used
    aux_used = result.model.visual_head.weight.grad is not None
    assert aux_used == (options[options.index("--mode") + 1] in ("loss", "hybrid") if "--mode" in options else False)
    if "--per-element" not in options:  # the default sums Eq. 4 and says once that the modalities differ in size
        assert sum("differ in size" in str(w.message) for w in recwarn.list) == 1


@pytest.mark.filterwarnings("ignore:MWAM. the modalities differ in size:UserWarning")
@pytest.mark.parametrize("options", [[], ["--amp"], ["--accumulate", "2"], ["--missing", "0.25"]], ids=repr)
def test_grad_mode_scales_each_branch_gradient_by_its_k(options):
    """One optimiser step with MWAM (--mode grad) against the same step measured only (--mode none): same seed, same
    data, so each encoder's gradient must be K x the plain one (the mean K of the micro-batches with --accumulate),
    and the head's must be untouched. Fails if the example ever stops applying MWAM."""
    argv = [*options, "--steps", "1", "--batch", "8", "--device", "cpu"]
    edited = example.main(["--mode", "grad", *argv])
    plain = example.main(["--mode", "none", *argv])
    k = {m: edited.log[-1][f"K/{m}"] for m in ("audio", "visual")}
    assert abs(k["visual"] - 1) > 0.1 and abs(k["audio"] - 1) > 0.1, k  # a K of 1 would prove nothing
    assert plain.log[-1]["K/visual"] == k["visual"]  # the measurement does not depend on the intervention
    for name in ("audio", "visual", "head"):
        factor = k.get(name, 1.0)
        for p_edited, p_plain in zip(
            getattr(edited.model, name).parameters(), getattr(plain.model, name).parameters(), strict=True
        ):
            assert p_plain.grad is not None and p_plain.grad.abs().sum() > 0
            torch.testing.assert_close(p_edited.grad, factor * p_plain.grad, rtol=1e-5, atol=1e-9)


def test_the_guide_quotes_the_example():
    """docs/mwam.md §7's code blocks are lines of the example (``...`` marks elided lines), so they cannot drift."""
    guide = (ROOT / "docs" / "mwam.md").read_text()
    section = re.search(r"^## 7\. MWAM in your own training loop$(.*?)^## 8\.", guide, re.M | re.S)
    assert section, "docs/mwam.md must have the section '## 7. MWAM in your own training loop'"
    assert "examples/own_training_loop.py" in section.group(1)
    assert "tests/test_example_own_training_loop.py" in section.group(1)
    blocks = re.findall(r"```python\n(.*?)```", section.group(1), re.S)
    assert len(blocks) >= 3
    source = {line.strip() for line in (ROOT / "examples" / "own_training_loop.py").read_text().splitlines()}
    for block in blocks:
        for line in block.splitlines():
            assert line.strip() in source | {"..."}, f"not in examples/own_training_loop.py: {line!r}"
