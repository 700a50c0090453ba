"""Fixtures of the hostile-input suite: a real evdet checkpoint, a planted malicious one, and a CLI helper.

Each test plays a user handing evdet a hostile or broken input, and checks that nothing runs that should
not, nothing is written that should not be, and the command ends with one line naming the file / option.
"""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "training"))

from hostile_files import evil_copy, save_module_checkpoint  # noqa: E402
from tiny_dataset import REPR_NAME, make_tiny_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """train: 2 sequences (5, 4 reprs); val: 1 (4 reprs); 64x96, 4 channels, car / pedestrian."""
    return make_tiny_dataset(tmp_path_factory.mktemp("hostile_data"), lengths={"train": [5, 4], "val": [4]})


@pytest.fixture(scope="session")
def good_ckpt(tiny_root, tmp_path_factory) -> Path:
    """An evdet checkpoint of a nano model for the tiny dataset (untrained), as load_module reads it."""
    return save_module_checkpoint(tmp_path_factory.mktemp("hostile_ckpt") / "good.ckpt", tiny_root, REPR_NAME)


@pytest.fixture()
def marker(tmp_path) -> Path:
    """The file a malicious pickle creates when it runs (it must never exist)."""
    return tmp_path / "PWNED"


@pytest.fixture()
def evil_ckpt(good_ckpt, marker, tmp_path) -> Path:
    """The good checkpoint with one extra hyper-parameter whose unpickling runs a shell command."""
    return evil_copy(good_ckpt, tmp_path / "evil.ckpt", marker)
