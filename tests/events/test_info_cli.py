"""`evdet info` and the recording summary behind it."""

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.events import EventFormatError, make_events, read_events, write_events_h5, write_raw
from evdet.events.recording import describe_recording

runner = CliRunner()


def test_describe_h5_without_loading(tmp_path):
    ev = make_events([1_000_000, 1_500_000, 3_000_000], [0, 1, 2], [0, 1, 2], [0, 1, 1])
    write_events_h5(tmp_path / "s.h5", ev, 4, 6)
    d = describe_recording(tmp_path / "s.h5")
    assert d == {"format": "h5", "height": 4, "width": 6, "num_events": 3, "t_first_us": 1_000_000,
                 "t_last_us": 3_000_000, "duration_s": 2.0, "rate_mev_per_s": 1.5e-6}


def test_info_command_prints_summary(tmp_path):
    ev = make_events(np.arange(0, 2_000_000, 1000), np.zeros(2000, int), np.zeros(2000, int),
                     np.zeros(2000, int))
    write_raw(tmp_path / "r.raw", ev, 720, 1280, evt_format="evt3")
    result = runner.invoke(app, ["info", str(tmp_path / "r.raw")])
    assert result.exit_code == 0, result.output
    assert "raw evt3" in result.output
    assert "1280x720" in result.output
    assert "2,000" in result.output
    assert "1.999 s" in result.output


def test_info_command_bad_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_bytes(b"% h\n\x00\x08" + b"\x00" * 5)
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1
    assert "truncated" in result.output and "Traceback" not in result.output


def write_h5_columns(path, t, height=4, width=6):
    """An HDF5 event file written column by column (no validation on the way)."""
    import h5py

    n = len(t)
    with h5py.File(path, "w") as fh:
        fh.create_dataset("events/t", data=np.asarray(t, dtype=np.int64))
        for name in ("x", "y", "p"):
            fh.create_dataset(f"events/{name}", data=np.zeros(n, np.uint8))
        fh.create_dataset("events/height", data=height)
        fh.create_dataset("events/width", data=width)


@pytest.mark.parametrize("scan_block", [1 << 22, 3])    # one block; the decrease at a block border
def test_info_refuses_decreasing_time_like_read_events(tmp_path, monkeypatch, scan_block):
    from evdet.events import h5

    monkeypatch.setattr(h5, "_SCAN_BLOCK", scan_block)
    path = tmp_path / "back.h5"
    write_h5_columns(path, [1_000_000, 1_000_001, 1_000_002, 1, 2])      # decreases at index 3
    with pytest.raises(EventFormatError) as from_read:
        read_events(path)
    with pytest.raises(EventFormatError) as from_describe:
        describe_recording(path)
    assert str(from_describe.value) == str(from_read.value) == f"{path}: events/t decreases at index 3"
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and result.output.strip() == f"error: {path}: events/t decreases at index 3"


def test_h5_time_order_check_by_blocks_finds_every_position(tmp_path, monkeypatch):
    from evdet.events import h5

    monkeypatch.setattr(h5, "_SCAN_BLOCK", 4)
    for at in range(1, 12):
        t = list(range(100, 112))
        t[at] = 0                                        # one drop at index `at`
        write_h5_columns(tmp_path / "x.h5", t)
        with h5.H5EventReader(tmp_path / "x.h5") as reader, \
                pytest.raises(EventFormatError, match=rf"decreases at index {at}$"):
            reader.check_time_order()
    write_h5_columns(tmp_path / "ok.h5", [5] * 9 + [6] * 3)              # equal times are fine
    with h5.H5EventReader(tmp_path / "ok.h5") as reader:
        reader.check_time_order()


@pytest.mark.parametrize("suffix, needle", [
    (".npy", "empty file (0 bytes), not a .npy array"),
    (".dat", "empty file (0 bytes); a DAT file starts with '%' header lines or 8-byte event records"),
    (".h5", "cannot open as HDF5"),
])
def test_info_on_an_empty_file_is_a_one_line_error(tmp_path, suffix, needle):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(EventFormatError, match=re.escape(needle)):
        read_events(path)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and result.output.startswith(f"error: {path}: ")
    assert needle in result.output and len(result.output.strip().splitlines()) == 1


def test_truncated_npy_header_is_named(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, make_events([1, 2], [0, 1], [0, 1], [0, 1]))
    path.write_bytes(path.read_bytes()[:20])                             # inside the header
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1 and result.output.startswith(f"error: {path}: cannot read as .npy")
