"""What a run ran on: git commit, package versions, seed, machine, python (environment.json)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional, Sequence

PACKAGES = ("evdet", "torch", "lightning", "numpy", "h5py", "hdf5plugin", "numba", "omegaconf",
            "faster-coco-eval", "pycocotools", "matplotlib", "pandas")


def git_info(cwd: Optional[Path] = None) -> dict:
    """Commit, branch and dirty flag of the git checkout holding ``cwd`` (None values outside git)."""
    cwd = Path(cwd or Path(__file__).resolve().parent)

    def git(*args: str) -> Optional[str]:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "branch": git("rev-parse", "--abbrev-ref", "HEAD") if commit else None,
            "dirty": bool(status) if status is not None else None}


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
