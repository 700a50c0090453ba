"""data.class_map reaches every reader through ``load_class_map``: the data module's names, the
evaluation setup and the record's evaluation geometry agree; an unknown name is a one-line error."""

import importlib.util
import sys
from pathlib import Path

import pytest

from evdet.data.classes import ETRAM3, GEN4, ClassMap, write_dataset_yaml
from evdet.data.config import DataConfig
from evdet.data.datamodule import EventDataModule
from evdet.evaluation.config import EvalConfig
from evdet.evaluation.dataset import EvalSetup

_spec = importlib.util.spec_from_file_location(
    "tiny_dataset", Path(__file__).resolve().parents[1] / "training" / "tiny_dataset.py")
tiny = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("tiny_dataset", tiny)
_spec.loader.exec_module(tiny)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny.make_tiny_dataset(tmp_path_factory.mktemp("cm"), lengths={"train": [5], "val": [5]})


def _dm(root, class_map):
    return EventDataModule(DataConfig(root=str(root), representation=tiny.REPR_NAME, class_map=class_map))


def test_auto_reads_the_dataset_yaml_and_a_known_name_wins(root):
    assert _dm(root, "auto").class_names == ("car", "pedestrian")            # the tiny dataset's dataset.yaml
    assert EvalSetup.from_dataset(root, EvalConfig()).class_map.names == ("car", "pedestrian")
    assert _dm(root, "gen4").class_names == GEN4.names
    assert EvalSetup.from_dataset(root, EvalConfig(), "gen4").class_map == GEN4


def test_auto_without_dataset_yaml_is_etram(tmp_path):
    assert _dm(tmp_path, "auto").class_names == ("pedestrian", "car", "bicycle", "bus", "motorbike", "truck",
                                                 "tram", "wheelchair")


def test_a_merge_keeps_its_own_map_and_maps_the_stored_ids(tmp_path):
    write_dataset_yaml(tmp_path, ClassMap(("PED", "VH", "MM")))
    dm = _dm(tmp_path, "etram3")
    assert dm.class_names == ETRAM3.names and dm.class_ids is None               # already merged on disk


def test_unknown_name_is_one_line_naming_it(root):
    expected = "unknown class map 'etram5' (data.class_map); known: auto, etram, etram3, gen1, gen4"
    with pytest.raises(ValueError) as err:
        _dm(root, "etram5").class_names
    assert str(err.value) == expected
    with pytest.raises(ValueError) as err:
        EvalSetup.from_dataset(root, EvalConfig(), "etram5")
    assert str(err.value) == expected


def test_the_runner_reads_the_same_map_and_refuses_an_unknown_name(root):
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import load_run_config
    from evdet.experiments.running.record_keeping import eval_geometry

    cfg = load_run_config(["demo"], [f"data.root={root}", "data.class_map=gen4"])
    assert eval_geometry(cfg)[0] == GEN4
    cfg = load_run_config(["demo"], [f"data.root={root}", "data.class_map=etram5"])
    with pytest.raises(RecordError, match=r"^unknown class map 'etram5' \(data.class_map\); known: auto, etram,"):
        eval_geometry(cfg)
