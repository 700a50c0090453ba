"""What a run ran on: git commit, package versions, seed, machine, python (environment.json)."""

from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence

from evdet.utils.provenance import git_info

PACKAGES = ("evdet", "torch", "lightning", "numpy", "h5py", "hdf5plugin", "numba", "omegaconf",
            "faster-coco-eval", "pycocotools", "matplotlib", "pandas")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, Optional[str]]:
    """Installed version of each distribution (None when not installed)."""
    out: dict[str, Optional[str]] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect_environment(seed: int, cwd: Optional[Path] = None, seeds: Sequence[int] = ()) -> dict:
    """environment.json document: git, packages, seed (and the experiment's ``seeds``), machine, python."""
    env = {"git": git_info(cwd), "packages": package_versions(), "seed": int(seed),
           "seeds": [int(s) for s in seeds] or [int(seed)],
           "python": sys.version.split()[0], "executable": sys.executable,
           "machine": {"host": socket.gethostname(), "platform": platform.platform(),
                       "processor": platform.machine(), "cpu_count": os.cpu_count()},
           "argv": list(sys.argv)}
    torch = sys.modules.get("torch")
    if torch is not None:  # only when already imported by the run: never pay the import here
        env["accelerator"] = {"cuda": bool(torch.cuda.is_available()),
                              "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    return env
