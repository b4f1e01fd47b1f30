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
    """

    column: str
    host: str
    mwam: str = "none"
    host_options: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    method: str = "standard"
    method_options: dict[str, Any] = field(default_factory=dict)
    extension: str | None = None

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
    is rendered (Table 12: Fig. 6 and Fig. 7)."""

    table: int
    dataset: str
    columns: tuple[ColumnRun, ...]
    figures: str | None = None

    def column(self, name: str) -> ColumnRun:
        for c in self.columns:
            if c.column == name:
                return c
        raise ValueError(
            f"Table {self.table} has no trainable column {name!r}; it has {[c.column for c in self.columns]}"
        )

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
        return tuple(self.column(name) for name in columns)

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
TABLE3_COLUMNS = (
    ESANET_MD,
    MMANET_SEG,
    ESANET_MD_MWAM,
    MMANET_SEG_MWAM,
    ESANET_MD_SDE,
    ESANET_MD_MWAM_SDE,
    MMANET_SEG_SDE,
    MMANET_SEG_MWAM_SDE,
)

# Table 12 (A.12): the two-stream YOLOv8n on DroneVehicle, trained by ultralytics (method "ultralytics", whose
# options the data set's presets set: the fork's close_mosaic 0 ...). The baseline measures MWAM's FRM / T / K
# without intervening, as every baseline column of this repository.
T_YOLO = ColumnRun("T-yolov8n", "two_stream_yolov8n", method="ultralytics")
T_YOLO_MWAM = ColumnRun("T-yolov8n +MWAM", "two_stream_yolov8n", "grad", method="ultralytics")
# Extension of Table 12 (no paper numbers): SDE on the RGB and IR backbones, its loss added to ultralytics' own.
T_YOLO_SDE = sde_column(T_YOLO, "T-yolov8n +SDE")
T_YOLO_MWAM_SDE = sde_column(T_YOLO_MWAM, "T-yolov8n +MWAM +SDE")
TABLE12_FIGURES = "reproduce.yolo.figures:table12_figures"


def _build_table_runs() -> dict[int, TableRuns]:
    surf = "casia_surf"
    return {
        2: TableRuns(2, "brats2020", TABLE2_COLUMNS),
        3: TableRuns(3, "nyuv2", TABLE3_COLUMNS),
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
        12: TableRuns(
            12, "dronevehicle", (T_YOLO, T_YOLO_MWAM, T_YOLO_SDE, T_YOLO_MWAM_SDE), figures=TABLE12_FIGURES
        ),
        16: TableRuns(16, surf, (SF_MD, MMANET, SF_MD_MWAM, MMANET_MWAM)),
    }


TABLE_RUNS: dict[int, TableRuns] = _build_table_runs()
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
