"""Which runs fill which columns of a paper table (the training side of a Table spec).

The paper's numbers, metric and row order live in ``reproduce/tables/paper/tableNN.yaml``; this file says how
this repository produces each column it can produce. Columns not listed show the paper's numbers only. Runs are
identified by their resolved configuration, so a column that several tables share (e.g. vanilla MMANet in
Tables 4, 7, 8, 10 and 16) is trained once and reused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reproduce.runs.config import SECTIONS, RunConfig, merge_settings
from reproduce.runs.options import plain
from reproduce.runs.overrides import deep_merge
from reproduce.runs.runtime import Runtime

#: Hosts with a ``pretrained`` option (an ImageNet ResNet-50 checkpoint file): ``table --pretrained PATH``.
PRETRAINED_HOSTS = ("esanet_md", "esanet", "mmanet_seg")
#: Sections a column's ablation may change without changing the MMANet teacher (the teacher never has MWAM, SDE
#: or the student's host and method).
_STUDENT_ONLY = ("host", "method", "mwam", "sde")


@dataclass(frozen=True)
class ColumnRun:
    """A column and the run settings that produce it.

    run: nested run settings of this column, merged over the preset's (the column's ablation: batch size, MWAM
        options ...). The paper preset names its schedule (``schedule.preset: paper``), which resolves per host
        (MMANet's learning-rate steps at epochs 16, 33 and 50, SF-MD's every 30 epochs); synthetic presets keep
        their short schedules. method / method_options: the training method; the preset's options for that method
        (``DatasetPreset.methods``) come first.
    extension: None for the paper's columns; a name (``"sde"``, ``"released"``) for a column this repository adds
        to the table (no paper numbers), trained only when that extension is asked for.
    part_of / rows: a run that fills only ``rows`` (subsets) of the paper column ``part_of`` -- Table 1's Uni-modal
        column is one model per subset, each giving the row of its own subset; None: the run is its own column.
    """

    column: str
    host: str
    mwam: str = "none"
    host_options: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    method: str = "standard"
    method_options: dict[str, Any] = field(default_factory=dict)
    extension: str | None = None
    part_of: str | None = None
    rows: tuple[tuple[str, ...], ...] = ()

    @property
    def fills(self) -> str:
        """The table column this run's results go to (``part_of`` or its own name)."""
        return self.part_of or self.column

    def with_changes(self, column: str, mwam: str | None = None, **sections: Mapping[str, Any]) -> ColumnRun:
        """A copy named ``column`` with nested settings merged into its run (``train={"batch_size": 4}``;
        ``mwam_options={...}`` is short for ``mwam={"options": {...}}``) and the intervention changed when given."""
        options = sections.pop("mwam_options", None)
        run = deep_merge(self.run, sections)
        if options is not None:
            run = deep_merge(run, {"mwam": {"options": dict(options)}})
        return dataclasses.replace(self, column=column, mwam=self.mwam if mwam is None else mwam, run=run)


def _section_default(section: str, name: str) -> Any:
    for f in dataclasses.fields(SECTIONS[section]):
        if f.name == name:
            return f.default if f.default is not dataclasses.MISSING else f.default_factory()
    raise ValueError(f"unknown setting {section}.{name}")


def teacher_overrides(preset_run: Mapping[str, Any], column_run: Mapping[str, Any]) -> dict[str, Any]:
    """The teacher of an MMANet column is the table's common teacher: the column's own ablation settings (batch
    size ...) are reverted to the preset's for it. MWAM, SDE, host and method settings never reach the teacher. A
    schedule preset is the exception: the teacher follows the student's (resolved for the teacher's host), so that
    a ``released`` column distils from the teacher the released code trains."""
    out: dict[str, dict[str, Any]] = {}
    for section, values in column_run.items():
        if section in _STUDENT_ONLY or not isinstance(values, Mapping):
            continue
        for name, value in values.items():
            if (section, name) == ("schedule", "preset"):
                continue
            preset_section = preset_run.get(section, {})
            base = preset_section[name] if name in preset_section else _section_default(section, name)
            if plain(base) != plain(value):
                out.setdefault(section, {})[name] = plain(base)
    return out


