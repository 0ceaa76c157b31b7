"""The bench's own measuring tools."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_peak_rss_is_the_childs_own(tmp_path: Path) -> None:
    """Bug: bench/peak_rss.py read ru_maxrss, which Linux carries over fork and exec, so
    every script run from the bench (about 1 GB by then) measured 1022 MB, and the
    memory ratios read 1.0 whatever the script did."""
    script = tmp_path / 'small.py'
    script.write_text('x = bytearray(50 * 2**20)\n')
    out = tmp_path / 'mb'
    parent = ('import subprocess, sys; ballast = bytearray(600 * 2**20); '
              f'subprocess.run([sys.executable, {str(ROOT / "bench/peak_rss.py")!r}, '
              f'{str(out)!r}, {str(script)!r}], check=True)')
    subprocess.run([sys.executable, '-c', parent], check=True, timeout=120)
    assert 50 < float(out.read_text()) < 300
