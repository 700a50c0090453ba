"""`evdet info` and the recording summary behind it."""

import numpy as np
from typer.testing import CliRunner

from evdet.cli import app
from evdet.events import make_events, write_events_h5, write_raw
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
