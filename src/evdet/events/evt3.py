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


@numba.njit(cache=True, nogil=True)
def decode_kernel(words, state, stop_us, t, x, y, p, k, status):
    """Decode from word ``state[0]`` into the output columns from index ``k``; returns the new k.

    Stops before the first event with t >= stop_us (status[3] = 1), when the outputs cannot hold
    one more word's events (status[3] = 2), or at the end of the words (status[3] = 3). Errors set
    status[0] (1 reserved type, 2 time high decreases), status[1] (word) and status[2] (value).
    """
    n = words.shape[0]
    capacity = t.shape[0]
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
    i = state[0]
    status[3] = 3
    while i < n:
        if k + 12 > capacity:
            status[3] = 2
            break
        w = np.int64(words[i])
        kind = w >> 12
        if kind == 0x0:
            cur_y = w & 0x7FF
            have_y = True
        elif kind == 0x2:
            if have_high and have_y:
                if cur_t >= stop_us:
                    status[3] = 1
                    break
                t[k] = cur_t
                x[k] = w & 0x7FF
                y[k] = cur_y
                p[k] = (w >> 11) & 1
                k += 1
        elif kind == 0x3:
            base_x = w & 0x7FF
            base_p = (w >> 11) & 1
            have_base = True
        elif kind == 0x4 or kind == 0x5:
            width = 12 if kind == 0x4 else 8
            if have_high and have_y and have_base:
                if cur_t >= stop_us:
                    status[3] = 1
                    break
                for b in range(width):
                    if (w >> b) & 1:
                        t[k] = cur_t
                        x[k] = base_x + b
                        y[k] = cur_y
                        p[k] = base_p
                        k += 1
            base_x += width
        elif kind == 0x6:
            low_us = w & 0xFFF
            cur_t = loops_us + high_us + low_us
        elif kind == 0x8:
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
    return k
