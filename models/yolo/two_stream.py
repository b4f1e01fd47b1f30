"""The two-stream YOLOv8n of Table 12 (T-yolov8n): two YOLOv8n backbones, element-wise sum at P3 / P4 / P5, the
standard YOLOv8n neck and head, as an ultralytics ``DetectionModel`` (so ultralytics' trainer, loss, validator,
EMA, checkpoints and ``model.val()`` work unchanged).

The public two-stream code (mujianyu/TwoStream_Yolov8, a fork of ultralytics 8.1) builds the same network from
``ADDyolov8n.yaml``: RGB and IR copies of YOLOv8n layers 0-9 that run independently, ``ADD`` blocks summing them
after the P3 C2f (layer 4 of YOLOv8n), the P4 C2f (6) and the SPPF (9), then YOLOv8n's PAN head and ``Detect``.
Here the two backbones are named sub-modules, ``rgb_backbone`` (0-9) and ``ir_backbone`` (a copy), and ``model``
holds the head (YOLOv8n layers 10-22, keeping their layer numbers), so MWAM rescales ``rgb_backbone.*`` /
``ir_backbone.*`` by module and every ultralytics access to ``model[-1]`` (``Detect``) is unchanged.

Input: one 6-channel image per pair, channels 0-2 the RGB image and 3-5 the IR image (both in cv2's BGR order,
as ultralytics loads them; ``datasets/dronevehicle/loader.py``).

Missing modalities (evaluation of the RGB / IR rows of Table 12): neither the fork nor the paper says how a
modality is removed -- the fork has no missing-modality evaluation at all. The default, ``absent="features"``,
zeroes the absent stream's features at the three fusion points (as RFNet / mmFormer / ESANet-MD zero features),
which for a sum fusion is the present stream's features alone: the absent backbone is not run.
``absent="input"`` instead feeds the absent stream an all-zero image (a black frame), whose features are not zero
(biases, BatchNorm shifts). Select the subset with :meth:`TwoStreamDetectionModel.use_modalities`.

MWAM and SDE (the training plug-ins of ``reproduce.methods``, driven by ``reproduce/yolo/trainer.py``): ``branches()``
are the two backbones (MWAM rescales their gradients), ``feature_branches()`` their last layers, the SPPF (SDE enhances
their outputs), and :meth:`TwoStreamDetectionModel.add_training_loss` adds a term (SDE's dual-domain loss) to
ultralytics' training loss in ultralytics' scale (:meth:`TwoStreamDetectionModel.loss`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from copy import deepcopy
from typing import Any

import torch
from torch import nn

from .offline import ultralytics_offline

ultralytics_offline()  # before ultralytics' first import where this module is the first to import it

from ultralytics.nn.modules import Detect  # noqa: E402
from ultralytics.nn.tasks import DetectionModel, _initialize_yolo_model  # noqa: E402

MODALITIES: tuple[str, ...] = ("rgb", "ir")
#: YOLOv8n layers whose outputs the head reads (P3 after the C2f, P4 after the C2f, P5 after the SPPF).
FUSION_LAYERS: tuple[int, ...] = (4, 6, 9)
BACKBONE_LAYERS = 10  # YOLOv8n layers 0-9
ABSENT_RULES = ("features", "input")
CHANNELS_PER_STREAM = 3


class TwoStreamDetectionModel(DetectionModel):
    """Two YOLOv8 backbones (``rgb_backbone``, ``ir_backbone``) summed at P3 / P4 / P5, one YOLOv8 head (``model``).

    ``cfg``: an ultralytics model yaml of the YOLOv8 family (default ``yolov8n.yaml``); ``ch`` must be 6 (RGB + IR);
    ``nc``: classes; ``absent``: how a missing modality is removed (module docstring).

    The Host-like contract of the training plug-ins: ``modalities``, ``branches()`` (MWAM: each backbone, layers
    0-9, whose parameters it rescales) and ``feature_branches()`` (SDE: each backbone's last layer, the SPPF, layer
    9). The SPPF is the module whose output is the modality's backbone output: the deepest map (P5, 256 x H/32 x
    W/32 for YOLOv8n) that the stream contributes to the P5 sum, called exactly once per forward pass (the backbones
    themselves are never called as a whole -- :meth:`_backbone` walks their layers to keep P3 / P4 -- so a hook on
    them would never fire). SDE enhances that P5 map before the fusion, as it enhances RFNet's deepest encoder level
    or ESANet's ``layer4``; the P3 / P4 taps (layers 4 and 6) pass as they are. Its gradient reaches every layer of
    the backbone through the SPPF.
    """

    modalities: tuple[str, ...] = MODALITIES

    def __init__(
        self,
        cfg: str | dict = "yolov8n.yaml",
        ch: int = 6,
        nc: int | None = None,
        verbose: bool = True,
        absent: str = "features",
    ) -> None:
        if ch != 2 * CHANNELS_PER_STREAM:
            raise ValueError(f"the two-stream model reads 6-channel RGB+IR images, got ch={ch}")
        if absent not in ABSENT_RULES:
            raise ValueError(f"absent must be one of {ABSENT_RULES}, got {absent!r}")
        nn.Module.__init__(self)
        _initialize_yolo_model(self, cfg, CHANNELS_PER_STREAM, nc, verbose=False)  # one 3-channel YOLOv8
        layers = list(self.model)
        if len(layers) <= BACKBONE_LAYERS or not isinstance(layers[-1], Detect):
            raise ValueError(f"{cfg!r} is not a YOLOv8-style detection yaml (backbone 0-9, Detect last)")
        for index in FUSION_LAYERS:
            if index not in self.save:
                raise ValueError(f"{cfg!r}: the head does not read layer {index}; not a YOLOv8 P3-P5 layout")
        self.rgb_backbone = nn.Sequential(*layers[:BACKBONE_LAYERS])
        self.ir_backbone = deepcopy(self.rgb_backbone)
        self.model = nn.Sequential(*layers[BACKBONE_LAYERS:])
        self.yaml["channels"] = ch  # what ultralytics' AutoBackend warms up with and checkpoints record
        self.absent = absent
        self.present: tuple[bool, bool] = (True, True)

        detect = self.model[-1]
        stride_probe = 256  # as DetectionModel: 2 x the largest stride
        detect.inplace = self.inplace
        self.eval()
        detect.training = True  # return the raw feature maps, whose sizes give the strides
        with torch.no_grad():
            output = self.forward(torch.zeros(1, ch, stride_probe, stride_probe))
        feats = output["one2many"]["feats"] if "one2many" in output else output["feats"]
        detect.stride = torch.tensor([stride_probe / f.shape[-2] for f in feats])
        self.stride = detect.stride
        self.train()
        detect.bias_init()
        from ultralytics.utils.torch_utils import initialize_weights

        initialize_weights(self)
        if verbose:
            self.info()

    # ------------------------------------------------------------------ the Host-like contract
    def branches(self) -> dict[str, nn.Module]:
        """The modality-specific modules MWAM rescales (Sec. 4): the two backbones."""
        return {"rgb": self.rgb_backbone, "ir": self.ir_backbone}

    def feature_branches(self) -> dict[str, nn.Module]:
        """The modules whose outputs SDE enhances: each backbone's SPPF (layer 9), its P5 output (class docstring)."""
        return {"rgb": self.rgb_backbone[-1], "ir": self.ir_backbone[-1]}

    # ------------------------------------------------------------------ training losses added by plug-ins
    def add_training_loss(self, name: str, term: Callable[[dict[str, Any], Any], torch.Tensor]) -> None:
        """Add ``term(batch, preds)`` -- a scalar on the scale of ultralytics' loss items (a batch mean, e.g. SDE's
        dual-domain loss) -- to the training loss (:meth:`loss`). Training only; the terms are not part of the
        model's pickled state (checkpoints, the EMA copy), so a reloaded model has none."""
        terms = self.__dict__.setdefault("_training_losses", {})
        if name in terms:
            raise ValueError(f"a training loss {name!r} is already added")
        terms[name] = term

    def remove_training_loss(self, name: str) -> None:
        self.__dict__.get("_training_losses", {}).pop(name, None)

    def loss(self, batch: dict[str, Any], preds: Any = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Ultralytics' detection loss, plus the terms of :meth:`add_training_loss` while training.

        Ultralytics' criterion returns its per-image mean terms (box, cls, dfl, gains applied) times the batch size
        B as a vector, and the detached means as the loss items; the trainer back-propagates the vector's sum. Each
        added term (a batch mean) is appended to that vector times B as well, so the total is
        ``B * (box + cls + dfl + term)``: relative to the detection loss, the term weighs what it weighs in the
        engine's ``task loss + term``. The loss items (ultralytics' progress bar, ``results.csv``, the validation
        loss) stay the detection terms; the plug-in logs its own."""
        loss, items = super().loss(batch, preds)
        terms = self.__dict__.get("_training_losses")
        if not terms or not self.training:
            return loss, items
        size = batch["img"].shape[0]
        extra = [term(batch, preds).reshape(1).to(loss.dtype) * size for term in terms.values()]
        return torch.cat([loss.reshape(-1), *extra]), items

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("_training_losses", None)  # callables of a training loop: never pickled or copied
        return state

    @contextlib.contextmanager
    def use_modalities(self, modalities: Sequence[str]) -> Iterator[None]:
        """Within the block the model sees only ``modalities`` (a non-empty subset of ``("rgb", "ir")``)."""
        unknown = [m for m in modalities if m not in MODALITIES]
        if unknown or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {list(modalities)}")
        before = self.present
        self.present = tuple(m in modalities for m in MODALITIES)  # type: ignore[assignment]
        try:
            yield
        finally:
            self.present = before

    # ------------------------------------------------------------------ forward
    def _backbone(self, backbone: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in backbone:
            x = layer(x)
            if layer.i in FUSION_LAYERS:
                outputs.append(x)
        return outputs

    def fused_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The P3 / P4 / P5 sums of the present streams for a (B, 6, H, W) batch."""
        if x.shape[1] != 2 * CHANNELS_PER_STREAM:
            raise ValueError(f"expected a (B, 6, H, W) RGB+IR batch, got shape {tuple(x.shape)}")
        rgb, ir = x[:, :CHANNELS_PER_STREAM], x[:, CHANNELS_PER_STREAM:]
        present = getattr(self, "present", (True, True))
        if not any(present):
            raise ValueError("at least one modality must be present")
        if self.absent == "input":
            rgb = rgb if present[0] else torch.zeros_like(rgb)
            ir = ir if present[1] else torch.zeros_like(ir)
            streams = [self._backbone(self.rgb_backbone, rgb), self._backbone(self.ir_backbone, ir)]
        else:  # "features": the absent stream contributes zero features, i.e. is not run
            streams = []
            if present[0]:
                streams.append(self._backbone(self.rgb_backbone, rgb))
            if present[1]:
                streams.append(self._backbone(self.ir_backbone, ir))
        if len(streams) == 1:
            return streams[0]
        return [a + b for a, b in zip(*streams, strict=True)]

    def _predict_once(self, x: torch.Tensor, profile: bool = False, embed: Sequence[int] | None = None) -> Any:
        """Both backbones, the P3 / P4 / P5 sums, then the head layers exactly as ``BaseModel._predict_once``.
        ``embed`` may name fusion layers (4, 6, 9) or head layers; ``profile`` times the head layers."""
        fused = self.fused_features(x)
        y: list[torch.Tensor | None] = [None] * BACKBONE_LAYERS
        for index, feature in zip(FUSION_LAYERS, fused, strict=True):
            y[index] = feature
        embed_set = frozenset(embed) if embed else {-1}
        embeddings = []
        for index in sorted(embed_set & set(FUSION_LAYERS)):
            embeddings.append(nn.functional.adaptive_avg_pool2d(y[index], (1, 1)).flatten(1))
        x = fused[-1]
        max_index = max(embed_set)
        if embeddings and max_index < BACKBONE_LAYERS:
            return torch.unbind(torch.cat(embeddings, 1), dim=0)
        dt: list[float] = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            if profile:
                self._profile_one_layer(m, x, dt)
            x = m(x)
            y.append(x if m.i in self.save else None)
            if m.i in embed_set:
                embeddings.append(nn.functional.adaptive_avg_pool2d(x, (1, 1)).flatten(1))
                if m.i == max_index:
                    return torch.unbind(torch.cat(embeddings, 1), dim=0)
        return x

    def fuse(self, verbose: bool = True, imgsz: int = 640) -> TwoStreamDetectionModel:
        """Fold BatchNorm into the convolutions of the backbones and the head (ultralytics' ``fuse`` walks
        ``self.model`` only, which here is the head)."""
        if self.is_fused():
            return self
        head = self.model
        for part in (self.rgb_backbone, self.ir_backbone):
            self.model = part
            try:
                DetectionModel.fuse(self, verbose=False, imgsz=imgsz)
            finally:
                self.model = head
        return DetectionModel.fuse(self, verbose=verbose, imgsz=imgsz)
