"""How every tool ends: an expected failure is one line naming the file, never a
traceback from deep inside mmcv, and a distributed process group is always closed."""
from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Any, Callable

import torch.distributed as dist
from mmengine.config import Config, DictAction

from ..errors import DataError, OptionError

#: Exit status for bad data or an output that cannot be written.
EXIT_ERROR = 1
#: Exit status for a bad command line, as argparse's.
EXIT_USAGE = 2

WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EDQUOT}


def error_line(e: BaseException) -> str:
    """The one line a tool prints for an error. A DataError raised in a data loader
    worker comes back wrapped in the worker's traceback: its last line is the message."""
    text = str(e).strip()
    if not text:
        return type(e).__name__
    last = text.splitlines()[-1]
    marker = 'DataError: '
    if '\n' in text and marker in last:
        return last.split(marker, 1)[1]
    return ' '.join(line.strip() for line in text.splitlines())


def write_error_line(e: OSError) -> str | None:
    """One line for an output that cannot be written (disk full, read-only, quota),
    or None for other OS errors."""
    if e.errno not in WRITE_ERRNOS:
        return None
    where = f' {e.filename}' if e.filename else ''
    return (f'cannot write{where}: {e.strerror or e}; earlier outputs are untouched, '
            'free space or fix permissions and rerun to continue')


def close_distributed() -> None:
    """Destroy the process group before the interpreter exits: left to teardown, gloo's
    threads can abort the process (SIGABRT) after its work is done."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_tool(prog: str, main: Callable[[], Any],
             expected: tuple[type[BaseException], ...] = ()) -> int:
    """Run a tool's ``main`` and return its exit status: 0, or ``EXIT_ERROR`` after
    printing ``prog: error: ...`` for bad data, an ``expected`` error or a failed write
    (``EXIT_USAGE`` for contradicting options)."""
    try:
        main()
    except OptionError as e:
        return _fail(prog, error_line(e), EXIT_USAGE)
    except (DataError, *expected) as e:
        return _fail(prog, error_line(e))
    except OSError as e:
        line = write_error_line(e)
        if line is None:
            raise
        return _fail(prog, line)
    finally:
        close_distributed()
    return 0


def _fail(prog: str, line: str, status: int = EXIT_ERROR) -> int:
    print(f'{prog}: error: {line}', file=sys.stderr, flush=True)
    return status


def add_runner_arguments(parser: argparse.ArgumentParser, example: str) -> None:
    """The options every runner tool takes as mmdet's do: --cfg-options (``example``: a
    setting it is often given), --launcher and --local-rank."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=f'override config settings, e.g. {example}')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser: argparse.ArgumentParser,
                      argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with LOCAL_RANK exported for a launcher that passes it as an
    option (torch.distributed.launch) rather than in the environment."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_labelling_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a tool that labels a split image by image (gen_pseudo, relabel):
    its share of the images or a launcher, and config overrides."""
    parser.add_argument('--shard', default='0/1',
                        help='i/N: do every N-th image, from the i-th')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)


def labelling_setup(args: argparse.Namespace) -> tuple[Config, int, int]:
    """A labelling tool's config (with ``--cfg-options``) and its (shard, shards): from
    ``--shard``, or the rank and world size under a launcher (the group started here)."""
    from .launch import shard_of
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return (cfg, *shard_of(args.shard, args.launcher, cfg))