@dataclass(frozen=True)
class TableRuns:
    """A table's trainable columns on ``dataset``; ``figures``: ``"module:function"`` drawing the table's figures
    from its finished runs, called as ``function(requested, registry, output_dir, stem) -> [paths]`` when the table
    is rendered (Table 12: Fig. 6 and Fig. 7); ``computed``: ``"module:function"`` giving the result records of the
    columns computed from the data rather than trained (Table 1's FRM), ``function(requested) -> [ResultRecord]``.
    ``table`` is None for the runs of a figure (``FIGURE_RUNS``)."""

    table: int | None
    dataset: str
    columns: tuple[ColumnRun, ...]
    figures: str | None = None
    computed: str | None = None

    def column(self, name: str) -> ColumnRun:
        for c in self.columns:
            if c.column == name:
                return c
        raise ValueError(
            f"Table {self.table} has no trainable column {name!r}; it has {[c.column for c in self.columns]}"
        )

    def columns_named(self, names: list[str]) -> tuple[ColumnRun, ...]:
        """The column runs of ``names``: a run's own name, or a paper column that several runs fill in part (Table 1's
        ``Uni-modal``: all of its runs)."""
        out: list[ColumnRun] = []
        for name in names:
            parts = [c for c in self.columns if c.part_of == name and c.column != name]
            out.extend(c for c in (parts or [self.column(name)]) if c.column not in {o.column for o in out})
        return tuple(out)

    @property
    def extensions(self) -> tuple[str, ...]:
        """The names of the extensions this table has (columns beyond the paper's)."""
        return tuple(dict.fromkeys(c.extension for c in self.columns if c.extension))

    def chosen(self, columns: list[str] | None = None, extensions: tuple[str, ...] = ()) -> tuple[ColumnRun, ...]:
        unknown = sorted(set(extensions) - set(self.extensions))
        if unknown:
            raise ValueError(f"Table {self.table} has no extension {unknown}; it has {list(self.extensions) or 'none'}")
        if columns is None:
            return tuple(c for c in self.columns if c.extension is None or c.extension in extensions)
        return self.columns_named(list(columns))

    def configs(
        self,
        data_root: str | None,
        preset: Any,
        seed: int = 0,
        columns: list[str] | None = None,
        extensions: tuple[str, ...] = (),
        runtime: Runtime | None = None,
        pretrained: str | None = None,
    ) -> list[tuple[RunConfig, Runtime]]:
        """One (RunConfig, Runtime) per paper column and per column of the named ``extensions`` (or per named
        column), under ``preset`` (a ``DatasetPreset``). ``data_root``: the real data (None: the preset's synthetic
        set, or no data yet for a dry run of the paper preset). ``pretrained``: a local ImageNet checkpoint given to
        every column host (and teacher host) that takes one (``PRETRAINED_HOSTS``: the ESANet family, whose authors
        start from ImageNet ResNet-50 weights); an error when no column's host takes it."""
        runtime = runtime or Runtime()
        data = {"dataset": self.dataset, "root": data_root, "synthetic": preset.name if preset.synthetic else None}
        out = []
        if pretrained is not None:
            import os

            pretrained = os.path.abspath(pretrained)
            if not any(c.host in PRETRAINED_HOSTS for c in self.chosen(columns, extensions)):
                raise ValueError(f"--pretrained: no chosen column of Table {self.table} has a host that takes it")
        for c in self.chosen(columns, extensions):
            options = {**preset.methods.get(c.method, {}), **c.method_options}
            host_options = {**preset.hosts.get(c.host, {}), **c.host_options}
            if _has_teacher(c.method):
                teacher = teacher_overrides(preset.run, c.run)
                if teacher:
                    options["teacher_run"] = teacher
                if pretrained is not None:
                    from reproduce.methods import method_class

                    resolved = method_class(c.method).options_class(**options)
                    if resolved.teacher_host in PRETRAINED_HOSTS:
                        options["teacher_host_options"] = {**resolved.teacher_host_options, "pretrained": pretrained}
            if pretrained is not None and c.host in PRETRAINED_HOSTS:
                if host_options.get("encoder", "resnet50") != "resnet50":
                    raise ValueError(
                        f"--pretrained loads ImageNet ResNet-50 weights, but preset {preset.name!r} builds "
                        f"{c.host} with {host_options['encoder']} encoders (a synthetic preset: train it from scratch)"
                    )
                host_options["pretrained"] = pretrained
            values: dict[str, Any] = {
                "data": data,
                "host": {"name": c.host, "options": host_options},
                "method": {"name": c.method, "options": options},
                "mwam": {"intervention": c.mwam},
                "seed": seed,
            }
            values = merge_settings(values, preset.run)
            values = merge_settings(values, preset.host_runs.get(c.host, {}))
            values = merge_settings(values, c.run)
            config = RunConfig.from_dict(values, source=f"Table {self.table}, column {c.column!r}")
            labels = {**preset.runtime, **_explicit(runtime), "table": self.table, "column": c.column}
            out.append((config, Runtime.from_dict({**runtime.to_dict(), **labels})))
        return out


