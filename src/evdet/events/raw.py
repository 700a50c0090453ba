"""Prophesee RAW files (EVT 2.0 / EVT 3.0): header, sensor size, and reading.

On-disk layout::

    % date 2020-09-25 07:48:31              ASCII header lines, each starting with "%"
    % evt 2.0                               format: "% evt 2.0|3.0" or "% format EVT2|EVT3;height=H;width=W"
    % geometry 640x480                      optional sensor size (width x height)
    % plugin_name hal_plugin_gen3_fx3       sensor family, used when no size is stated
    % end                                   optional end-of-header marker
    <EVT 2.0: little-endian uint32 words | EVT 3.0: little-endian uint16 words>

The sensor size comes from ``% geometry`` / ``% format``, else from the plugin name or
``% sensor_generation`` (gen41 / gen4 / imx636 -> 1280x720, gen31 / gen3 -> 640x480,
genx320 -> 320x320), else from the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from evdet.events.types import EventFormatError

EvtFormat = Literal["evt2", "evt3"]

# (pattern on plugin name / sensor generation, (height, width)); first match wins.
_SENSOR_FAMILIES: tuple[tuple[str, tuple[int, int]], ...] = (
    (r"genx320", (320, 320)),
    (r"gen4(1|\.1)?(?!\d)|imx636|imx646", (720, 1280)),
    (r"gen3(1|\.1|\.0)?(?!\d)", (480, 640)),
)
_MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class RawHeader:
    """Parsed RAW header."""

    data_offset: int
    evt_format: EvtFormat | None
    height: int | None
    width: int | None
    fields: dict


def read_raw_header(path: str | Path) -> RawHeader:
    """Parse the ``%`` header of a RAW file (format, sensor size, all key/value lines).

    Raises:
        EventFormatError: an empty file, a header that does not end within 1 MiB, or malformed size fields.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise EventFormatError(f"{path}: empty file (0 bytes): no header and no events")
    fields: dict[str, str] = {}
    with open(path, "rb") as fh:
        while True:
            pos = fh.tell()
            if pos > _MAX_HEADER_BYTES:
                raise EventFormatError(f"{path}: header longer than {_MAX_HEADER_BYTES} bytes")
            line = fh.readline()
            if not line.startswith(b"%"):
                fh.seek(pos)
                break
            text = line[1:].decode("latin-1").strip()
            key, _, value = text.partition(" ")
            if key.lower() == "end":
                break
            fields[key.lower()] = value.strip()
        offset = fh.tell()
    evt_format = _evt_format(fields, path)
    height, width = _stated_size(fields, path)
    if height is None or width is None:
        family = fields.get("plugin_name", "")
        if fields.get("sensor_generation"):
            family += " gen" + fields["sensor_generation"]
        height, width = infer_sensor_size(family)
    return RawHeader(offset, evt_format, height, width, fields)


def infer_sensor_size(plugin_name: str) -> tuple[int | None, int | None]:
    """(height, width) of a Prophesee sensor family named in a plugin name, or (None, None).

    ``hal_plugin_gen41_evk3`` -> (720, 1280); ``hal_plugin_gen3_fx3`` -> (480, 640).
    """
    name = plugin_name.lower()
    for pattern, size in _SENSOR_FAMILIES:
        if re.search(pattern, name):
            return size
    return None, None


