"""Train a detector: DataModule + DetectionModule + Lightning Trainer, loggers, checkpoints, resume.

Output folder::

    <out_dir>/checkpoints/last.ckpt, best.ckpt     # see evdet.training.checkpoints
    <out_dir>/logs/metrics.csv                     # CSVLogger, one row per logging step
    <out_dir>/logs/hparams.yaml
    <out_dir>/logs/tensorboard/                    # when "tensorboard" is in train_cfg.loggers
    <out_dir>/logs/mlflow.db, logs/mlflow_artifacts/   # when "mlflow" is listed (SQLite store, experiment "evdet")

Resume (``resume=True``) restarts from ``checkpoints/last.ckpt``: weights, optimiser, scheduler,
global step, loop progress, callback state (best-metric tracking, monitors), the training slots'
recurrent states and the global RNG states (``DetectionModule``). The metrics of the interrupted run
up to the checkpoint's step are kept and the rest appended, so ``metrics.csv`` holds each training
step once. The loaders continue the interrupted epoch at the batch after the checkpoint with the same
windows and augmentation (every draw is seeded by seed, epoch and position), so on the same machine
and settings the resumed steps log the losses of an uninterrupted run, with or without loader
workers. A different ``max_steps`` on resume is refused: the OneCycle schedule length is part of the
saved scheduler.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional

import lightning as L
import torch

from evdet.data.config import DataConfig
from evdet.data.datamodule import EventDataModule
from evdet.models.config import LossConfig, ModelConfig
from evdet.training.checkpoints import BesideTargetCheckpointIO, LastBestCheckpoint, read_checkpoint
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule, FinalizeValidation
from evdet.training.monitors import (
    DivergenceStop,
    LossMonitor,
    MemoryMonitor,
    peak_rss_mb,
)
from evdet.utils.metrics_csv import read_metrics_rows

KNOWN_LOGGERS = ("csv", "tensorboard", "mlflow")


def resolve_precision(precision: str, accelerator: str) -> str:
    """"auto" -> "16-mixed" when CUDA is used, else "32"; other values unchanged."""
    if precision != "auto":
        return precision
    uses_cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    return "16-mixed" if uses_cuda else "32"


def build_loggers(names: Iterable[str], log_dir: Path) -> list:
    """CSV logger (always) plus the listed ones; mlflow logs to a local SQLite store (run = out_dir name)."""
    from lightning.pytorch.loggers import CSVLogger

    names = list(names)
    unknown = [n for n in names if n not in KNOWN_LOGGERS]
    if unknown:
        raise ValueError(f"train_cfg.loggers: unknown logger(s) {unknown}; known: {list(KNOWN_LOGGERS)}")
    loggers = [CSVLogger(save_dir=str(log_dir.parent), name=log_dir.name, version="")]
    if "tensorboard" in names:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(save_dir=str(log_dir), name="tensorboard", version="",
                                         default_hp_metric=False))
    if "mlflow" in names:
        _require("mlflow", "mlflow-skinny")
        from lightning.pytorch.loggers import MLFlowLogger

        # MLflow 3 refuses plain-folder stores unless told otherwise: a SQLite file is its local default
        log_dir.mkdir(parents=True, exist_ok=True)
        loggers.append(MLFlowLogger(experiment_name="evdet", run_name=log_dir.resolve().parent.name,
                                    tracking_uri=mlflow_tracking_uri(log_dir),
                                    artifact_location=(log_dir / "mlflow_artifacts").resolve().as_uri()))
    return loggers


def mlflow_tracking_uri(log_dir: Path) -> str:
    """The MLflow tracking URI of a run's logs folder (``sqlite:///<abs>/mlflow.db``)."""
    return f"sqlite:///{(log_dir / 'mlflow.db').resolve()}"


def _require(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"train_cfg.loggers lists {module!r} but it is not installed (pip install {package})")


def rows_before_step(rows: list[dict], step: int) -> list[dict]:
    """Rows logged before a checkpoint taken after ``step`` optimiser steps.

    Training rows of steps >= step are dropped (they will be logged again); validation rows at
    exactly ``step`` (the validation that preceded the checkpoint) are kept.
    """
    keep = []
    for row in rows:
        s = int(float(row.get("step") or 0))
        is_train = any(v not in ("", None) for k, v in row.items() if k.startswith(("train/", "monitor/")))
        if s < step or (s == step and not is_train):
            keep.append(row)
    return keep


