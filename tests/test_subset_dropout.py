"""The hosts' training-time modality dropout (``models.subset_dropout``): the authors' subset tables drawn
uniformly and in their index order, only removing modalities, seeded by a generator that leaves the global stream
alone; applied in training, never in evaluation."""

import collections

import pytest
import torch

from mwam_harness.models.mmformer import MMFormerHost
from mwam_harness.models.rfnet import SUBSETS as BRATS_SUBSETS
from mwam_harness.models.rfnet import RFNetHost
from mwam_harness.models.sf import SUBSETS as SURF_SUBSETS
from mwam_harness.models.sf import SFHost

HOSTS = {
    "rfnet": (lambda **o: RFNetHost(basic_dims=4, **o), BRATS_SUBSETS),
    "mmformer": (lambda **o: MMFormerHost(**{"patch_size": 2, "basic_dims": 1, **o}), BRATS_SUBSETS),
    "sf_md": (lambda **o: SFHost(**{"modality_dropout": True, **o}), SURF_SUBSETS),
}


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_training_dropout_draws_the_authors_subsets_uniformly_and_only_removes(name):
    build, table = HOSTS[name]
    net = build()
    count, modalities = len(table), len(table[0])
    draws = 1000 * count
    full = torch.ones(draws, modalities, dtype=torch.bool)
    drawn = net.training_dropout(full, torch.Generator().manual_seed(0))
    counts = collections.Counter(tuple(row) for row in drawn.tolist())
    assert set(counts) == set(table)
    assert all(abs(c - draws / count) <= 0.1 * draws / count for c in counts.values()), counts
    index = torch.randint(0, count, (draws,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(drawn, torch.tensor(table)[index]), "index -> subset in the authors' order"

    present = torch.rand(draws, modalities, generator=torch.Generator().manual_seed(1)) < 0.6
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    kept = net.training_dropout(present, torch.Generator().manual_seed(2))
    assert torch.equal(torch.rand(2), expected), "a generator leaves the global stream alone"
    assert torch.equal(kept, net.training_dropout(present, torch.Generator().manual_seed(2)))
    assert not (kept & ~present).any()
    assert torch.equal(build(modality_dropout=False).training_dropout(present), present)


@pytest.mark.parametrize("name", ["rfnet", "mmformer"])
def test_training_forward_applies_dropout_and_evaluation_does_not(name):
    torch.manual_seed(0)
    net = HOSTS[name][0](**({"basic_dims": 2} if name == "mmformer" else {}))
    inputs = net.example_inputs(4, torch.Generator().manual_seed(6))
    present = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    net.train()
    with torch.no_grad():
        applied = net(inputs, present).present
    assert not (applied & ~present).any()
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(inputs, present).present, present)
