"""Prophesee EVT 3.0 decoding kernel (numba), below the stream decoder ``evdet.events.evt_stream``
that drives it (whole-stream decoding: ``evt_stream.decode_evt3``).

EVT 3.0 is a stream of little-endian 16-bit words; the 4 high bits give the word type and the
decoder keeps a state (time, y, vector base x, polarity)::

    EVT_ADDR_Y    0x0  bits 10-0 y (bit 11: system type)          sets y
    EVT_ADDR_X    0x2  bit 11 polarity, bits 10-0 x                one event at (x, y, p, t)
    VECT_BASE_X   0x3  bit 11 polarity, bits 10-0 x                sets base x and polarity
    VECT_12       0x4  bits 11-0 mask: event at base x + i per set bit i, then base x += 12
    VECT_8        0x5  bits 7-0 mask: same, then base x += 8
    EVT_TIME_LOW  0x6  bits 11-0 time bits 11-0
    CONTINUED_4   0x7, EXT_TRIGGER 0xA, OTHERS 0xE, CONTINUED_12 0xF    (skipped)
    EVT_TIME_HIGH 0x8  bits 11-0 time bits 23-12

Time is 24 bits and wraps every 2**24 us (16.8 s): a drop of time high by more than half the
period is a wrap and is unwrapped; a smaller drop is a corrupt stream (error). Events before the
first TIME_HIGH, before the first EVT_ADDR_Y, or vectors before the first VECT_BASE_X are dropped,
as Prophesee's decoder does.
"""

from __future__ import annotations

import numba
import numpy as np

TIME_PERIOD_US = 1 << 24
WORD_DTYPE = np.dtype("<u2")
MAX_EVENTS_PER_WORD = 12
# Decoder state, kept between calls so that a stream can be decoded window by window:
# [next word, have time high, time high us, time low us, wrapped us, have y, y, have base, base x, base p]
STATE_SIZE = 10


# Checks gathered while decoding, per call: [last event t us, t decreased (0/1), max x, max y].
CHECKS_SIZE = 4


def new_checks() -> np.ndarray:
    """Empty checks array for :func:`decode_kernel` (no event seen yet)."""
    return np.array([np.iinfo(np.int64).min, 0, -1, -1], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def decode_kernel(words, state, stop_us, t, x, y, p, k, status, checks):
    """Decode from word ``state[0]`` into the output columns from index ``k``; returns the new k.

    Stops before the first event with t >= stop_us (status[3] = 1), when the outputs cannot hold
    one more word's events (status[3] = 2), or at the end of the words (status[3] = 3). Errors set
    status[0] (1 reserved type, 2 time high decreases), status[1] (word) and status[2] (value).
    ``checks`` (see ``new_checks``) is updated so that a caller can skip validating the output:
    whether an event's time went below the previous event's, and upper bounds of x and y.

    Speed: the word types are tested most frequent first, "may emit" is one flag kept up to
    date, and vector words write all 12 (8) slots and advance by each mask bit (no branch per
    bit); slots past the last set bit are overwritten by the next event.
    """
    n = words.shape[0]
    limit = t.shape[0] - MAX_EVENTS_PER_WORD
    have_high = state[1] != 0
    high_us = state[2]
    low_us = state[3]
    loops_us = state[4]
    have_y = state[5] != 0
    cur_y = state[6]
    have_base = state[7] != 0
    base_x = state[8]
    base_p = state[9]
    cur_t = loops_us + high_us + low_us
    ready = have_high and have_y
    last_t = checks[0]
    decreased = checks[1]
    max_x = checks[2]
    max_y = checks[3]
    i = state[0]
    status[3] = 3
    while i < n:
        if k > limit:
            status[3] = 2
            break
        w = np.int64(words[i])
        kind = w >> 12
        if kind == 0x2:                                   # EVT_ADDR_X
            if ready:
                if cur_t >= stop_us:
                    status[3] = 1
                    break
                xv = w & 0x7FF
                t[k] = cur_t
                x[k] = xv
                y[k] = cur_y
                p[k] = (w >> 11) & 1
                k += 1
                max_x = max(max_x, xv)
                if cur_t < last_t:
                    decreased = 1
                last_t = cur_t
        elif kind == 0x0:                                 # EVT_ADDR_Y
            cur_y = w & 0x7FF
            have_y = True
            ready = have_high
            max_y = max(max_y, cur_y)
        elif kind == 0x4 or kind == 0x5:                  # VECT_12 / VECT_8
            width = 12 if kind == 0x4 else 8
            if ready and have_base:
                mask = w & ((1 << width) - 1)
                if mask:
                    if cur_t >= stop_us:
                        status[3] = 1
                        break
                    for b in range(width):
                        t[k] = cur_t
                        x[k] = base_x + b
                        y[k] = cur_y
                        p[k] = base_p
                        k += (mask >> b) & 1
                    if base_x + width - 1 > max_x:        # rare: near the right edge
                        top = width - 1
                        while not (mask >> top) & 1:
                            top -= 1
                        max_x = max(max_x, base_x + top)
                    if cur_t < last_t:
                        decreased = 1
                    last_t = cur_t
            base_x += width
        elif kind == 0x6:                                 # EVT_TIME_LOW
            low_us = w & 0xFFF
            cur_t = loops_us + high_us + low_us
        elif kind == 0x3:                                 # VECT_BASE_X
            base_x = w & 0x7FF
            base_p = (w >> 11) & 1
            have_base = True
        elif kind == 0x8:                                 # EVT_TIME_HIGH
            new_high = (w & 0xFFF) << 12
            if have_high and new_high < high_us:
                if high_us - new_high > (1 << 23):       # more than half the period: a wrap
                    loops_us += np.int64(1) << 24
                else:
                    status[0] = 2
                    status[1] = i
                    status[2] = loops_us + new_high
                    break
            high_us = new_high
            have_high = True
            ready = have_y
            cur_t = loops_us + high_us + low_us
        elif kind == 0x7 or kind == 0xA or kind == 0xE or kind == 0xF:
            pass
        else:
            status[0] = 1
            status[1] = i
            status[2] = kind
            break
        i += 1
    state[0] = i
    state[1] = 1 if have_high else 0
    state[2] = high_us
    state[3] = low_us
    state[4] = loops_us
    state[5] = 1 if have_y else 0
    state[6] = cur_y
    state[7] = 1 if have_base else 0
    state[8] = base_x
    state[9] = base_p
    checks[0] = last_t
    checks[1] = decreased
    checks[2] = max_x
    checks[3] = max_y
    return k
