"""The one place evdet reads a torch file (checkpoints of evdet, RVT, a colleague): code-free by default.

``torch.load(weights_only=False)`` runs whatever a pickle's ``__reduce__`` names, so a downloaded
checkpoint could execute code. ``load_torch_file`` uses torch's weights-only unpickler with just the
extra types evdet's own checkpoints hold (NumPy arrays of the RNG states); anything else is refused with
a one-line error naming the ``--trusted`` opt-in, which falls back to the full unpickler.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path
from typing import Any

TRUSTED_OPTION = "--trusted"


class UntrustedCheckpointError(ValueError):
    """A torch file holds Python objects beyond tensors and plain data; loading it could run code."""


class UnreadableCheckpointError(ValueError):
    """A file that torch cannot read (truncated, not a torch file); the message names the file."""


def safe_globals() -> list:
    """The non-torch types evdet's checkpoints hold: NumPy arrays, dtypes and scalars (RNG states).

    Each of them only builds data: an array's subtype and an object array's items must themselves be
    allowed types, so nothing here can call an arbitrary function.
    """
    import numpy as np

    dtype_classes = [getattr(np.dtypes, name) for name in dir(np.dtypes)
                     if name.endswith("DType") and name not in ("ObjectDType", "VoidDType")]
    return [np.ndarray, np.dtype, np._core.multiarray._reconstruct, np._core.multiarray.scalar, *dtype_classes]


def load_torch_file(path: str | Path, *, trusted: bool = False, map_location: str = "cpu") -> Any:
    """Load a ``torch.save`` file onto ``map_location`` without running code unless ``trusted``.

    Args:
        path: the file; trusted: use the full unpickler (only for files whose source you trust).
    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpointError: it holds other Python objects (the message names one and ``--trusted``).
        UnreadableCheckpointError: truncated, not a torch file, or a plain pickle (those need ``--trusted``).
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False)
        with torch.serialization.safe_globals(safe_globals()), warnings.catch_warnings():
            # a foreign pickle's protocol draws a warning before the refusal, which says it all
            warnings.filterwarnings("ignore", message=r".*pickle protocol.*")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if not trusted:
            raise _refusal(path, str(err)) from None
        raise UnreadableCheckpointError(f"{path}: not a readable checkpoint, truncated or not a torch file "
                                        f"({_first_sentence(err)})") from None
    except Exception as err:  # torch raises many types for a bad file (RuntimeError, EOFError, ...)
        raise UnreadableCheckpointError(f"{path}: not a readable checkpoint, truncated or not a torch file "
                                        f"({_first_sentence(err)})") from None


def _refusal(path: Path, message: str) -> ValueError:
    """The one-line error of the weights-only unpickler's refusal (an object type, or a foreign pickle)."""
    found = re.search(r"GLOBAL (\S+)", message) or re.search(r"but got <class '([^']+)'>", message)
    if found:
        return UntrustedCheckpointError(
            f"{path}: refused: it holds a Python object ({found.group(1)}) besides tensors and plain data, and "
            f"loading it could run code; pass {TRUSTED_OPTION} only if you trust where the file comes from")
    operand = re.search(r"Unsupported operand (\d+)", message)
    detail = f"unsupported pickle operand {operand.group(1)}" if operand else "the weights-only reader refused it"
    return UnreadableCheckpointError(
        f"{path}: not a readable checkpoint, truncated or not a torch file ({detail}; a plain pickle loads only "
        f"with {TRUSTED_OPTION}, for a file you trust)")


def _first_sentence(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(err).__name__
