"""Run mmengine's distributed launchers on CPU-only machines.

mmengine 0.10.7's pytorch/slurm launchers call ``torch.cuda.set_device`` and
default to NCCL, and its runner wraps models in DDP with ``device_ids=[rank]``;
all three fail without a GPU. When no GPU is visible we initialise the
process group with gloo ourselves (the runner then skips its own init) and
make DDP run on CPU. With GPUs, nothing is changed. Tools without a runner
(gen_pseudo) start their process group through ``init_distributed``.
"""
from __future__ import annotations

import argparse
import os
import subprocess

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.dist import init_dist

from mmdet.utils import setup_cache_size_limit_of_dynamo

from ..errors import OptionError


def _export_slurm_env(port: str | None = None) -> None:
    """Translate SLURM variables into torchrun's, as mmengine's slurm launcher does."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    addr = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', port or '29500')
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = str(int(os.environ.get('SLURM_LOCALID', 0)))


def _dist_cfg(cfg: Config | None) -> dict:
    return dict(((cfg or {}).get('env_cfg') or {}).get('dist_cfg') or {})


def _init_gloo(cfg: Config | None, launcher: str) -> None:
    if launcher == 'slurm':
        _export_slurm_env(_dist_cfg(cfg).get('port'))
    elif launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} is not supported without a GPU; '
                         "use 'pytorch' (torchrun) or 'slurm'")
    timeout = _dist_cfg(cfg).get('timeout')
    dist.init_process_group(backend='gloo', **({} if timeout is None else {'timeout': timeout}))


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Initialise gloo and CPU DDP for ``launcher`` when no GPU is visible (a config's
    ``sync_bn`` left off: SyncBatchNorm has no CPU implementation)."""
    if launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return
    _init_gloo(cfg, launcher)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None  # CPU modules take no device ids
    cfg.model_wrapper_cfg = wrapper
    if cfg.get('sync_bn'):  # torch's SyncBatchNorm runs on GPUs only
        print(f'[launch] sync_bn={cfg.sync_bn!r} left off: no GPU, each process keeps its '
              'own BatchNorm statistics', flush=True)
        cfg.sync_bn = None


def init_distributed(launcher: str, cfg: Config | None = None) -> tuple[int, int]:
    """(rank, world size) of a tool that runs without a runner, its process group
    started as a runner's would be: on the GPU of ``LOCAL_RANK`` with NCCL (mmengine's
    ``init_dist``, so that collectives run on this rank's GPU), or with gloo on CPU."""
    if launcher == 'none':
        return 0, 1
    if not dist.is_initialized():
        if torch.cuda.is_available():
            kwargs = _dist_cfg(cfg)
            if launcher != 'slurm':  # only mmengine's slurm launcher takes a port
                kwargs.pop('port', None)
            kwargs.setdefault('backend', 'nccl')
            init_dist(launcher, **kwargs)  # sets this rank's GPU (LOCAL_RANK; slurm: its task id)
        else:
            _init_gloo(cfg, launcher)
    return dist.get_rank(), dist.get_world_size()


def mmcv_ops_problem(gpu_visible: bool, compiled_cuda: str) -> str | None:
    """Why mmcv cannot run on this machine's GPU, if it cannot: an env made where no GPU
    was visible has CPU ops only, and RoIAlign/NMS would fail at the first batch."""
    if gpu_visible and compiled_cuda == 'not available':
        return ('a GPU is visible but mmcv in this env was built without CUDA ops: run '
                '`make env` on this machine, which rebuilds it (WISE_CUDA=1 does so on a '
                'machine without a GPU)')
    return None


def require_mmcv_cuda_ops() -> None:
    from mmcv.ops import get_compiling_cuda_version
    problem = mmcv_ops_problem(torch.cuda.is_available(), get_compiling_cuda_version())
    if problem:
        raise SystemExit(problem)


def load_tool_config(args: argparse.Namespace) -> Config:
    """The config of a runner tool's command line (``config``, ``launcher``,
    ``cfg_options``, ``work_dir``) as mmdet's tools build it: CLI overrides, then a
    default work_dir; torch.compile's cache sized as mmdet's tools size it."""
    setup_cache_size_limit_of_dynamo()
    config, launcher, cfg_options, work_dir = (args.config, args.launcher, args.cfg_options,
                                               args.work_dir)
    cfg = Config.fromfile(config)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = os.path.join('./work_dirs',
                                    os.path.splitext(os.path.basename(config))[0])
    setup_cpu_distributed(cfg, launcher)
    require_mmcv_cuda_ops()
    return cfg


def shard_of(text: str, launcher: str, cfg: Config | None = None) -> tuple[int, int]:
    """(shard, shards) of a labelling tool: ``--shard i/N`` alone, or under a launcher
    the rank and world size (the process group started here)."""
    if launcher != 'none':
        return init_distributed(launcher, cfg)
    try:
        return parse_shard(text)
    except argparse.ArgumentTypeError as e:
        raise OptionError(f'--shard {e}') from None


def parse_shard(text: str) -> tuple[int, int]:
    """``'i/N'`` -> (i, N): a worker's share of the images (every N-th, from the i-th)."""
    try:
        i, n = (int(v) for v in text.split('/'))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f'must be i/N with 0 <= i < N, got {text!r}')
    return i, n
