"""Tables 1, 13, 14, 17 and Fig. 1: which runs fill which columns (torch-free planning), shared runs trained once,
Table 1's Uni-modal column assembled from one model per subset, and the Fig. 1 runs."""

import pytest

import mwam_harness.datasets.casia_surf as surf
from reproduce.experiments import column_records, plan_figure, plan_table, table_layout
from reproduce.runs.records import ResultRecord
from reproduce.runs.runtime import Runtime
from reproduce.subsets import subsets
from reproduce.tables.model import from_records
from reproduce.tables.paper_data import load_paper_table
from reproduce.tables.specs import FIGURE_RUNS, SURF_PAIRS, SURF_PARTIAL_SUBSETS, table_runs

SMOKE = surf.PRESETS["smoke"]


def _keys(number, **kwargs):
    return {rt.column: cfg.key for cfg, rt in table_runs(number).configs(None, SMOKE, **kwargs)}


def test_table1_rows_are_casia_surfs_and_each_subset_model_fills_its_own_row():
    assert list(SURF_PARTIAL_SUBSETS) == subsets("casia_surf")[:-1]
    keys = _keys(1)
    assert len(keys) == 8 and len(set(keys.values())) == 7, "the full row is the multi-modal model: one run"
    assert keys["Uni-modal (Rgb+Depth+Ir)"] == keys["Multi-modal"]
    spec = table_runs(1)
    assert [c.column for c in spec.columns_named(["Uni-modal"])] == [c.column for c in spec.columns[1:]]
    configs = dict((rt.column, cfg) for cfg, rt in spec.configs(None, SMOKE))
    assert configs["Uni-modal (Depth+Ir)"].host.options == {"fixed_modalities": ["depth", "ir"]}
    assert configs["Uni-modal (Depth+Ir)"].data.modalities is None, "all three are read; the host uses two"


class _Registry:
    """A registry stand-in: every run evaluated on all seven subsets, value = 10 * row index + a run offset."""

    def __init__(self, offsets):
        self.offsets = offsets

    def records(self, config, runtime):
        rows = ["+".join(s) for s in subsets("casia_surf")]
        offset = self.offsets[runtime.column]
        return [
            ResultRecord(1, runtime.column, "v", "casia_surf", key, "Acc", 10.0 * i + offset, 0, config.key, True)
            for i, key in enumerate(rows)
        ]


def test_table1_uni_modal_column_takes_each_runs_own_row_only():
    spec = table_runs(1)
    requested = spec.configs(None, SMOKE)
    offsets = {rt.column: n / 10 for n, (_, rt) in enumerate(requested)}
    registry = _Registry(offsets)
    records = [r for cfg, rt in requested for r in column_records(spec, cfg, rt, registry)]
    uni = {r.subset: r.value for r in records if r.column == "Uni-modal"}
    assert list(uni) == ["+".join(s) for s in subsets("casia_surf")]
    for i, (_, rt) in enumerate(requested[1:]):
        assert uni["+".join(subsets("casia_surf")[i])] == 10.0 * i + offsets[rt.column]
    view = from_records(table_layout(1, requested), records)
    [block] = view.blocks
    assert [c.name for c in block.columns] == ["Multi-modal", "Uni-modal"]
    assert [d.column for d in block.deltas] == ["Multi-modal"], "the paper's Multi-modal minus Uni-modal deltas"


def test_balancing_tables_share_the_mwam_runs_and_train_each_pair_on_its_modalities():
    t13, t14, t17 = _keys(13), _keys(14), _keys(17)
    assert len(t13) == 12 and len(t14) == 9 and len(t17) == 2
    for pair in SURF_PAIRS:
        label = "/".join(m.capitalize() for m in pair)
        assert t13[f"MWAM ({label})"] == t14[f"MWAM ({label})"]
    assert t17["MWAM"] == t13["MWAM (Rgb/Depth)"], "Table 17's MWAM column is Table 13's"
    for number in (13, 14, 17):
        requested = table_runs(number).configs(None, SMOKE, extensions=table_runs(number).extensions)
        table_layout(number, requested)  # every paper column on its block's modalities
        for cfg, rt in requested:
            assert cfg.host.options["modalities"] == list(cfg.data.modalities), rt.column
    configs = {rt.column: cfg for cfg, rt in table_runs(13).configs(None, SMOKE)}
    assert [p.name for p in configs["OGM-GE (Depth/Ir)"].plugins] == ["ogm_ge"]
    assert configs["MWAM (Rgb/Ir)"].mwam.intervention == "grad" and not configs["MWAM (Rgb/Ir)"].plugins


def test_table17_crmt_runs_its_two_steps_in_the_paper_preset():
    paper = surf.PRESETS["paper"]
    configs = {rt.column: cfg for cfg, rt in table_runs(17).configs(None, paper)}
    crmt, mwam = configs["CRMT-JT"], configs["MWAM"]
    assert crmt.host.name == "resnet18_crmt" and crmt.train.epochs == 133 and mwam.train.epochs == 100
    assert crmt.eval.select_after == 99, "selected among the step-2 epochs"


def test_the_extensions_add_the_host_alone_and_the_authors_sum_fusion():
    configs = {rt.column: cfg for cfg, rt in table_runs(14).configs(None, SMOKE, extensions=("sum_fusion",))}
    assert configs["MSLR [sum] (Rgb/Ir)"].host.options == {"modalities": ["rgb", "ir"], "fusion": "sum"}
    assert "ResNet-18 concat (Rgb/Ir)" not in configs
    with pytest.raises(ValueError, match="no extension"):
        table_runs(17).configs(None, SMOKE, extensions=("sum_fusion",))


def test_figure1_runs_filter_the_data_and_record_the_validation_loss():
    plan = plan_figure(1, "smoke", require_data=False, runtime=Runtime())
    configs = {rt.column: cfg for cfg, rt in plan.requested}
    assert list(configs) == ["Raw dataset", "low-pass 15", "low-pass 30", "high-pass 15", "high-pass 30"]
    assert configs["high-pass 30"].data.options["filter"] == {"kind": "high", "size": 30, "restore": "minmax"}
    assert configs["low-pass 15"].data.options["filter"] == {"kind": "low", "size": 15}
    assert all([p.name for p in c.plugins] == ["validation_loss"] for c in configs.values())
    assert FIGURE_RUNS[1].table is None
    with pytest.raises(ValueError, match="Figs"):
        plan_figure(2, "smoke", require_data=False)


def test_table1_plan_has_seven_runs():
    plan = plan_table(1, "smoke", require_data=False)
    assert len(plan.plan) == 7
    assert load_paper_table(1).blocks[0].columns[2].name == "RFNet", "RFNet stays the paper's numbers only"


def test_table2_balancing_extension_puts_ogm_ge_and_agm_on_rfnet_with_four_modalities():
    from mwam_harness.datasets.brats2020 import PRESETS as BRATS

    configs = {rt.column: cfg for cfg, rt in table_runs(2).configs(None, BRATS["smoke"], extensions=("balancing",))}
    ogm, agm = configs["RFNet +OGM-GE"], configs["RFNet +AGM"]
    assert ogm.host.name == agm.host.name == "rfnet" and ogm.data.modalities is None, "all four modalities"
    assert ogm.plugins[0].options["variant"] == "balancebenchmark" and ogm.plugins[0].options["modulation_start"] == 0
    assert agm.plugins[0].options == {"variant": "balancebenchmark", "head": "decoder_fuse.seg_layer"}
    assert "RFNet +OGM-GE" not in {rt.column for _, rt in table_runs(2).configs(None, BRATS["smoke"])}
