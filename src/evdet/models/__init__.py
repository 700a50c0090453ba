"""RVT-family detector in pure torch: recurrent MaxViT backbone, PAFPN, YOLOX head, SimOTA loss.

The names below load on first use, so that ``evdet.models.config`` (plain dataclasses) can be read
without importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "PRESETS": "evdet.models.build", "build_loss": "evdet.models.build", "build_model": "evdet.models.build",
    "partition_size": "evdet.models.build", "Detector": "evdet.models.detector",
    "DetectorOutput": "evdet.models.detector", "YoloxLoss": "evdet.models.losses",
    "HeadOutput": "evdet.models.yolox_head", "load_rvt_checkpoint": "evdet.models.rvt_import",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'evdet.models' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