def _has_teacher(method: str) -> bool:
    """Whether ``method`` trains from a teacher run it configures with ``teacher_run`` (MMANet, MMANet-seg)."""
    from reproduce.methods import method_class

    options = method_class(method).options_class
    return options is not None and "teacher_run" in {f.name for f in dataclasses.fields(options)}


def _explicit(runtime: Runtime) -> dict[str, Any]:
    """The runtime settings given explicitly (differing from the defaults): they win over the preset's."""
    defaults = Runtime()
    return {k: v for k, v in runtime.to_dict().items() if v != getattr(defaults, k)}


# SF-MD + MWAM in Table 4 is the hybrid intervention with auxiliary heads: its numbers are Table 5's Hybrid
# column (Sec. 5.2: "In SF-MD, we additionally introduce auxiliary heads").
SF_MD = ColumnRun("SF-MD", "sf_md")
SF_MD_MWAM = ColumnRun("SF-MD +MWAM", "sf_md", "hybrid", {"aux_heads": True})
# MMANet: its own method (its schedule, lr / 10 at epochs 16, 33, 50 by Sec. A.3, comes with the paper preset's
# schedule preset); +MWAM edits the branch gradients without auxiliary heads (Sec. 5.2).
MMANET = ColumnRun("MMANet", "mmanet", method="mmanet")
MMANET_MWAM = MMANET.with_changes("MMANet +MWAM", mwam="grad")
# Extensions ``sde`` (no paper numbers): SDE as a plug-in on a column's host -- its feature branches enhanced, the
# dual-domain loss added -- alone and with MWAM, for every host the paper names (Tables 2, 3, 4 and 12).
_SDE = {"sde": {"enabled": True}}


def sde_column(column: ColumnRun, name: str) -> ColumnRun:
    """``column`` with SDE on (extension ``sde``), named ``name``."""
    return dataclasses.replace(column.with_changes(name, **_SDE), extension="sde")


# Table 4: SF-MD's branch embeddings; MMANet's (the student's per-modality branches; the teacher never has SDE).
SF_MD_SDE = sde_column(SF_MD, "SF-MD +SDE")
SF_MD_MWAM_SDE = sde_column(SF_MD_MWAM, "SF-MD +MWAM +SDE")
MMANET_SDE = sde_column(MMANET, "MMANet +SDE")
MMANET_MWAM_SDE = sde_column(MMANET_MWAM, "MMANet +MWAM +SDE")
# Extension ``resnet18`` of Table 4 (no paper numbers; the worked example of docs/architecture.md): the balancing
# literature's host, one ResNet-18 per modality with concatenation, on RGB + Depth -- a two-modality column, drawn in
# a block of its own -- plain and with fixed gradient weights that halve Depth's (CASIA-SURF's dominant modality,
# Table 1), the static counterpart of MWAM's K.
_RGB_DEPTH = ("rgb", "depth")
RESNET18_CONCAT = ColumnRun(
    "ResNet-18 concat",
    "resnet18_concat",
    host_options={"modalities": list(_RGB_DEPTH)},
    run={"data": {"modalities": list(_RGB_DEPTH)}},
    extension="resnet18",
)
RESNET18_CONCAT_SCALED = RESNET18_CONCAT.with_changes(
    "ResNet-18 concat +Depth grad x0.5",
    plugins=[{"name": "modality_gradient_scale", "options": {"scales": {"depth": 0.5}}}],
)

# Extension of Table 4 (no paper numbers): each column as the authors' released code trains it -- the ``released``
# schedule preset (epoch 0 skipped; SF-MD drops at 17, 34, 51; MMANet: lr 0 in epoch 1, warm-up in epochs 2-5,
# drops at 22, 39, 56; the teacher SF's), and MWAM with the released code's weighting (MWAMConfig.released_code()).
# The MMANet auxiliary loss, the checkpoint selection and fp32 are the paper preset's already (docs/training.md).
RELEASED_RUN = {"schedule": {"preset": "released"}}


def _released_mwam_options() -> dict[str, Any]:
    """What ``MWAMConfig.released_code()`` changes in the paper's MWAM defaults (soft start, T over the bank,
    gamma 1, lambda 10)."""
    from mwam.config import MWAMConfig

    paper, released = MWAMConfig().to_dict(), MWAMConfig.released_code().to_dict()
    return {k: v for k, v in released.items() if v != paper[k] and k != "intervention"}


RELEASED_MWAM = _released_mwam_options()


def released_column(column: ColumnRun) -> ColumnRun:
    """``column`` as the authors' released code trains it (extension ``released``)."""
    run = deep_merge(column.run, RELEASED_RUN)
    if column.mwam not in ("none", "off"):
        run = deep_merge(run, {"mwam": {"options": RELEASED_MWAM}})
    return dataclasses.replace(column, column=f"{column.column} [released]", run=run, extension="released")


