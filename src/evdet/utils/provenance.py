"""Where and when a number was measured: git commit, machine and date, for every results file.

Every results JSON that README.md or docs/ quote holds a ``provenance`` object written by the
command that measured it (``tests/test_documented_numbers.py`` checks that it is there)::

    {"commit": "e3fd7ba...", "dirty": false, "machine": "AMD EPYC 7B13, 2 cores, Linux-6.1-x86_64",
     "date": "2026-12-04T19:02:11Z", "command": "evdet demo --out runs/demo"}
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Optional


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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else ``platform.processor()`` or the architecture)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_text() -> str:
    """``<cpu model>, <n> cores, <platform>``: the machine kind a number was measured on."""
    return f"{cpu_model()}, {os.cpu_count()} cores, {platform.platform(terse=True)}"


def provenance(command: Optional[str] = None, cwd: Optional[Path] = None) -> dict:
    """The ``provenance`` object of a results file: commit (and dirty flag), machine, UTC date, command."""
    git = git_info(cwd)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"commit": git["commit"], "dirty": git["dirty"], "machine": machine_text(), "date": now,
            "command": command if command is not None else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