class _DropAdvert(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


class _without_lightning_advert:
    """Context that hides Lightning's "install litlogger" tip (printed at every fit) and nothing else."""

    _logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")

    def __enter__(self) -> None:
        self._filter = _DropAdvert()
        self._logger.addFilter(self._filter)

    def __exit__(self, *exc) -> None:
        self._logger.removeFilter(self._filter)


def _check_resume(ckpt_path: Path, train_cfg: TrainConfig, trusted: bool) -> int:
    """Refuse a resume whose schedule length differs; returns the checkpoint's global step."""
    ckpt = read_checkpoint(ckpt_path, trusted=trusted)
    saved = ckpt["hyper_parameters"]["train_cfg"]
    if "max_steps" in saved and int(saved["max_steps"]) != int(train_cfg.max_steps):
        raise ValueError(
            f"{ckpt_path}: checkpoint was trained with training.max_steps={saved['max_steps']} but resume asks "
            f"for {train_cfg.max_steps}; the OneCycle schedule length cannot change on resume "
            f"(start a new run, or resume with max_steps={saved['max_steps']})")
    return int(ckpt.get("global_step", 0))


def _loggers_keeping_rows(train_cfg: TrainConfig, log_dir: Path, resume_step: Optional[int]) -> list:
    """The run's loggers; on resume, metrics.csv keeps the rows logged before the checkpoint's step."""
    previous_rows = rows_before_step(read_metrics_rows(log_dir / "metrics.csv"), resume_step) \
        if resume_step is not None else []
    loggers = build_loggers(train_cfg.loggers, log_dir)
    if previous_rows:
        writer = loggers[0].experiment  # creating the writer removes the old file: write the kept rows back
        if isinstance(getattr(writer, "metrics", None), list):  # rank 0 only (other ranks get a dummy)
            writer.metrics.extend(previous_rows)
            writer.save()
    return loggers


def _sync_batchnorm(train_cfg: TrainConfig) -> bool:
    """SyncBatchNorm as RVT: on for several GPU processes. torch's SyncBatchNorm runs on GPU modules only, so
    CPU processes (DDP on gloo) keep per-process BatchNorm statistics."""
    import torch

    gpu = train_cfg.accelerator in ("gpu", "cuda") or (train_cfg.accelerator == "auto" and torch.cuda.is_available())
    return train_cfg.sync_batchnorm and gpu and train_cfg.devices * train_cfg.num_nodes > 1


def _strategy(train_cfg: TrainConfig) -> str:
    """``training.strategy``, except that a DDP strategy for one process on one node trains without DDP, as
    RVT's train.py does (DDPStrategy only for several GPUs): no process group is set up for a world of one."""
    one = train_cfg.devices == 1 and train_cfg.num_nodes == 1
    return "auto" if one and train_cfg.strategy.startswith("ddp") else train_cfg.strategy


def _build_trainer(train_cfg: TrainConfig, loggers: list, callbacks: list, out_dir: Path,
                   progress: bool, trusted: bool = False) -> L.Trainer:
    """A Lightning Trainer with the run's schedule, precision, devices, validation cadence and clipping."""
    return L.Trainer(
        max_steps=train_cfg.max_steps,
        val_check_interval=train_cfg.val_every_n_steps * train_cfg.accumulate_grad_batches,
        check_val_every_n_epoch=None,
        limit_val_batches=train_cfg.limit_val_batches if train_cfg.limit_val_batches is not None else 1.0,
        num_sanity_val_steps=0,
        gradient_clip_val=train_cfg.grad_clip_value or None,
        gradient_clip_algorithm="value",
        accumulate_grad_batches=train_cfg.accumulate_grad_batches,
        precision=resolve_precision(train_cfg.precision, train_cfg.accelerator),
        accelerator=train_cfg.accelerator, devices=train_cfg.devices, num_nodes=train_cfg.num_nodes,
        strategy=_strategy(train_cfg),
        sync_batchnorm=_sync_batchnorm(train_cfg),
        logger=loggers, callbacks=callbacks, log_every_n_steps=train_cfg.log_every_n_steps,
        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
        use_distributed_sampler=False, default_root_dir=str(out_dir),
        plugins=[BesideTargetCheckpointIO(trusted=trusted)],
    )


def fit(data_cfg: DataConfig, model_cfg: ModelConfig, loss_cfg: LossConfig, train_cfg: TrainConfig,
        out_dir: str | Path, *, callbacks: Iterable[L.Callback] = (), resume: bool = False,
        progress: bool = True, trusted: bool = False) -> dict:
    """Train (or resume) a detector into ``out_dir``.

    Args:
        callbacks: extra Lightning callbacks (e.g. the evaluation callback, which logs the
            checkpoint metric).
        resume: continue from ``out_dir/checkpoints/last.ckpt``.
        progress: show the progress bar (loss, it/s).
        trusted: resume from a last.ckpt, or distil from a teacher checkpoint, holding arbitrary pickled
            objects (``--trusted``; by default both are read weights-only, so a planted file cannot run code).
    Returns:
        summary: out_dir, global_step, last_ckpt, best_ckpt, best_metric, best_score, best_step,
        stopped_reason (None or why training stopped early), metrics_csv, wall_s (fit time over every
        sitting of a resumed run), peak_rss_mb.
    """
    out_dir = Path(out_dir)
    ckpt_dir, log_dir = out_dir / "checkpoints", out_dir / "logs"
    last = ckpt_dir / "last.ckpt"
    resume_step = _check_start(last, train_cfg, resume, trusted)

    L.seed_everything(train_cfg.seed, workers=True)
    dm = EventDataModule(data_cfg, seed=train_cfg.seed)
    names = dm.class_names
    module = DetectionModule(data_cfg, model_cfg, loss_cfg, train_cfg, len(names), dm.input_hw, dm.in_channels,
                             names)
    module.trusted_checkpoints = trusted
    loggers = _loggers_keeping_rows(train_cfg, log_dir, resume_step)

    # last.ckpt is refreshed after every validation, every checkpoint_every_n_steps and at the end
    checkpoint = LastBestCheckpoint(ckpt_dir, train_cfg.checkpoint_metric, train_cfg.checkpoint_mode,
                                    every_n_train_steps=train_cfg.checkpoint_every_n_steps)
    divergence = DivergenceStop(train_cfg.divergence_factor, window=train_cfg.loss_cv_window)
    all_callbacks = [FinalizeValidation(), checkpoint, LossMonitor(train_cfg.loss_cv_window), divergence,
                     MemoryMonitor(train_cfg.log_every_n_steps), *callbacks]
    with warnings.catch_warnings(), _without_lightning_advert():
        trainer = _build_trainer(train_cfg, loggers, all_callbacks, out_dir, progress, trusted)
        # torch 2.13 deprecates an isinstance check inside lightning 2.6; nothing for users to act on
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
        # our loaders resume inside an epoch by themselves (EventDataModule.train_dataloader), which
        # Lightning cannot see: its "dataloader is not resumable" warning does not apply
        warnings.filterwarnings("ignore", message=r".*your dataloader is not resumable.*")
        # the checkpoint is read by BesideTargetCheckpointIO (weights only unless trusted)
        trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume else None)
        step = int(trainer.global_step)
        if divergence.reason is None and step == train_cfg.max_steps and step % train_cfg.val_every_n_steps:
            # the last validation was before the end: validate the final weights too (metrics at max_steps)
            trainer.validate(module, datamodule=dm, verbose=False)
    stopped = divergence.reason
    if stopped is None and trainer.global_step < train_cfg.max_steps:
        stopped = f"stopped at global step {trainer.global_step} of {train_cfg.max_steps} (should_stop)"
    return _summary(out_dir, int(trainer.global_step), checkpoint, stopped, module.wall_s(),
                    {"data": asdict(data_cfg), "model": asdict(model_cfg), "loss": asdict(loss_cfg),
                     "training": asdict(train_cfg)})