# Table 10: for batch sizes 4 and 1 the paper sets alpha=1.5, beta=1, gamma=1, lambda=4 (Sec. A.10).
SMALL_BATCH_WEIGHTS = {"alpha": 1.5, "beta": 1.0, "gamma": 1.0, "lam": 4.0}
# Table 8's rows: the FRM rule of each column (Eq. 3, 4, 27, 28; Eq. 28 with omega = 0.9, MWAM's default).
FRM_RULE_COLUMNS = {
    "w/o High-Freq.": "low_l1",
    "w/ High-Freq.": "ratio",
    "Direct Sum": "sum",
    "Weighted Sum": "weighted_sum",
}
WINDOWS = (1, 2, 4, 6)
BATCH_SIZES = (64, 16, 4, 1)


TABLE4_PAPER_COLUMNS = (SF_MD, MMANET, SF_MD_MWAM, MMANET_MWAM)


def _weight_fn_columns() -> tuple[ColumnRun, ...]:
    """Table 9: MMANet + MWAM per (alpha, beta, gamma, lambda) setting; the column is the setting's label."""
    from reproduce.tables.paper_data import load_paper_table

    return tuple(MMANET_MWAM.with_changes(s.label, mwam_options=dict(s.values)) for s in load_paper_table(9).settings)


def _batch_size_columns() -> tuple[ColumnRun, ...]:
    out = []
    for size in BATCH_SIZES:
        out.append(MMANET.with_changes(f"bs={size} w/o MWAM", train={"batch_size": size}))
        weights = {"mwam_options": dict(SMALL_BATCH_WEIGHTS)} if size <= 4 else {}
        out.append(MMANET_MWAM.with_changes(f"bs={size} w/ MWAM", train={"batch_size": size}, **weights))
    return tuple(out)


# Table 2 (BraTS2020, whole-tumour Dice): RFNet, mmFormer and GSS with and without MWAM (gradient editing of their
# per-modality branches, Sec. 5.1's weight function 1.5, 1, 6, 0.7 = MWAM's defaults). mmFormer's token grid
# follows the crop (P = crop / 16: 5 at the paper's 80^3; the synthetic presets set it); its 1000 epochs and weight
# decay (A.3) come with the paper preset's ``host_runs``. GSS is RFNet trained by the GSS method: the last of its
# stages (5 in the paper preset), each a dependency run, the first starting from the RFNet column's run.
RFNET = ColumnRun("RFNet", "rfnet")
RFNET_MWAM = RFNET.with_changes("RFNet +MWAM", mwam="grad")
MMFORMER = ColumnRun("mmFormer", "mmformer")
MMFORMER_MWAM = MMFORMER.with_changes("mmFormer +MWAM", mwam="grad")
GSS = ColumnRun("GSS", "rfnet", method="gss")
GSS_MWAM = GSS.with_changes("GSS +MWAM", mwam="grad")
# Extension of Table 2 (no paper numbers): SDE on the encoders' deepest level of RFNet, mmFormer and GSS (RFNet's
# encoders in every GSS stage; its initial RFNet run has none), alone and with MWAM.
RFNET_SDE = sde_column(RFNET, "RFNet +SDE")
RFNET_MWAM_SDE = sde_column(RFNET_MWAM, "RFNet +MWAM +SDE")
MMFORMER_SDE = sde_column(MMFORMER, "mmFormer +SDE")
MMFORMER_MWAM_SDE = sde_column(MMFORMER_MWAM, "mmFormer +MWAM +SDE")
GSS_SDE = sde_column(GSS, "GSS +SDE")
GSS_MWAM_SDE = sde_column(GSS_MWAM, "GSS +MWAM +SDE")
# Extension ``balancing`` of Table 2 (no paper numbers; BalanceBenchmark is classification only): OGM-GE and AGM on
# RFNet beside MWAM, scored per voxel on its separate decoders' predictions. Four modalities: BalanceBenchmark's
# multi-modality rules (``variant: balancebenchmark``; the official ones are two-modality), AGM's clip read on the
# fused decoder's last layer (docs/balancing.md). OGM-GE modulates throughout the run, as AGM does (BalanceBenchmark's
# window, epochs 10-80, is for its ~100-epoch runs: RFNet trains 300, the synthetic presets 2 or 6).
WHOLE_RUN = 1_000_000
_OGM_WHOLE_RUN = {"variant": "balancebenchmark", "modulation_start": 0, "modulation_end": WHOLE_RUN}
RFNET_OGM_GE = dataclasses.replace(
    RFNET.with_changes(
        "RFNet +OGM-GE",
        plugins=[{"name": "ogm_ge", "options": _OGM_WHOLE_RUN}],
    ),
    extension="balancing",
)
RFNET_AGM = dataclasses.replace(
    RFNET.with_changes(
        "RFNet +AGM",
        plugins=[{"name": "agm", "options": {"variant": "balancebenchmark", "head": "decoder_fuse.seg_layer"}}],
    ),
    extension="balancing",
)
TABLE2_COLUMNS = (
    RFNET,
    RFNET_MWAM,
    MMFORMER,
    MMFORMER_MWAM,
    GSS,
    GSS_MWAM,
    RFNET_SDE,
    RFNET_MWAM_SDE,
    MMFORMER_SDE,
    MMFORMER_MWAM_SDE,
    GSS_SDE,
    GSS_MWAM_SDE,
    RFNET_OGM_GE,
    RFNET_AGM,
)


