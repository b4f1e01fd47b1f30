"""MMANet-seg's options (torch-free: the run configuration and the planner read them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from reproduce.methods.mmanet.options import check_teacher_options

TEACHER_BATCHNORM = ("batch", "running")
TEACHER_SELECTIONS = ("last", "best_test", "epoch:N")
_EPOCH = re.compile(r"epoch:(0|[1-9][0-9]*)")


@dataclass(frozen=True)
class MMANetSegOptions:
    """Options of MMANet-seg (``method.options``); defaults are the authors' NYUv2 settings
    (``train_missing_mmanet.py``, ``train_nyuv2_mmanet.sh``; A.3).

    teacher_host / teacher_host_options / teacher_run / teacher_seed: the frozen full-modality teacher's run (as in
        the classification method). teacher_batchnorm: ``batch`` (the authors' teacher, never put in eval mode) or
        ``running``.
    teacher_select: which of its epochs' weights the teacher run keeps (its ``eval.select``, so the teacher stays a
        run of its own in the registry): ``last`` (its last epoch); ``best_test`` -- the authors' saving rule
        (``train_missing_amp.py``: from epoch ``teacher_select_after + 1`` = 230 on, a checkpoint whenever the test
        split's MIoU beats the best so far; their student loads ``ckpt_epoch_245.pth``), i.e. ``eval.select:
        best_val`` on the ``test`` split, metric ``miou``: test-set selection; ``epoch:N`` (e.g. ``epoch:245``, the
        epoch the authors' run picked). The paper preset of NYUv2 sets ``best_test`` (follows the code).
    teacher_select_after: ``best_test`` picks among the epochs after it (229: the authors validate from epoch 230).
    search_epochs, begin_epoch: the search after epochs 6-9, the weak combination fixed after epoch 10, the extra
        terms from epoch 11. search_split: where the search measures MIoU (the authors: the test split).
    lambda_distill, lambda_auxiliary: (alpha, beta) = (4.0, 0.2). grid: MAD's pooled size (30, 40).
    """

    teacher_host: str = "esanet"
    teacher_host_options: dict[str, Any] = field(default_factory=dict)
    teacher_run: dict[str, Any] = field(default_factory=dict)
    teacher_seed: int = 0
    teacher_batchnorm: str = "batch"
    teacher_select: str = "last"
    teacher_select_after: int = 229
    search_epochs: tuple[int, ...] = (6, 7, 8, 9)
    begin_epoch: int = 10
    search_split: str = "test"
    lambda_distill: float = 4.0
    lambda_auxiliary: float = 0.2
    grid: tuple[int, int] = (30, 40)

    def __post_init__(self) -> None:
        if self.teacher_batchnorm not in TEACHER_BATCHNORM:
            raise ValueError(f"teacher_batchnorm must be one of {', '.join(TEACHER_BATCHNORM)}")
        if self.teacher_select not in TEACHER_SELECTIONS[:-1] and not (
            isinstance(self.teacher_select, str) and _EPOCH.fullmatch(self.teacher_select)
        ):
            raise ValueError(f"teacher_select must be last, best_test or epoch:N, got {self.teacher_select!r}")
        after = self.teacher_select_after
        if not isinstance(after, int) or isinstance(after, bool) or after < -1:
            raise ValueError(f"teacher_select_after must be an integer >= -1, got {after!r}")
        object.__setattr__(self, "search_epochs", tuple(int(e) for e in self.search_epochs))
        object.__setattr__(self, "grid", tuple(int(g) for g in self.grid))
        if not self.search_epochs or list(self.search_epochs) != sorted(set(self.search_epochs)):
            raise ValueError(f"search_epochs must be increasing, distinct and not empty, got {self.search_epochs}")
        if min(self.search_epochs) < 0 or max(self.search_epochs) > self.begin_epoch:
            raise ValueError(f"search_epochs {self.search_epochs} must lie in [0, begin_epoch={self.begin_epoch}]")
        if len(self.grid) != 2 or min(self.grid) < 1:
            raise ValueError(f"grid must be two positive sizes, got {self.grid}")
        check_teacher_options(self)

    def teacher_eval(self) -> dict[str, Any]:
        """The teacher run's ``eval.select`` settings for ``teacher_select`` (over the student's ``eval``)."""
        if self.teacher_select != "best_test":
            return {"select": self.teacher_select}
        return {
            "select": "best_val",
            "select_split": "test",
            "select_metric": "miou",
            "select_mode": "max",
            "select_after": self.teacher_select_after,
            "select_inputs": "full",
        }
