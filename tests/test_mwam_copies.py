"""Copies of a model with MWAM inside keep gradient editing: tensor hooks are not serialised, so pickle, deepcopy and
torch.save (and Lightning's ddp_spawn, which pickles the model into its processes) would drop them silently."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

from mwam import MWAM


class Net(nn.Module):
    def __init__(self, **options) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 1), nn.Linear(4, 1)
        self.mwam = MWAM(branches={"a": self.a, "b": self.b}, **options)


def bias_gradients(net: Net) -> tuple[float, float]:
    net.zero_grad()
    net.mwam.grad_scale.copy_(torch.tensor([2.0, 3.0]))
    x = torch.ones(1, 4)
    (net.a(x) + net.b(x)).sum().backward()
    return float(net.a.bias.grad), float(net.b.bias.grad)


def through_torch_save(net: Net) -> Net:
    buffer = io.BytesIO()
    torch.save(net, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def through_pickle(net: Net) -> Net:
    return pickle.loads(pickle.dumps(net))


@pytest.mark.parametrize("clone", [through_pickle, copy.deepcopy, through_torch_save])
def test_a_copied_model_scales_its_own_gradients_once(clone):
    net = Net()
    copied = clone(net)
    assert copied.mwam._branch_params["a"][0] is copied.a.weight  # the copy's parameters, not the original's
    assert bias_gradients(copied) == (2.0, 3.0)
    assert bias_gradients(net) == (2.0, 3.0)  # the original is unchanged (not hooked twice)


def test_a_shallow_copy_does_not_hook_the_shared_parameters_twice():
    net = Net()
    shallow = copy.copy(net.mwam)
    assert shallow.modalities == net.mwam.modalities
    assert bias_gradients(net) == (2.0, 3.0)


@pytest.mark.parametrize("options", [{"gradient_hooks": False}, {"intervention": "none"}, {"remove": True}])
def test_a_copy_without_hooks_stays_without(options):
    remove = options.pop("remove", False)
    net = Net(**options)
    if remove:
        net.mwam.remove_hooks()
    assert bias_gradients(copy.deepcopy(net)) == (1.0, 1.0)
