import pytest
from torch import nn

from mwam_harness.catalog import Catalog
from mwam_harness.models import registry


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """An empty host catalog (nothing to discover) for each test."""
    monkeypatch.setattr(registry, "HOSTS", Catalog("host"))


def test_register_build_and_list():
    @registry.register_model("tiny", parameters=6, reference="its author: 6")
    class Tiny(nn.Module):
        def __init__(self, width: int = 2):
            super().__init__()
            self.layer = nn.Linear(width, width)

    assert registry.list_models() == ["tiny"]
    model = registry.build("tiny", width=3)
    assert isinstance(model, Tiny) and model.layer.in_features == 3
    info = registry.model_info("tiny")
    assert (info.parameters, info.reference, info.runner, info.factory) == (6, "its author: 6", "trainer", Tiny)


def test_unknown_name_lists_the_known_ones():
    registry.register_model("a")(nn.Identity)
    with pytest.raises(ValueError, match="unknown host 'b'; known: a"):
        registry.build("b")


def test_duplicate_and_bad_names_are_rejected():
    registry.register_model("a")(nn.Identity)
    registry.register_model("a")(nn.Identity)  # the same factory again is fine (re-import)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_model("a")(nn.ReLU)
    with pytest.raises(ValueError, match="non-empty"):
        registry.register_model(" a")
    with pytest.raises(ValueError, match="positive integer"):
        registry.register_model("b", parameters=0)