def _check_start(last: Path, train_cfg: TrainConfig, resume: bool, trusted: bool) -> Optional[int]:
    """The step ``last`` was written at when resuming (its schedule must be this one), else None; refuses
    resuming without ``last``, starting over an existing one, and a schedule count under 1."""
    resume_step = None
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"{last}: nothing to resume (no last checkpoint in {last.parent.parent})")
        resume_step = _check_resume(last, train_cfg, trusted)
    elif last.exists():
        raise FileExistsError(f"{last} exists: pass resume=True to continue that run, or use a new out_dir")
    if train_cfg.max_steps < 1 or train_cfg.val_every_n_steps < 1 or train_cfg.accumulate_grad_batches < 1:
        raise ValueError("training.max_steps, training.val_every_n_steps and training.accumulate_grad_batches "
                         "must be >= 1")
    return resume_step


def _summary(out_dir: Path, global_step: int, checkpoint: LastBestCheckpoint, stopped: Optional[str],
             wall_s: float, configs: dict) -> dict:
    """``fit``'s summary (see its Returns)."""
    return {
        "out_dir": str(out_dir),
        "global_step": global_step,
        "last_ckpt": str(checkpoint.last_path) if checkpoint.last_path.exists() else None,
        "best_ckpt": str(checkpoint.best_path) if checkpoint.best_path.exists() else None,
        "best_metric": checkpoint.best_metric,
        "best_score": checkpoint.best_score,
        "best_step": checkpoint.best_step,
        "stopped_reason": stopped,
        "metrics_csv": str(out_dir / "logs" / "metrics.csv"),
        "wall_s": wall_s,
        "peak_rss_mb": peak_rss_mb(),
        "configs": configs,
    }
