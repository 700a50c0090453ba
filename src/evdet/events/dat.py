"""Prophesee DAT files (Gen1 ``*_td.dat``, N-CARS): header parsing and decoding.

On-disk layout::

    % Data file containing Event2D events.      ASCII header lines, each starting with "% "
    % Version 2                                  (optional "% Height H" / "% Width W" /
    % Date 2017-10-31 11:27:54                    "% geometry WxH" lines give the sensor size)
    <uint8 event type = 0x00 (2D CD event)><uint8 event size = 8>
    N records of 8 bytes, little-endian:
        uint32 t      microseconds
        uint32 data   x = bits 0-13, y = bits 14-27, polarity = bits 28-31

Files without any header line have no type/size bytes either (Prophesee's loader convention).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evdet.events.types import EventFormatError, check_time_order, make_events

_RECORD = np.dtype([("t", "<u4"), ("data", "<u4")])
_CD_TYPES = (0x00, 0x0C)   # 2D CD event; 0x0C is what some Prophesee tools write for "CD"


@dataclass(frozen=True)
class DatHeader:
    """Parsed DAT header: byte offset of the first record and the sensor size if stated."""

    data_offset: int
    event_type: int
    event_size: int
    height: int | None
    width: int | None
    lines: tuple[str, ...]


def read_dat_header(path: str | Path) -> DatHeader:
    """Parse the ``%`` header of a DAT file and the event type/size bytes after it.

    Raises:
        EventFormatError: an empty file, unsupported event type or size, or a file that ends
            inside the header.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise EventFormatError(f"{path}: empty file (0 bytes); a DAT file starts with '%' header "
                               "lines or 8-byte event records")
    lines: list[str] = []
    height = width = None
    with open(path, "rb") as fh:
        while True:
            pos = fh.tell()
            line = fh.readline()
            if not line.startswith(b"%"):
                fh.seek(pos)
                break
            text = line.decode("latin-1").rstrip("\r\n")
            lines.append(text)
            words = text[1:].split()
            if len(words) >= 2 and words[0].lower() == "height":
                height = _parse_int(words[1], path, "Height")
            elif len(words) >= 2 and words[0].lower() == "width":
                width = _parse_int(words[1], path, "Width")
            elif len(words) >= 2 and words[0].lower() == "geometry":
                width, height = _parse_geometry(words[1], path)
        if lines:
            type_size = fh.read(2)
            if len(type_size) < 2:
                raise EventFormatError(f"{path}: file ends after the header (no event type/size bytes)")
            event_type, event_size = type_size[0], type_size[1]
        else:
            event_type, event_size = 0x00, _RECORD.itemsize
        offset = fh.tell()
    if event_type not in _CD_TYPES:
        raise EventFormatError(f"{path}: event type 0x{event_type:02x} is not a 2D CD event (0x00)")
    if event_size != _RECORD.itemsize:
        raise EventFormatError(f"{path}: event size {event_size} bytes, expected {_RECORD.itemsize}")
    return DatHeader(offset, event_type, event_size, height, width, tuple(lines))


def read_dat(path: str | Path, t_start_us: int | None = None, t_end_us: int | None = None, *,
             height: int | None = None, width: int | None = None) -> np.ndarray:
    """Events of a DAT file in ``[t_start_us, t_end_us)`` as an ``EVENT_DTYPE`` array.

    The file is memory-mapped and the window found by binary search on t, so a window read does
    not decode (or scan) the whole file; time order is checked on the events read.

    Args:
        height, width: sensor size; defaults to the header's. When known, events outside it are
            dropped with a warning.
    """
    path = Path(path)
    header = read_dat_header(path)
    records = _map_records(path, header)
    # Bisect on single elements of the memory map (np.searchsorted would copy the strided t
    # column); time order is checked on the records that are read.
    t = records["t"]
    lo = 0 if t_start_us is None else bisect.bisect_left(t, int(t_start_us))
    hi = len(t) if t_end_us is None else bisect.bisect_left(t, int(t_end_us))
    chunk = np.asarray(records[lo:max(lo, hi)])
    check_time_order(chunk["t"], str(path), "t", offset=lo)
    data = chunk["data"]
    height = header.height if height is None else height
    width = header.width if width is None else width
    return make_events(chunk["t"].astype(np.int64), data & 0x3FFF, (data >> 14) & 0x3FFF,
                       (data >> 28) & 0xF, source=str(path), height=height, width=width)


def _map_records(path: Path, header: DatHeader) -> np.ndarray:
    size = path.stat().st_size - header.data_offset
    trailing = size % _RECORD.itemsize
    if trailing:
        raise EventFormatError(f"{path}: truncated, {trailing} trailing bytes after the last full "
                               f"{_RECORD.itemsize}-byte record")
    if size == 0:
        return np.zeros(0, dtype=_RECORD)
    return np.memmap(path, dtype=_RECORD, mode="r", offset=header.data_offset)


def _parse_int(word: str, path: Path, key: str) -> int:
    try:
        return int(word)
    except ValueError:
        raise EventFormatError(f"{path}: header line '{key}' holds {word!r}, expected an integer") from None


def _parse_geometry(word: str, path: Path) -> tuple[int, int]:
    """'640x480' -> (640, 480) as (width, height)."""
    parts = word.lower().split("x")
    if len(parts) != 2:
        raise EventFormatError(f"{path}: header line 'geometry' holds {word!r}, expected WxH")
    return _parse_int(parts[0], path, "geometry"), _parse_int(parts[1], path, "geometry")