class RawEventReader:
    """Reads time windows of a RAW (EVT 2.0 / 3.0) file.

    RAW files have no index: windows are found by decoding. The reader keeps its decoder's
    position, so consecutive (non-decreasing) windows decode the file once in total; a window
    that starts before the previous one ended restarts from the beginning of the file.

    Use as a context manager::

        with RawEventReader(path) as reader:
            ev = reader.read(t_start_us, t_end_us)       # half-open [t_start_us, t_end_us)

    Args:
        height, width: sensor size overriding the header (needed when the header states none and
            the plugin name is unknown). Events outside the sensor are dropped with a warning.

    Raises:
        EventFormatError: unknown format, truncated data, or no known sensor size.
    """

    def __init__(self, path: str | Path, *, height: int | None = None, width: int | None = None):
        from evdet.events.evt_stream import EvtStreamDecoder

        self.path = Path(path)
        header = read_raw_header(self.path)
        if header.evt_format is None:
            raise EventFormatError(f"{self.path}: the header names no event format ('% evt 2.0', "
                                   f"'% evt 3.0' or '% format EVT2/EVT3'); cannot decode")
        self.evt_format: EvtFormat = header.evt_format
        self.height = header.height if height is None else int(height)
        self.width = header.width if width is None else int(width)
        if self.height is None or self.width is None:
            raise EventFormatError(f"{self.path}: no sensor size in the header and plugin "
                                   f"{header.fields.get('plugin_name')!r} is unknown; "
                                   f"pass height= and width=")
        word_dtype = np.dtype("<u4") if self.evt_format == "evt2" else np.dtype("<u2")
        n_bytes = self.path.stat().st_size - header.data_offset
        if n_bytes % word_dtype.itemsize:
            raise EventFormatError(f"{self.path}: truncated, {n_bytes % word_dtype.itemsize} trailing "
                                   f"bytes after the last {word_dtype.itemsize}-byte word")
        words = (np.memmap(self.path, dtype=word_dtype, mode="r", offset=header.data_offset)
                 if n_bytes else np.zeros(0, dtype=word_dtype))
        self._decoder = EvtStreamDecoder(words, self.evt_format, source=str(self.path))

    def __enter__(self) -> "RawEventReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the memory map."""
        self._decoder = None

    def read(self, t_start_us: int | None = None, t_end_us: int | None = None) -> np.ndarray:
        """Events with ``t_start_us <= t < t_end_us`` (None = open end) as an ``EVENT_DTYPE`` array."""
        decoder = self._decoder
        if decoder is None:
            raise ValueError(f"{self.path}: reader is closed")
        last = decoder.last_stop_us
        if t_start_us is None:
            if last is not None:
                decoder.reset()
        else:
            if last is not None and int(t_start_us) < last:
                decoder.reset()
                last = None
            if last is None or int(t_start_us) > last:
                decoder.skip_until(int(t_start_us))
        return decoder.events_until(t_end_us, self.height, self.width)


def read_raw(path: str | Path, t_start_us: int | None = None, t_end_us: int | None = None, *,
             height: int | None = None, width: int | None = None) -> np.ndarray:
    """Events of a RAW file in ``[t_start_us, t_end_us)`` as an ``EVENT_DTYPE`` array
    (decoded from the start of the file; see :class:`RawEventReader` for consecutive windows)."""
    with RawEventReader(path, height=height, width=width) as reader:
        return reader.read(t_start_us, t_end_us)


def _evt_format(fields: dict, path: Path) -> EvtFormat | None:
    version = fields.get("evt", "")
    fmt = fields.get("format", "").split(";")[0].strip().upper()
    if version in ("2.0", "2") or fmt == "EVT2":
        return "evt2"
    if version in ("3.0", "3") or fmt == "EVT3":
        return "evt3"
    if version or fmt:
        raise EventFormatError(f"{path}: unsupported event format {version or fmt!r} "
                               f"(supported: EVT 2.0, EVT 3.0)")
    return None


def _stated_size(fields: dict, path: Path) -> tuple[int | None, int | None]:
    """(height, width) from '% geometry WxH' or '% format ...;height=H;width=W'."""
    height = width = None
    geometry = fields.get("geometry")
    if geometry:
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", geometry)
        if not match:
            raise EventFormatError(f"{path}: header 'geometry' holds {geometry!r}, expected WxH")
        width, height = int(match.group(1)), int(match.group(2))
    for part in fields.get("format", "").split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip() in ("height", "width"):
            if not value.strip().isdigit():
                raise EventFormatError(f"{path}: header 'format' {key.strip()}={value!r} is not an integer")
            if key.strip() == "height":
                height = int(value)
            else:
                width = int(value)
    return height, width
