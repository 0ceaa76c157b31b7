"""Run a Python script and write its peak resident memory (MB) to a file.

    python bench/peak_rss.py OUT_FILE SCRIPT [ARGS...]

A child's own ``ru_maxrss``: unlike RUSAGE_CHILDREN in the parent, it is not
the maximum over every earlier child.
"""
import atexit
import resource
import runpy
import sys
from pathlib import Path

out, script, *args = sys.argv[1:]


@atexit.register
def _write() -> None:
    Path(out).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


sys.argv = [script, *args]
runpy.run_path(script, run_name='__main__')