# Table 3 (NYU-Depth V2, MIoU): ESANet-MD (ESANet-R50 with MMANet's modality-access factors) and MMANet-seg (its
# method, from the full-modality ESANet teacher), each with and without MWAM's gradient editing of the two encoders.
ESANET_MD = ColumnRun("ESANet-MD", "esanet_md")
ESANET_MD_MWAM = ESANET_MD.with_changes("ESANet-MD +MWAM", mwam="grad")
MMANET_SEG = ColumnRun("MMANet", "mmanet_seg", method="mmanet_seg")
MMANET_SEG_MWAM = MMANET_SEG.with_changes("MMANet +MWAM", mwam="grad")
# Extension of Table 3 (no paper numbers): SDE on each encoder's layer4 of ESANet-MD and of MMANet-seg's student (its
# ESANet teacher never has SDE), alone and with MWAM.
ESANET_MD_SDE = sde_column(ESANET_MD, "ESANet-MD +SDE")
ESANET_MD_MWAM_SDE = sde_column(ESANET_MD_MWAM, "ESANet-MD +MWAM +SDE")
MMANET_SEG_SDE = sde_column(MMANET_SEG, "MMANet +SDE")
MMANET_SEG_MWAM_SDE = sde_column(MMANET_SEG_MWAM, "MMANet +MWAM +SDE")
# Extension ``per_element`` of Table 3 (issue #25): RGB has 3 channels and depth 1, so Eq. 4's sum gives RGB three
# times the FRM on like content; MWAM with the per-element FRM (docs/mwam.md, section 6) beside the paper's sum.
ESANET_MD_MWAM_PER_ELEMENT = dataclasses.replace(
    ESANET_MD_MWAM.with_changes("ESANet-MD +MWAM (per-element FRM)", mwam_options={"frm_normalisation": "per_element"}),
    extension="per_element",
)
MMANET_SEG_MWAM_PER_ELEMENT = dataclasses.replace(
    MMANET_SEG_MWAM.with_changes("MMANet +MWAM (per-element FRM)", mwam_options={"frm_normalisation": "per_element"}),
    extension="per_element",
)
TABLE3_COLUMNS = (
    ESANET_MD,
    MMANET_SEG,
    ESANET_MD_MWAM,
    MMANET_SEG_MWAM,
    ESANET_MD_SDE,
    ESANET_MD_MWAM_SDE,
    MMANET_SEG_SDE,
    MMANET_SEG_MWAM_SDE,
    ESANET_MD_MWAM_PER_ELEMENT,
    MMANET_SEG_MWAM_PER_ELEMENT,
)

# Table 12 (A.12): the two-stream YOLOv8n on DroneVehicle, trained by ultralytics (method "ultralytics", whose
# options the data set's presets set: the fork's close_mosaic 0 ...). The baseline measures MWAM's FRM / T / K
# without intervening, as every baseline column of this repository.
T_YOLO = ColumnRun("T-yolov8n", "two_stream_yolov8n", method="ultralytics")
T_YOLO_MWAM = ColumnRun("T-yolov8n +MWAM", "two_stream_yolov8n", "grad", method="ultralytics")
# Extension of Table 12 (no paper numbers): SDE on the RGB and IR backbones, its loss added to ultralytics' own.
T_YOLO_SDE = sde_column(T_YOLO, "T-yolov8n +SDE")
T_YOLO_MWAM_SDE = sde_column(T_YOLO_MWAM, "T-yolov8n +MWAM +SDE")
# Extension ``pc2f_mpf`` of Table 12: the network the fork's train.py trains (PC2f_MPF_yolov8n.yaml: FasterNet-style
# C2f blocks in the IR stream, 3,841,967 parameters), beside the plain-add model of its ADDyolov8n.yaml that the paper
# columns use (docs/training.md, differences table).
T_YOLO_PC2F = dataclasses.replace(
    ColumnRun("T-yolov8n (PC2f-MPF)", "two_stream_yolov8n_pc2f_mpf", method="ultralytics"), extension="pc2f_mpf"
)
T_YOLO_PC2F_MWAM = dataclasses.replace(
    ColumnRun("T-yolov8n (PC2f-MPF) +MWAM", "two_stream_yolov8n_pc2f_mpf", "grad", method="ultralytics"),
    extension="pc2f_mpf",
)
TABLE12_FIGURES = "reproduce.yolo.figures:table12_figures"
#: Table 3's per-class IoU per column and subset (``<stem>_classes.md``).
TABLE3_FIGURES = "reproduce.tables.class_iou:table3_class_iou"


