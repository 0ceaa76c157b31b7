"""--scale-schedule: the paper's recipe on 1, 2 and 8 processes (the VOC configs)."""
from __future__ import annotations

import argparse

import pytest
import torch
from mmengine.config import Config, DictAction

from projects.wise.errors import OptionError
from projects.wise.utils.batch_scaling import scale_schedule

from conftest import ROOT, run_tool

PRM = ROOT / 'configs/wise/prm_r50_voc.py'
MASK_RCNN = ROOT / 'configs/wise/mask-rcnn_r50_voc_pseudo.py'


@pytest.mark.parametrize('n', [1, 2, 8])
def test_prm_keeps_its_total_batch(n: int) -> None:
    """Batch sizes are per process: without rescaling, 8 GPUs train the PRM at batch
    128 with the lr of batch 16. Each process takes 16 / N; lr and epochs stay."""
    cfg = Config.fromfile(PRM)
    line = scale_schedule(cfg, n)
    assert cfg.train_dataloader.batch_size * n == 16
    assert cfg.optim_wrapper.optimizer.lr == 0.01 and cfg.train_cfg.max_epochs == 20
    assert ('16' in line) and ('0.01' in line)


@pytest.mark.parametrize('n', [1, 2, 8])
def test_mask_rcnn_sees_the_papers_images_at_a_linearly_scaled_lr(n: int) -> None:
    """The paper: 50K iterations of 1 image at lr 0.00125. On N processes: 50K / N
    iterations of N images at lr N x 0.00125, every iteration count scaled alike (mmdet's
    --auto-scale-lr alone would run N x the images)."""
    cfg = Config.fromfile(MASK_RCNN)
    line = scale_schedule(cfg, n)
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.train_cfg.max_iters * n == 50000
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.00125 * n)
    assert cfg.train_cfg.val_interval * n == 10000
    assert cfg.default_hooks.checkpoint.interval * n == 5000
    assert cfg.param_scheduler[0].end == -(-500 // n)  # warmup: the same images
    assert f'{50000 // n} iterations' in line


def test_schedules_that_cannot_be_kept_are_refused() -> None:
    with pytest.raises(OptionError, match='batch 16 does not split over 3 processes'):
        scale_schedule(Config.fromfile(PRM), 3)
    cfg = Config.fromfile(MASK_RCNN)
    cfg.auto_scale_lr.enable = True
    with pytest.raises(OptionError, match='--auto-scale-lr'):
        scale_schedule(cfg, 2)


def test_pipeline_keeps_the_schedule_on_several_gpus() -> None:
    """pipeline.py voc --gpus 8 trains every model with --scale-schedule."""
    out = run_tool('tools/pipeline.py', 'voc', '--gpus', '8', '--dry-run', '--from',
                   'prm').stdout
    trains = [line for line in out.splitlines() if 'dist_train.sh' in line]
    # PRM, PRM + Density, full, WISE with the paper's and with the improved pseudo masks
    assert len(trains) == 5 and all(' 8 --scale-schedule ' in t for t in trains)
    assert any('prm-density_r50_voc.py 8 --scale-schedule' in t for t in trains)


def test_prm_density_synchronises_the_batchnorm_it_trains() -> None:
    """Bug caught: PRM + Density trains BatchNorm (ILC) with 2 images a GPU under
    --scale-schedule on 8 GPUs and nothing synchronised its statistics; the PRM, whose
    BatchNorm statistics are frozen, needs no SyncBN."""
    for cfg in ('prm-density_r50_voc.py', 'prm-density_r50_voc-aug.py'):
        density = Config.fromfile(ROOT / 'configs/wise' / cfg)
        assert density.sync_bn == 'torch' and density.model.backbone.norm_eval is False
    prm = Config.fromfile(PRM)
    assert prm.get('sync_bn') is None and prm.model.backbone.norm_eval is True


@pytest.mark.parametrize('gpus', [1, 2, 4, 8])
def test_smoke_runs_on_any_gpu_count(gpus: int) -> None:
    """The PRM training of ``pipeline.py voc --smoke --gpus N``, its config resolved with
    the command's own options and rescaled as train.py --scale-schedule does on N
    processes: one batch of an image per process. Bug caught: --smoke --gpus 4 or 8
    failed at the PRM's first training (the smoke batch of 2 does not split over N > 2
    processes); on 1 and 2 the smoke commands (the demos' records hash them) change."""
    out = run_tool('tools/pipeline.py', 'voc', '--smoke', '--gpus', str(gpus), '--dry-run',
                   '--only', 'prm').stdout
    line = next(x for x in out.splitlines() if 'prm_r50_voc.py' in x and 'train' in x)
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', *line.split('--cfg-options ')[1].split()])
    cfg = Config.fromfile(PRM)
    cfg.merge_from_dict(options.cfg_options)
    total = cfg.train_dataloader.batch_size
    scale_schedule(cfg, gpus)
    assert cfg.train_dataloader.batch_size * gpus == total == max(2, gpus)
    assert cfg.train_dataloader.dataset.indices == total  # an image for every process
    assert cfg.train_cfg.max_epochs == 1


def test_train_refuses_both_lr_rescalings() -> None:
    """train.py once applied --scale-schedule before --auto-scale-lr switched itself on,
    so the two stacked (N^2 x the lr) instead of being refused."""
    proc = run_tool('tools/train.py', MASK_RCNN, '--scale-schedule', '--auto-scale-lr',
                    check=False)
    assert proc.returncode == 2 and '--auto-scale-lr' in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible: --amp runs')
def test_amp_without_a_gpu_is_refused_in_one_line() -> None:
    """--amp on a CPU machine failed in mmengine's AmpOptimWrapper with a bare assert,
    after the dataset and model were built."""
    proc = run_tool('tools/train.py', PRM, '--amp', check=False)
    assert proc.returncode == 2 and '--amp' in proc.stderr and 'GPU' in proc.stderr
    assert 'Traceback' not in proc.stderr
