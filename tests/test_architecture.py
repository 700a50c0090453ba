"""The package's import rules (STYLE.md): imports go one way, and `evdet --help` stays light."""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "evdet"

# package -> packages it may import from (besides itself and the bottom-level ``utils``)
ALLOWED = {
    "utils": set(),
    "events": set(),
    "data": {"events"},
    "models": set(),
    "training": {"events", "data", "models"},
    "evaluation": {"events", "data", "models", "training"},
    "experiments": {"events", "data", "models", "training", "evaluation", "tracking", "pseudo"},
    "deploy": {"events", "data", "models", "training"},
    "tracking": {"events", "data"},
    "interop": {"events", "data", "evaluation", "experiments"},
    "pseudo": {"events", "data", "models", "training", "evaluation", "tracking"},
    "studies": {"events", "data", "models", "training", "evaluation", "tracking", "pseudo", "experiments"},
}


def imported_evdet_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            continue  # relative imports stay inside the package
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "evdet" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_imports_go_one_way():
    violations = []
    for package, allowed in ALLOWED.items():
        importable = allowed | ({"utils"} if package != "utils" else set())
        for path in (SRC / package).rglob("*.py"):
            for dep in imported_evdet_packages(path) - importable - {package}:
                if dep in ALLOWED or dep == "cli":
                    violations.append(f"{path.relative_to(SRC)} imports evdet.{dep}")
    assert not violations, "\n".join(violations)


def test_every_package_is_in_the_import_rules():
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()} - {"cli", "configs"}
    assert packages <= set(ALLOWED), f"add {sorted(packages - set(ALLOWED))} to ALLOWED"


def test_utils_imports_nothing_from_evdet():
    for path in (SRC / "utils").rglob("*.py"):
        assert not imported_evdet_packages(path), path


def test_models_do_not_import_omegaconf_or_data():
    for path in (SRC / "models").rglob("*.py"):
        text = path.read_text()
        assert "omegaconf" not in text, path
        assert "evdet.data" not in text, path


def test_cli_help_does_not_import_torch():
    code = "import sys, evdet.cli; print('torch' in sys.modules, 'lightning' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
