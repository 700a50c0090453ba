"""Prophesee EVT 2.0 decoding kernel (numba), below the stream decoder ``evdet.events.evt_stream``
that drives it (whole-stream decoding: ``evt_stream.decode_evt2``).

EVT 2.0 is a stream of little-endian 32-bit words; the 4 high bits give the word type::

    CD_OFF 0x0 / CD_ON 0x1   bits 27-22 timestamp low 6 bits, 21-11 x, 10-0 y
    EVT_TIME_HIGH 0x8        bits 27-0  timestamp bits 33-6
    EXT_TRIGGER 0xA, OTHERS 0xE, CONTINUED 0xF   (skipped)

``t = time_high << 6 | low``: 34 bits, so time high wraps every 2**34 us (about 4.8 h); a large
drop of time high is taken as a wrap and unwrapped. CD words before the first TIME_HIGH have no
time base and are dropped (as Prophesee's decoder does).
"""

from __future__ import annotations

import numba
import numpy as np

TIME_HIGH_PERIOD_US = 1 << 34
WORD_DTYPE = np.dtype("<u4")
MAX_EVENTS_PER_WORD = 1
# Decoder state, kept between calls: [next word, have time high, time high us, wrapped us]
STATE_SIZE = 4


@numba.njit(cache=True, nogil=True)
def decode_kernel(words, state, stop_us, t, x, y, p, k, status):
    """Decode from word ``state[0]`` into the output columns from index ``k``; returns the new k.

    Same stop / status protocol as ``evdet.events.evt3.decode_kernel``.
    """
    n = words.shape[0]
    capacity = t.shape[0]
    have_high = state[1] != 0
    high_us = state[2]
    loops_us = state[3]
    i = state[0]
    status[3] = 3
    while i < n:
        if k >= capacity:
            status[3] = 2
            break
        w = np.int64(words[i])
        kind = w >> 28
        if kind <= 1:
            if have_high:
                ts = loops_us + high_us + ((w >> 22) & 0x3F)
                if ts >= stop_us:
                    status[3] = 1
                    break
                t[k] = ts
                x[k] = (w >> 11) & 0x7FF
                y[k] = w & 0x7FF
                p[k] = kind
                k += 1
        elif kind == 0x8:
            new_high = (w & 0xFFFFFFF) << 6
            if have_high and new_high < high_us:
                if high_us - new_high > (np.int64(1) << 33):   # more than half the period: a wrap
                    loops_us += np.int64(1) << 34
                else:
                    status[0] = 2
                    status[1] = i
                    status[2] = loops_us + new_high
                    break
            high_us = new_high
            have_high = True
        elif kind == 0xA or kind == 0xE or kind == 0xF:
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
    state[3] = loops_us
    return k
