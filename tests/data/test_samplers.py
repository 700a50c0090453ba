"""Sampling plans, checked against hand-written expectations."""

import numpy as np
import pytest

from evdet.data.samplers import (Window, assign_sequences_to_slots, padding_window, random_windows,
                                 sequence_chunks, stream_plan)


def test_random_windows_end_on_label_frames_and_left_pad():
    wins = random_windows([np.array([1, 4]), np.array([0])], seq_len=3)
    assert wins == [
        Window(0, 0, 2, pad_before=1),   # label at repr 1: reprs 0..1 plus one empty step first
        Window(0, 2, 5),                 # label at repr 4: reprs 2, 3, 4
        Window(1, 0, 1, pad_before=2),
    ]
    assert all(w.length == 3 and w.is_first for w in wins)


def test_sequence_chunks_flag_only_the_first_and_pad_the_last():
    assert sequence_chunks(7, num_reprs=7, seq_len=3) == [
        Window(7, 0, 3, is_first=True), Window(7, 3, 6, is_first=False),
        Window(7, 6, 7, pad_after=2, is_first=False)]


def test_assign_balances_chunks_in_order():
    # chunks per sequence 4, 1, 2, 2 over 2 slots: 0->A(4); 1->B(1); 2->B(3); 3->B(5)
    assert assign_sequences_to_slots([4, 1, 2, 2], 2, order=[0, 1, 2, 3]) == [[0], [1, 2, 3]]


def test_stream_plan_walks_sequences_in_order_and_pads_short_slots():
    plan = stream_plan([5, 2, 3], num_slots=2, seq_len=2)
    # chunks: seq0 -> 3, seq1 -> 1, seq2 -> 2; slot 0 gets seq0, slot 1 gets seq1 then seq2
    assert plan[0] == [Window(0, 0, 2, is_first=True), Window(0, 2, 4, is_first=False),
                       Window(0, 4, 5, pad_after=1, is_first=False)]
    assert plan[1] == [Window(1, 0, 2, is_first=True), Window(2, 0, 2, is_first=True),
                       Window(2, 2, 3, pad_after=1, is_first=False)]


def test_stream_plan_covers_every_representation_once():
    lengths = [9, 4, 13, 1, 6]
    plan = stream_plan(lengths, num_slots=3, seq_len=4, shuffle=True, seed=3)
    seen = {s: [] for s in range(len(lengths))}
    for slot in plan:
        assert len(slot) == len(plan[0])
        for w in slot:
            if w.seq_index >= 0:
                seen[w.seq_index].extend(range(w.start, w.stop))
    assert all(seen[s] == list(range(n)) for s, n in enumerate(lengths))


def test_padding_window_has_no_data():
    w = padding_window(4)
    assert w.seq_index == -1 and w.length == 4 and w.is_first


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="seq_len"):
        random_windows([np.array([0])], seq_len=0)
    with pytest.raises(ValueError, match="num_slots"):
        stream_plan([3], num_slots=0, seq_len=2)