# Tables 13, 14 and 17 (A.13, A.15): "vanilla ResNet18 + concat" on pairs of CASIA-SURF's modalities, each
# balancing method a plug-in on that host with its authors' defaults, MWAM the gradient intervention on its two
# encoders. The paper states no settings for these tables: the columns take the preset's (A.3's CASIA-SURF settings
# under the paper preset: batch 64, SGD lr 1e-3, 100 epochs, 112 x 112; docs/balancing.md). The MWAM columns are the
# same runs in Tables 13, 14 and 17 (one training each). Extensions: ``baseline`` (the host alone) and ``sum_fusion``
# (LFM, MSES, MSLR on the sum-fusion model their authors' code uses; the paper says concat).
SURF_PAIRS: tuple[tuple[str, str], ...] = (("rgb", "depth"), ("rgb", "ir"), ("depth", "ir"))
_PRINTED = {"rgb": "Rgb", "depth": "Depth", "ir": "Ir"}  # CASIA-SURF's printed names (its SubsetOrder header)


def pair_label(pair: tuple[str, ...]) -> str:
    """``("rgb", "depth")`` -> ``"Rgb/Depth"``, the suffix of the paper's column names in Tables 13 and 14."""
    return "/".join(_PRINTED[m] for m in pair)


def balancing_column(
    name: str,
    pair: tuple[str, ...],
    plugin: str | None = None,
    mwam: str = "none",
    host: str = "resnet18_concat",
    host_options: Mapping[str, Any] | None = None,
    extension: str | None = None,
    suffix: bool = True,
) -> ColumnRun:
    """A column of Tables 13 / 14 / 17: ``host`` on the modalities ``pair`` with the balancing ``plugin`` (its
    defaults) or MWAM's ``mwam`` intervention; named ``"<name> (<pair>)"`` (``suffix``) or ``name``."""
    run: dict[str, Any] = {"data": {"modalities": list(pair)}}
    if plugin is not None:
        run["plugins"] = [{"name": plugin}]
    return ColumnRun(
        f"{name} ({pair_label(pair)})" if suffix else name,
        host,
        mwam,
        host_options={"modalities": list(pair), **(host_options or {})},
        run=run,
        extension=extension,
    )


def _balancing_columns(methods: Mapping[str, str], sum_fusion: tuple[str, ...]) -> tuple[ColumnRun, ...]:
    """Per pair block: each method's column, MWAM's, then the extensions (baseline; sum fusion)."""
    out: list[ColumnRun] = []
    for pair in SURF_PAIRS:
        out.extend(balancing_column(name, pair, plugin) for name, plugin in methods.items())
        out.append(balancing_column("MWAM", pair, mwam="grad"))
    for pair in SURF_PAIRS:
        out.append(balancing_column("ResNet-18 concat", pair, extension="baseline"))
        for name in sum_fusion:
            summed = balancing_column(f"{name} [sum]", pair, methods[name], host_options={"fusion": "sum"})
            out.append(dataclasses.replace(summed, extension="sum_fusion"))
    return tuple(out)


TABLE13_COLUMNS = _balancing_columns({"OGM-GE": "ogm_ge", "LFM": "lfm", "AGM": "agm"}, sum_fusion=("LFM",))
TABLE14_COLUMNS = _balancing_columns({"MSES": "mses", "MSLR": "mslr"}, sum_fusion=("MSES", "MSLR"))
# Table 17: CRMT-JT (its orthogonal, per-class-scaled head: host resnet18_crmt; the two-step training: plug-in crmt)
# and MWAM on RGB + Depth; COM (no public code) and DCP (CLIP prompts for image + text only) are the paper's numbers
# only (the table's notes say why).
TABLE17_COLUMNS = (
    balancing_column("CRMT-JT", ("rgb", "depth"), "crmt", host="resnet18_crmt", suffix=False),
    balancing_column("MWAM", ("rgb", "depth"), mwam="grad", suffix=False),
    balancing_column("ResNet-18 concat", ("rgb", "depth"), extension="baseline"),
)

