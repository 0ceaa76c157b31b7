"""Run a Python script and write its peak resident memory (MB) to a file.

    python bench/peak_rss.py OUT_FILE SCRIPT [ARGS...]

The peak is the process's own ``VmHWM``. ``ru_maxrss`` would not do: Linux carries it
over fork and exec, so a child of a 1 GB parent (the bench, once it has built models)
reports at least 1 GB whatever it does.
"""
import atexit
import runpy
import sys
from pathlib import Path

out, script, *args = sys.argv[1:]


def _vm_hwm_mb() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) / 1024
    raise RuntimeError('no VmHWM in /proc/self/status (Linux only)')


@atexit.register
def _write() -> None:
    Path(out).write_text(str(_vm_hwm_mb()))


sys.argv = [script, *args]
runpy.run_path(script, run_name='__main__')
