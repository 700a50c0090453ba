"""StreamStates: per-slot recurrent state, reset at sequence starts, detached between batches."""

import torch

from evdet.training.state import StreamStates


def state_of(value: float, batch: int = 1, requires_grad: bool = False):
    """Two stages of (h, c), every entry = value."""
    out = []
    for shape in ((batch, 2, 3, 3), (batch, 4, 1, 2)):
        h = torch.full(shape, value, requires_grad=requires_grad)
        out.append((h, h * 2))
    return out


def test_all_fresh_items_give_none():
    st = StreamStates()
    assert st.gather([0, 1], [True, True], torch.device("cpu")) is None
    st.scatter([0], state_of(1.0))
    assert st.gather([0, -1], [True, False], torch.device("cpu")) is None  # reset, random item


def test_gather_zeroes_reset_and_random_items_and_keeps_carried_ones():
    st = StreamStates()
    st.scatter([3, 7], [(torch.cat([h1, h2]), torch.cat([c1, c2]))
                        for (h1, c1), (h2, c2) in zip(state_of(1.0), state_of(5.0))])
    got = st.gather([7, 3, -1], [False, True, False], torch.device("cpu"))
    for (h, c) in got:
        assert h.shape[0] == 3
        assert torch.all(h[0] == 5.0) and torch.all(c[0] == 10.0)   # slot 7 carried
        assert torch.all(h[1] == 0.0) and torch.all(c[1] == 0.0)    # slot 3 reset (sequence start)
        assert torch.all(h[2] == 0.0)                               # random item


def test_scatter_detaches_and_skips_random_items():
    st = StreamStates()
    s = state_of(2.0, batch=2, requires_grad=True)
    st.scatter([-1, 4], [(h * 1.0, c * 1.0) for h, c in s])
    assert len(st) == 1 and st.has(4) and not st.has(-1)
    got = st.gather([4], [False], torch.device("cpu"))
    assert all(not h.requires_grad and not c.requires_grad for h, c in got)
    st.reset()
    assert len(st) == 0
