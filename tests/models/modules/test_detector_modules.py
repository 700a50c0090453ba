"""The detector with architecture modules on: recurrent state carried and reset, selection, registry,
build errors, and the checkpoint round trip."""

from pathlib import Path

import pytest
import torch
from module_cases import ALL_MODULES, INPUT_HW, SINGLE_MODULES, build, frames, model_config

from evdet.data.config import DataConfig
from evdet.models import build_model
from evdet.models.config import DeformConvConfig, LossConfig, ModelConfig, ModulesConfig, P1EnhanceConfig
from evdet.models.modules.registry import find_module, registered_modules
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule
from evdet.training.predict import load_module
from evdet.training.state import StreamStates


def assert_heads_close(a, b, tol=1e-5):
    torch.testing.assert_close(a.obj_logits, b.obj_logits, rtol=tol, atol=tol)
    torch.testing.assert_close(a.cls_logits, b.cls_logits, rtol=tol, atol=tol)
    torch.testing.assert_close(a.boxes, b.boxes, rtol=tol, atol=tol)


def test_modules_off_by_default_builds_the_plain_network():
    plain = build_model(ModelConfig(preset="nano"), 2, INPUT_HW)
    assert plain.level_modules is None
    assert all(stage.refine is None for stage in plain.backbone.stages)
    assert not any("refine" in k or "offset_mask" in k for k in plain.state_dict())


def test_state_layout_per_stage():
    det = build()
    out = det(frames(2, 1, 0))
    sizes = [len(s) for s in out.states]
    assert sizes == [2, 4, 2, 4]   # temporal attention on stages 2 and 4 adds (memory, valid)
    memory, valid = out.states[1][2:]
    assert memory.shape == (2, 2, *out.states[1][0].shape[1:]) and valid.tolist() == [[0.0, 1.0]] * 2


@pytest.mark.parametrize("name", sorted(SINGLE_MODULES))
def test_t_steps_in_one_call_equal_steps_with_the_state_carried(name):
    det = build(SINGLE_MODULES[name])
    x = frames(2, 3, 1)
    with torch.no_grad():
        whole = det(x)
        states, heads = None, []
        for t in range(3):
            out = det(x[:, t], states)
            states, heads = out.states, heads + [out.head]
    for b in range(2):  # whole.head items are row-major (b, t)
        for t in range(3):
            torch.testing.assert_close(whole.head.obj_logits[b * 3 + t], heads[t].obj_logits[b], rtol=1e-5, atol=1e-5)
    for got, want in zip(whole.states, states):
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


def test_selection_picks_the_same_items():
    det = build()
    x = frames(2, 3, 2)
    select = torch.tensor([[True, False, True], [False, True, False]])
    with torch.no_grad():
        full = det(x)
        part = det(x, select=select)
    rows = [0, 2, 4]  # (0, 0), (0, 2), (1, 1) row-major
    torch.testing.assert_close(part.head.obj_logits, full.head.obj_logits[rows])


def test_stream_chunks_through_stream_states_equal_one_long_run_and_reset_at_starts():
    det = build()
    x = frames(2, 4, 3)
    store = StreamStates()
    with torch.no_grad():
        whole = det(x)
        first = det(x[:, :2], store.gather([0, 1], [True, True], torch.device("cpu")))
        store.scatter([0, 1], first.states)
        second = det(x[:, 2:], store.gather([0, 1], [False, False], torch.device("cpu")))
        fresh = det(x[:, 2:])
        restart = det(x[:, 2:], store.gather([0, 1], [True, False], torch.device("cpu")))
    n = 2
    for b in range(2):
        torch.testing.assert_close(second.head.obj_logits[b * n:(b + 1) * n], whole.head.obj_logits[b * 4 + 2:b * 4 + 4],
                                   rtol=1e-5, atol=1e-5)
    # item 0 restarts (memory and LSTM state zeroed): as a fresh run; item 1 continues
    torch.testing.assert_close(restart.head.obj_logits[:2], fresh.head.obj_logits[:2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(restart.head.obj_logits[2:], second.head.obj_logits[2:], rtol=1e-5, atol=1e-5)
    # the saved bookkeeping holds the module state too and comes back equal
    saved = store.state_dict()
    assert [len(parts) for parts in saved[0]] == [2, 4, 2, 4]
    again = StreamStates()
    again.load_state_dict(saved)
    for a, b in zip(again.gather([0], [False], torch.device("cpu")), store.gather([0], [False], torch.device("cpu"))):
        assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_registry_finds_the_worked_example_and_names_unknown_modules():
    assert "channel_scale" in registered_modules()
    assert find_module("channel_scale").site == "level"
    with pytest.raises(ValueError, match=r"model.modules.extra: unknown module 'nope'.*channel_scale"):
        build_model(model_config(ModulesConfig(extra=("nope",))), 2, INPUT_HW)


def test_worked_example_is_identity_at_init():
    torch.manual_seed(0)
    plain = build_model(model_config(ModulesConfig()), 2, INPUT_HW).eval()
    with_extra = build_model(model_config(ModulesConfig(extra=("channel_scale",))), 2, INPUT_HW).eval()
    missing, unexpected = with_extra.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.endswith(".scale") for k in missing) and len(missing) == 4
    x = frames(1, 2, 4)
    with torch.no_grad():
        assert torch.equal(with_extra(x).head.obj_logits, plain(x).head.obj_logits)


def test_p1_enhance_needs_a_stride_4_level():
    cfg = ModelConfig(preset="nano", modules=ModulesConfig(p1_enhance=P1EnhanceConfig(kind="refine")))
    with pytest.raises(ValueError, match="p1_enhance.*stride-4"):
        build_model(cfg, 2, INPUT_HW)


def test_unknown_choice_built_in_python_is_named():
    cfg = ModelConfig(preset="nano", modules=ModulesConfig(deform_conv=DeformConvConfig(where="neck")))
    with pytest.raises(ValueError, match=r"model.modules.deform_conv.where: 'neck' is not one of"):
        build_model(cfg, 2, INPUT_HW)


def test_checkpoint_with_modules_rebuilds_the_same_network(tmp_path: Path):
    torch.manual_seed(0)
    module = DetectionModule(DataConfig(), model_config(ALL_MODULES), LossConfig(), TrainConfig(), 2, INPUT_HW,
                             20, ("car", "pedestrian"))
    build_net = build()  # same config, awake weights
    module.model.load_state_dict(build_net.state_dict())
    module.eval()
    ckpt = tmp_path / "m.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)
    loaded = load_module(ckpt).eval()
    assert loaded.model_cfg.modules == ALL_MODULES
    x = frames(2, 2, 5)
    with torch.no_grad():
        assert_heads_close(loaded.model(x).head, module.model(x).head, tol=0)
