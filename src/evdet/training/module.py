"""The training system: a plain detector (``nn.Module``) + criterion + recurrent state per stream slot.

Training runs on batches of ``evdet.data.datamodule`` (random, stream or mixed items): each item
starts from its slot's stored state (zeros when ``is_first`` or a random item), the T steps run
with the state carried, the loss covers only the labelled steps (``select=label_mask``), and the
final states are stored detached (truncated backprop over one chunk).
Checkpoints carry what an exact resume needs beyond Lightning's own state (``RESUME_KEY``): the
training slots' recurrent states, and the torch / numpy / python RNG states of every rank, restored
just before the first resumed step. evdet's training itself draws nothing from those global RNGs (the
data pipeline's draws are seeded, see ``evdet.data.datamodule``; the model has no dropout): they
matter only to stochastic additions such as a user callback.
Validation walks whole validation sequences in stream mode, one sequence per slot, and fills
``val_predictions`` / ``val_ground_truth`` (seq_name -> BBOX array in representation pixels) for
callbacks (e.g. the evaluation callback that the experiment runner attaches).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Optional

import lightning as L
import numpy as np
import torch

from evdet.data.config import DataConfig
from evdet.data.labels import BBOX_DTYPE, boxes_from_detections
from evdet.models import build_loss, build_model
from evdet.models.config import LossConfig, ModelConfig
from evdet.training import strategies
from evdet.training.checkpoints import rng_states, set_rng_states
from evdet.training.config import TrainConfig
from evdet.utils.config_build import build_config
from evdet.training.optim import build_optimizer, effective_batch
from evdet.training.state import StreamStates
from evdet.training.teacher import build_teacher

DISTILL_KEY = "evdet_distill_adapters"   # training.distill: the 1x1 adapters' state_dict
RESUME_KEY = "evdet_resume"   # checkpoint entry: {"stream_states": {slot: [(h, c), ...]}, "rng": [per rank],
#                                                   "wall_s": fit time of the run up to this checkpoint}


def module_from_hparams(hp: dict) -> "DetectionModule":
    """A DetectionModule from the hyper-parameters a checkpoint stores (its configs as ``asdict`` dicts)."""
    return DetectionModule(build_config(DataConfig, hp["data_cfg"]), build_config(ModelConfig, hp["model_cfg"]),
                           build_config(LossConfig, hp["loss_cfg"]), build_config(TrainConfig, hp["train_cfg"]),
                           hp["num_classes"], hp["input_hw"], hp["in_channels"], hp["class_names"])


def targets_to_bbox(targets: torch.Tensor, t_us: int) -> np.ndarray:
    """(n, 5) class_id, cx, cy, w, h -> BBOX array (top-left x, y, w, h) at t_us."""
    tg = targets.detach().cpu().double().numpy().reshape(-1, 5)
    out = np.zeros(len(tg), dtype=BBOX_DTYPE)
    out["t"] = t_us
    out["x"], out["y"] = tg[:, 1] - tg[:, 3] / 2, tg[:, 2] - tg[:, 4] / 2
    out["w"], out["h"] = tg[:, 3], tg[:, 4]
    out["class_id"] = tg[:, 0].astype(np.uint32)
    out["class_confidence"] = 1.0
    return out


class DetectionModule(L.LightningModule):
    """RVT-family detector training / validation system.

    Args:
        data_cfg, model_cfg, loss_cfg, train_cfg: resolved configs (the dataclasses; a checkpoint's
            ``asdict`` dicts go through ``module_from_hparams``).
        num_classes: classes of the dataset's class map.
        input_hw: (height, width) of the representation, pixels.
        in_channels: channels of one representation (20 for stacked_histogram nbins=10).
        class_names: class names in id order (kept in the checkpoint for evaluation).
    """

    def __init__(self, data_cfg, model_cfg, loss_cfg, train_cfg, num_classes: int, input_hw, in_channels: int,
                 class_names) -> None:
        super().__init__()
        for name, cfg, cls in (("data_cfg", data_cfg, DataConfig), ("model_cfg", model_cfg, ModelConfig),
                               ("loss_cfg", loss_cfg, LossConfig), ("train_cfg", train_cfg, TrainConfig)):
            if not isinstance(cfg, cls):
                raise TypeError(f"DetectionModule: {name} must be a {cls.__name__}, got {type(cfg).__name__} "
                                "(a checkpoint's dicts: module_from_hparams)")
        self.data_cfg, self.model_cfg, self.loss_cfg, self.train_cfg = data_cfg, model_cfg, loss_cfg, train_cfg
        self.num_classes = int(num_classes)
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.in_channels = int(in_channels)
        self.class_names = tuple(class_names)
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names but num_classes={self.num_classes}")
        self.save_hyperparameters({
            "data_cfg": asdict(self.data_cfg), "model_cfg": asdict(self.model_cfg),
            "loss_cfg": asdict(self.loss_cfg), "train_cfg": asdict(self.train_cfg),
            "num_classes": self.num_classes, "input_hw": list(self.input_hw), "in_channels": self.in_channels,
            "class_names": list(self.class_names)})
        self.model = build_model(self.model_cfg, self.num_classes, self.input_hw, self.in_channels)
        self.criterion = build_loss(self.loss_cfg, self.num_classes)
        self.teacher = build_teacher(self.model, self.train_cfg)   # None unless training.ema_teacher.decay > 0
        strategies.check_combination(self.train_cfg)
        # training strategies (evdet.training.strategies): the distiller is built at fit start and kept out
        # of the module tree (a tuple), so checkpoints hold its adapters (DISTILL_KEY) but not the teacher
        self._distill: tuple = ()
        self.trusted_checkpoints = False   # --trusted (set by fit): the teacher may hold pickled objects
        self._pending_adapters: Optional[dict] = None
        self.train_states = StreamStates()
        self.val_states = StreamStates()
        self._val_parts: tuple[dict, dict] = ({}, {})   # seq_name -> list of BBOX arrays (dt, gt)
        self._val_final: Optional[tuple[dict, dict]] = None
        self._rng_to_restore: Optional[dict] = None
        self._wall_before = 0.0                     # fit time of earlier sittings (from the checkpoint)
        self._wall_t0: Optional[float] = None

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, map_location="cpu", **_lightning_kwargs) -> "DetectionModule":
        """Lightning's entry point, routed through evdet's loader (``predict.load_module``): a weights-only
        read and the typed configs rebuilt from the checkpoint's dicts. Lightning's own keyword arguments
        (``weights_only``, ``strict``, ``hparams_file``) do not apply: the checkpoint is evdet's own."""
        from evdet.training.predict import load_module

        return load_module(checkpoint_path, map_location=map_location or "cpu")

    def on_fit_start(self) -> None:
        self._wall_t0 = time.perf_counter()

    def on_train_start(self) -> None:
        # after the train loader exists (its weights are computed with it)
        strategies.report_start(self, getattr(self.trainer, "datamodule", None))

    def setup(self, stage: str) -> None:
        if stage == "fit":
            strategies.setup_fit(self, getattr(self.trainer, "datamodule", None))

    def wall_s(self) -> float:
        """Fit time of this run over all its sittings (up to the checkpoint each resumed from)."""
        return self._wall_before + (time.perf_counter() - self._wall_t0 if self._wall_t0 is not None else 0.0)

    def forward(self, frames: torch.Tensor, states=None, select: Optional[torch.Tensor] = None):
        """Run the detector: frames (B, T, C, H, W) -> DetectorOutput."""
        return self.model(frames, states, select)

    # ---- training ----
    def on_train_epoch_start(self) -> None:
        # every stream restarts at an epoch start (is_first on the first chunk of each slot); Lightning
        # does not call this hook when it resumes inside an epoch, so restored states are kept
        self.train_states.reset()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:
            # here, not at load time: loader set-up draws from the global RNG in between
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.teacher is not None:
            losses = self.teacher.training_losses(self, batch, self.global_step)
        else:
            losses, out = self._run(batch, self.train_states)
            losses = strategies.add_losses(self, batch, out, losses)
        bs = int(batch["frames"].shape[0])
        for key in ("loss", "iou", "obj", "cls", "num_fg", "sup", "pseudo", "temporal", "temporal_pairs", "distill",
                    "distill_feat", "distill_resp"):
            if key in losses:
                self.log(f"train/{key}", losses[key].detach().float(), prog_bar=key == "loss", batch_size=bs)
        for key, value in strategies.log_values(self).items():
            self.log(key, value, batch_size=bs)
        opt = self.optimizers()
        if not isinstance(opt, list):
            self.log("train/lr", float(opt.param_groups[0]["lr"]), prog_bar=False, batch_size=bs)
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.teacher is not None:
            self.teacher.update(self.model, self.global_step)

    def _run(self, batch: dict, store: StreamStates):
        """Forward with the slots' states, loss on labelled steps, store the new states.

        Returns:
            (losses dict, DetectorOutput or None when no step of the batch has a label).
        """
        mask = batch["label_mask"].bool()
        if store is self.train_states and self.data_cfg.empty_label_frames == "skip":
            mask = mask & frames_with_boxes(batch)   # RVT: a label frame without boxes is not in the loss
        if not bool(mask.any()):
            # no labelled step: advance the states, zero loss that still touches every parameter (DDP)
            with torch.no_grad():
                self.advance_streams(batch, store, None)
            zero = sum(p.sum() for p in self.model.parameters()) * 0.0
            return {"loss": zero}, None
        out = self.advance_streams(batch, store, mask)
        targets = [batch["targets"][b][t].to(self.device) for b, t in mask.nonzero().tolist()]
        losses = self.criterion(out.head, targets)
        return losses, out

    def advance_streams(self, batch: dict, store: StreamStates, select: Optional[torch.Tensor]):
        """Run a batch from its slots' stored states and store their final states (detached).

        The one stream path of training, validation and ``predict_sequences``.

        Args:
            select: bool (B, T) steps whose head outputs are wanted (None: every step).
        Returns:
            DetectorOutput.
        """
        frames = strategies.fit_canvas(self.model, batch["frames"].to(self.device).float(), self.input_hw)
        slots = batch["stream_slot"].tolist()
        states = store.gather(slots, batch["is_first"].tolist(), frames.device)
        out = self.model(frames, states, None if select is None else select.to(frames.device))
        store.scatter(slots, out.states)
        return out

    def detections(self, batch: dict, out, select: torch.Tensor) -> list[tuple[str, np.ndarray]]:
        """Post-processed detections of every selected step (b, t), in row-major order.

        Args:
            out: ``advance_streams`` output for ``select``.
        Returns:
            list of (sequence name, detections at the step's ``t_us``: boxes in stored-representation pixels
            (input pixels mapped back by ``batch["input_scale"]``), obj x cls in ``class_confidence``, the
            class probability in ``class_score``).
        """
        head_cfg = self.model_cfg.head
        dets = self.model.postprocess(out.head, conf_threshold=head_cfg.conf_threshold, nms_iou=head_cfg.nms_iou,
                                      max_detections=head_cfg.max_detections)
        found = []
        scale = batch.get("input_scale")
        for (b, t), d in zip(select.nonzero().tolist(), dets):
            d = d.detach().float().cpu().numpy()
            xyxy = d[:, :4] if scale is None else strategies.to_stored_pixels(d[:, :4], scale[b])
            found.append((batch["seq_names"][b], boxes_from_detections(
                xyxy, d[:, 4], d[:, 5].astype(np.int64), int(batch["t_us"][b, t]), class_scores=d[:, 6])))
        return found

    # ---- validation ----
    @property
    def val_predictions(self) -> dict[str, np.ndarray]:
        """seq_name -> detections (BBOX array, repr pixels, sorted by t) of the current validation."""
        return self._val_final[0] if self._val_final is not None else _concat_per_sequence(self._val_parts[0])

    @property
    def val_ground_truth(self) -> dict[str, np.ndarray]:
        """seq_name -> ground truth (BBOX array, repr pixels, sorted by t) of the current validation."""
        return self._val_final[1] if self._val_final is not None else _concat_per_sequence(self._val_parts[1])

    def on_validation_epoch_start(self) -> None:
        self.val_states.reset()
        self._val_parts = ({}, {})
        self._val_final = None

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        losses, out = self._run(batch, self.val_states)
        if out is None:
            return
        bs = int(batch["frames"].shape[0])
        self.log("val/loss", losses["loss"].detach().float(), on_epoch=True, sync_dist=True, batch_size=bs)
        self._collect(batch, out)

    def _collect(self, batch: dict, out) -> None:
        """Detections and ground truth of the labelled steps into the per-sequence lists."""
        mask = batch["label_mask"].bool()
        scale = batch.get("input_scale")
        for (name, found), (b, t) in zip(self.detections(batch, out, mask), mask.nonzero().tolist()):
            self._val_parts[0].setdefault(name, []).append(found)
            gt = batch["targets"][b][t]
            if scale is not None:   # ground truth in stored pixels, as the detections
                sy, sx = float(scale[b, 0]), float(scale[b, 1])
                gt = gt / torch.tensor([1.0, sx, sy, sx, sy], dtype=gt.dtype)
            self._val_parts[1].setdefault(name, []).append(targets_to_bbox(gt, int(batch["t_us"][b, t])))

    def finalize_validation(self) -> None:
        """Concatenate this validation's outputs and, under DDP, gather every rank's sequences.

        Collective under DDP: every rank must call it (``FinalizeValidation`` does, before the other
        callbacks' ``on_validation_epoch_end``). Idempotent within one validation.
        """
        if self._val_final is not None:
            return
        preds, gts = _concat_per_sequence(self._val_parts[0]), _concat_per_sequence(self._val_parts[1])
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            gathered: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, (preds, gts))
            preds = {k: v for p, _ in gathered for k, v in p.items()}
            gts = {k: v for _, g in gathered for k, v in g.items()}
        self._val_final = (dict(sorted(preds.items())), dict(sorted(gts.items())))

    def on_validation_epoch_end(self) -> None:
        self.finalize_validation()

    # ---- checkpoints ----
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # collective under DDP: every rank saves (LastBestCheckpoint), rank 0 writes every rank's part
        part = (self.train_states.state_dict(), rng_states())
        trainer = self._trainer
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            parts: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(parts, part)
        else:
            parts = [part]
        checkpoint[RESUME_KEY] = {"stream_states": {s: st for states, _ in parts for s, st in states.items()},
                                  "rng": [rng for _, rng in parts], "wall_s": self.wall_s()}
        adapters = strategies.adapters_state(self)
        if adapters is not None:
            checkpoint[DISTILL_KEY] = adapters

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if DISTILL_KEY in checkpoint:
            if self._distill:
                self._distill[0].adapters.load_state_dict(checkpoint[DISTILL_KEY])
            else:
                self._pending_adapters = checkpoint[DISTILL_KEY]
        saved = checkpoint.get(RESUME_KEY)
        if saved is None:
            return  # an older checkpoint: slots resume from zero states
        self.train_states.load_state_dict(saved["stream_states"])
        self._wall_before = float(saved.get("wall_s", 0.0))
        rank = self._trainer.global_rank if self._trainer is not None else 0
        self._rng_to_restore = saved["rng"][rank] if rank < len(saved["rng"]) else None

    # ---- optimisation ----
    def configure_optimizers(self):
        # lr scaled by sqrt(effective batch / 8): devices x nodes x accumulation x per-process batch (RVT's formula)
        params = list(self.model.parameters()) + strategies.extra_parameters(self)   # + distillation adapters
        opt, sched = build_optimizer(params, self.train_cfg,
                                     effective_batch(self.data_cfg.batch_size, self.train_cfg))
        return {"optimizer": opt, "lr_scheduler": sched}


def frames_with_boxes(batch: dict) -> torch.Tensor:
    """(B, T) bool: the step's targets hold at least one box."""
    return torch.tensor([[len(t) > 0 for t in item] for item in batch["targets"]], dtype=torch.bool)


def _concat_per_sequence(d: dict) -> dict[str, np.ndarray]:
    out = {}
    for name, parts in d.items():
        arr = np.concatenate(parts) if isinstance(parts, list) and parts else parts
        if isinstance(arr, list):
            arr = np.zeros(0, dtype=BBOX_DTYPE)
        out[name] = arr[np.argsort(arr["t"], kind="stable")]
    return out


class FinalizeValidation(L.Callback):
    """Completes ``val_predictions`` / ``val_ground_truth`` (gathered over DDP ranks) before later callbacks.

    Lightning calls callbacks' ``on_validation_epoch_end`` before the module's, so ``fit`` puts this
    callback first; evaluation callbacks placed after it see the complete, gathered outputs.
    """

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if isinstance(pl_module, DetectionModule):
            pl_module.finalize_validation()
