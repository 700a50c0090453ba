"""Experiment ids are checked by every command: nothing outside the experiments root is read or written."""

import os

import pytest

from hostile_files import one_line_error
from tests.experiments.exp_fixtures import CLASSES, make_experiment, protocol_block


@pytest.fixture()
def victim(tmp_path):
    """A record outside the experiments root (``<tmp>/outside/victim``) and an empty root ``<tmp>/exps``."""
    d = make_experiment(tmp_path / "outside", "victim", state="created",
                        protocols={"prophesee": protocol_block(0.3, 0.1, {c: 0.3 for c in CLASSES})})
    (tmp_path / "exps").mkdir()
    return d


def snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("args", [
    ["exp", "run", "../outside/victim"],
    ["exp", "run", "../outside/victim", "--resume"],
    ["exp", "verdict", "../outside/victim"],
    ["exp", "compare", "../outside/victim", "../outside/victim"],
    ["exp", "report", "../outside/victim"],
    ["exp", "new", "x", "--hypothesis", "h", "--base", "../outside/victim"],
])
def test_ids_climbing_out_of_the_root_are_refused(victim, tmp_path, args):
    before = snapshot(victim.parent)
    line = one_line_error([*args, "--root", tmp_path / "exps"])
    assert "experiment id '../outside/victim': use letters, digits" in line
    assert snapshot(victim.parent) == before and not (tmp_path / "exps" / "x").exists()


def test_trailing_newline_in_an_id_is_refused(tmp_path):
    line = one_line_error(["exp", "new", "abc\n", "--hypothesis", "h", "--root", tmp_path / "exps"])
    assert "experiment id 'abc\\n'" in line
    assert not any((tmp_path / "exps").glob("abc*"))


def test_a_record_symlinked_outside_the_root_is_refused(victim, tmp_path):
    os.symlink(victim, tmp_path / "exps" / "link")
    before = snapshot(victim.parent)
    line = one_line_error(["exp", "run", "link", "--root", tmp_path / "exps"])
    assert "outside the experiments root" in line
    assert snapshot(victim.parent) == before