# Table 11 (A.11): UCF-101 video + optical flow on the ResNet-18 concat host with a time axis
# (``resnet18_concat_video``, BalanceBenchmark's model): the host alone, MWAM (gradient editing of the two encoders),
# OGM-GE and LFM with their authors' defaults. The paper says only "default configuration": the presets train
# BalanceBenchmark's UCF-101 settings (AdamW, weight decay 0.01, lr 1e-3, StepLR(10, 0.1), batch 32, 30 epochs; the
# one public code with UCF-101 RGB + flow, OGM and LFM). Extensions: ``a3`` -- the same four columns under MWAM's
# Sec. A.3 classification settings (SGD lr 1e-3, momentum 0.9, weight decay 5e-4, /10 every 30 epochs, batch 64,
# 100 epochs, 112 x 112); ``sum_fusion`` -- LFM on the sum-fusion model of its authors' code (the paper says concat).
VIDEO_HOST = "resnet18_concat_video"
A3_CLASSIFICATION: dict[str, Any] = {
    "data": {"options": {"size": 112}},
    "train": {"epochs": 100, "batch_size": 64},
    "optim": {"name": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False},
    "schedule": {"name": "step", "milestones": [30, 60, 90], "gamma": 0.1},
}


def _table11_columns() -> tuple[ColumnRun, ...]:
    paper = (
        ColumnRun("Baseline", VIDEO_HOST),
        ColumnRun("MWAM", VIDEO_HOST, "grad"),
        ColumnRun("OGM-GE", VIDEO_HOST, run={"plugins": [{"name": "ogm_ge"}]}),
        ColumnRun("LFM", VIDEO_HOST, run={"plugins": [{"name": "lfm"}]}),
    )
    a3 = tuple(
        dataclasses.replace(c, column=f"{c.column} (A.3)", run=merge_settings(c.run, A3_CLASSIFICATION), extension="a3")
        for c in paper
    )
    summed = dataclasses.replace(paper[3], column="LFM [sum]", host_options={"fusion": "sum"}, extension="sum_fusion")
    return (*paper, *a3, summed)


TABLE11_COLUMNS = _table11_columns()

# Table 1 (Sec. 1): the multi-modal model (trained on complete data, evaluated on every subset) against one model
# per subset trained and evaluated on that subset only (Uni-modal; its full row is the multi-modal model, as the
# paper prints 98.12 in both). The paper names no host: SF, with the authors' recipe for a model of one subset --
# SURF_Baseline with a fixed modality mask (``fixed_modalities``; more-host-facts section 4). RFNet's column is the
# paper's numbers only (no public CASIA-SURF RFNet); FRM is computed from the training data (Eq. 4 summed).
SURF_PARTIAL_SUBSETS: tuple[tuple[str, ...], ...] = (
    ("rgb",),
    ("depth",),
    ("ir",),
    ("rgb", "depth"),
    ("rgb", "ir"),
    ("depth", "ir"),
)  # CASIA-SURF's paper rows without the full set (tests/test_table_layout.py checks them against its SubsetOrder)
SURF_FULL = ("rgb", "depth", "ir")
MULTI_MODAL = ColumnRun("Multi-modal", "sf")
TABLE1_COLUMNS = (
    MULTI_MODAL,
    *(
        ColumnRun(
            f"Uni-modal ({'+'.join(_PRINTED[m] for m in subset)})",
            "sf",
            host_options={"fixed_modalities": list(subset)},
            part_of="Uni-modal",
            rows=(subset,),
        )
        for subset in SURF_PARTIAL_SUBSETS
    ),
    dataclasses.replace(MULTI_MODAL, column="Uni-modal (Rgb+Depth+Ir)", part_of="Uni-modal", rows=(SURF_FULL,)),
)
TABLE1_FRM = "reproduce.tables.frm_column:frm_records"

# Fig. 1 (Sec. 3.1, A.5): the multi-modal model (SF, as Table 1) trained on frequency-filtered CASIA-SURF -- raw,
# low-pass and high-pass with the windows A.5 names (15, 30) -- with its validation loss per epoch (plug-in
# ``validation_loss``) for the figure's three panels.
FIGURE1_WINDOWS = (15, 30)
_VAL_LOSS = [{"name": "validation_loss"}]


def figure1_filter(kind: str, size: int) -> dict[str, Any]:
    """A Fig. 1 filter (``datasets.frequency_filter``). The high-pass image (zero mean) is rescaled to 0..255
    (``restore: minmax``): clipping it would keep only its positive half, a nearly black image (the paper does not
    say how its filtered images were stored; docs/balancing.md). The low-pass image is rounded and clipped."""
    return {"kind": kind, "size": size, **({"restore": "minmax"} if kind == "high" else {})}


