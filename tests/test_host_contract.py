"""The Host contract, checked on every registered host (as timm tests every registered model).

Forward with every presence mask (uniform and mixed per sample), backward, disjoint branches, feature branches
(SDE's) that each run once per forward pass, the authors' parameter count (within 2 %) where the registration gives
one (every host of the paper does; a host of one's own need not), and -- where a host splits
``encode`` / ``fuse`` -- that evaluating a subset through the split gives exactly what one forward pass gives. Each
host is built with its registration's ``test_options`` (a smaller configuration for hosts too large for the CPU
suite, e.g. mmFormer's patch_size); the parameter count is checked on the default build.
"""

import itertools

import pytest
import torch

from mwam_harness import models
from mwam_harness.models import Host, forward_subsets

HOSTS = models.list_models()
#: The Host contract is what the engine's trainer calls; a host trained by another library's runner (the two-stream
#: YOLOv8n, ultralytics) has that library's contract instead (tests/test_two_stream_yolo.py). The parameter count
#: is checked for every registered host.
TRAINER_HOSTS = [name for name in HOSTS if models.model_info(name).runner == "trainer"]


def masks(modalities, batch):
    """Every non-empty subset as a uniform (batch, M) mask, plus one mask mixing subsets over the samples."""
    subsets = [c for r in range(1, len(modalities) + 1) for c in itertools.combinations(range(len(modalities)), r)]
    uniform = []
    for subset in subsets:
        row = torch.zeros(len(modalities), dtype=torch.bool)
        row[list(subset)] = True
        uniform.append(row.expand(batch, -1).clone())
    mixed = torch.stack([uniform[i % len(uniform)][0] for i in range(batch)])
    return [*uniform, mixed]


@pytest.fixture(params=TRAINER_HOSTS)
def name(request):
    return request.param


@pytest.fixture
def host(name):
    torch.manual_seed(0)
    return models.build(name, **models.model_info(name).test_options)


@pytest.mark.parametrize("name", HOSTS)
def test_a_registered_authors_parameter_count_is_matched(name):
    """Where a registration gives the authors' parameter count (every host of the paper does, with its source), the
    default build matches it within 2 %; a host of one's own registers none and passes."""
    info = models.model_info(name)
    if info.parameters is None:
        assert not info.reference, f"{name}: a reference without a parameter count"
        return
    assert info.reference, f"{name}: say where the authors' count {info.parameters} comes from"
    torch.manual_seed(0)
    default = models.build(name)
    count = sum(p.numel() for p in default.parameters())
    assert abs(count - info.parameters) <= 0.02 * info.parameters, (name, count, info.parameters)


#: The hosts the paper names: each registers the authors' parameter count (the check above then applies).
PAPER_HOSTS = ("sf", "sf_md", "mmanet", "rfnet", "mmformer", "esanet_md", "esanet", "mmanet_seg", "two_stream_yolov8n")


@pytest.mark.parametrize("name", PAPER_HOSTS)
def test_every_host_of_the_paper_registers_its_authors_count(name):
    info = models.model_info(name)
    assert info.parameters is not None and info.reference, f"{name}: register the authors' parameter count"


def test_forward_with_every_mask_and_backward(host):
    assert isinstance(host, Host) and host.modalities
    inputs = host.example_inputs(2, torch.Generator().manual_seed(1))
    assert set(inputs) == set(host.modalities)
    host.eval()
    shapes = set()
    for mask in masks(host.modalities, 2):
        with torch.no_grad():
            out = host(inputs, mask)
        assert torch.isfinite(out.logits).all() and out.logits.shape[0] == 2
        assert out.present is None or torch.equal(out.present.cpu(), mask), "eval applies exactly the given mask"
        shapes.add(tuple(out.logits.shape))
    assert len(shapes) == 1
    host.train()
    calls = {m: 0 for m in host.modalities}  # SDE's hooks sit on the feature branches: each must run once
    feature_branches = host.feature_branches()
    assert tuple(feature_branches) == tuple(host.modalities)
    owned = {id(module) for module in host.modules()}
    assert all(id(module) in owned for module in feature_branches.values())
    handles = [
        module.register_forward_hook(lambda *_, m=m: calls.__setitem__(m, calls[m] + 1))
        for m, module in feature_branches.items()
    ]
    out = host(inputs, None)
    for handle in handles:
        handle.remove()
    assert calls == {m: 1 for m in host.modalities}, calls
    loss = out.logits.float().square().mean() + sum(a.float().square().mean() for a in (out.aux or {}).values())
    loss.backward()
    for modality, branch in host.branches().items():
        grads = [p.grad for p in branch.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), modality


def test_branches_are_disjoint_named_by_modality_and_inside_the_host(host):
    branches = host.branches()
    assert tuple(branches) == tuple(host.modalities)
    owned = {id(p) for p in host.parameters()}
    seen = set()
    for modality, branch in branches.items():
        ids = {id(p) for p in branch.parameters()}
        assert ids and ids <= owned, modality
        assert not ids & seen, f"{modality} shares parameters with another branch"
        seen |= ids


def test_encode_fuse_gives_exactly_one_forward_pass_per_subset(host):
    if not host.splits_encoding:
        pytest.skip(f"{type(host).__name__} has no encode / fuse split")
    inputs = host.example_inputs(3, torch.Generator().manual_seed(2))
    host.eval()
    all_masks = masks(host.modalities, 3)
    with torch.inference_mode():
        split = forward_subsets(host, inputs, all_masks)
        whole = [host(inputs, mask) for mask in all_masks]
    for a, b in zip(split, whole, strict=True):
        assert torch.equal(a.logits, b.logits)
        for name in b.extras or {}:
            assert torch.equal(a.extras[name], b.extras[name]), name


def test_training_dropout_with_a_generator_is_seeded_keeps_to_present_and_leaves_the_global_stream(host):
    batch = 64
    present = torch.ones(batch, len(host.modalities), dtype=torch.bool)
    present[::3, 0] = False
    torch.manual_seed(7)
    draw = torch.rand(3)
    torch.manual_seed(7)
    first = host.training_dropout(present, torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(3), draw), "the generator's draws leave the global random stream alone"
    again = host.training_dropout(present, torch.Generator().manual_seed(1))
    assert first.dtype == torch.bool and first.shape == present.shape and torch.equal(first, again)
    assert not (first & ~present).any(), "dropout only removes modalities"