def _filtered(kind: str, size: int) -> ColumnRun:
    return ColumnRun(
        f"{kind}-pass {size}",
        "sf",
        run={"data": {"options": {"filter": figure1_filter(kind, size)}}, "plugins": _VAL_LOSS},
    )


FIGURE1_COLUMNS = (
    ColumnRun("Raw dataset", "sf", run={"plugins": _VAL_LOSS}),
    *(_filtered(kind, size) for kind in ("low", "high") for size in FIGURE1_WINDOWS),
)


def _build_table_runs() -> dict[int, TableRuns]:
    surf = "casia_surf"
    return {
        1: TableRuns(1, surf, TABLE1_COLUMNS, computed=TABLE1_FRM),
        2: TableRuns(2, "brats2020", TABLE2_COLUMNS),
        3: TableRuns(3, "nyuv2", TABLE3_COLUMNS, figures=TABLE3_FIGURES),
        4: TableRuns(
            4,
            surf,
            (
                *TABLE4_PAPER_COLUMNS,
                SF_MD_SDE,
                SF_MD_MWAM_SDE,
                MMANET_SDE,
                MMANET_MWAM_SDE,
                RESNET18_CONCAT,
                RESNET18_CONCAT_SCALED,
                *(released_column(c) for c in TABLE4_PAPER_COLUMNS),
            ),
        ),
        5: TableRuns(
            5,
            surf,
            (
                ColumnRun("w/o MWAM", "sf_md"),
                ColumnRun("Loss", "sf_md", "loss", {"aux_heads": True}),
                ColumnRun("Gradient", "sf_md", "grad"),
                ColumnRun("Hybrid", "sf_md", "hybrid", {"aux_heads": True}),
            ),
        ),
        7: TableRuns(
            7,
            surf,
            (
                MMANET.with_changes("w/o MWAM"),
                *(MMANET_MWAM.with_changes(f"q={q}", mwam_options={"window": q}) for q in WINDOWS),
            ),
        ),
        8: TableRuns(
            8,
            surf,
            (
                MMANET.with_changes("w/o MWAM"),
                *(
                    MMANET_MWAM.with_changes(name, mwam_options={"rule": rule})
                    for name, rule in FRM_RULE_COLUMNS.items()
                ),
            ),
        ),
        9: TableRuns(9, surf, _weight_fn_columns()),
        10: TableRuns(10, surf, _batch_size_columns()),
        11: TableRuns(11, "ucf101", TABLE11_COLUMNS),
        12: TableRuns(
            12,
            "dronevehicle",
            (T_YOLO, T_YOLO_MWAM, T_YOLO_SDE, T_YOLO_MWAM_SDE, T_YOLO_PC2F, T_YOLO_PC2F_MWAM),
            figures=TABLE12_FIGURES,
        ),
        13: TableRuns(13, surf, TABLE13_COLUMNS),
        14: TableRuns(14, surf, TABLE14_COLUMNS),
        16: TableRuns(16, surf, (SF_MD, MMANET, SF_MD_MWAM, MMANET_MWAM)),
        17: TableRuns(17, surf, TABLE17_COLUMNS),
    }


TABLE_RUNS: dict[int, TableRuns] = _build_table_runs()
#: The runs of the paper's figures that this repository trains (``python -m reproduce figure N``).
FIGURE_RUNS: dict[int, TableRuns] = {1: TableRuns(None, "casia_surf", FIGURE1_COLUMNS)}
#: The CASIA-SURF ablations ``make ablations-smoke`` runs (every trainable table except the main Table 4).
ABLATION_TABLES = (5, 7, 8, 9, 10, 16)


#: Tables whose columns are methods this repository does not train (their numbers are the paper's only).
PAPER_ONLY = {15: "HeMIS, Robust Seg, M3AE, LS3M and A2FSeg (Table 2 has the trainable BraTS2020 columns)"}


def table_runs(number: int) -> TableRuns:
    if number in PAPER_ONLY:
        raise ValueError(
            f"Table {number} is paper-only: this repository does not train {PAPER_ONLY[number]}; "
            f"`python -m reproduce paper {number}` (make table{number}) renders the paper's numbers"
        )
    if number not in TABLE_RUNS:
        raise ValueError(
            f"this repository cannot train the columns of Table {number} yet; it can: "
            f"{sorted(TABLE_RUNS)} (python -m reproduce paper {number} shows the paper's numbers)"
        )
    return TABLE_RUNS[number]
