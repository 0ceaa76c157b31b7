"""How to get mmcv's compiled ops into this venv: CPU or CUDA, for which GPUs, from
which cached wheel.

Run with the venv's python by ``install_env.sh`` and ``build_mmcv.sh``: it prints shell
assignments, or one line on stderr (exit status 2) when a CUDA build is wanted and
cannot be done, before anything is built or installed. The decisions (``plan``) are
kept apart from probing the machine (``probe``) so that tests cover them on a CPU.

Environment: ``WISE_CUDA`` 1 builds the CUDA ops even where no GPU is visible (login
nodes, image builds; mmcv's ``FORCE_CUDA=1`` is read alike), 0 never builds them, unset
builds them where a GPU is visible. ``TORCH_CUDA_ARCH_LIST`` overrides the GPUs built
for (default: those of the installed torch, plus PTX). ``CUDA_HOME`` picks the toolkit;
without it, the first nvcc of torch's CUDA major in the venv's CUDA wheels, PATH or
/usr/local/cuda is taken (``find_nvcc``).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

MMCV_VERSION = os.environ.get('MMCV_VERSION', '2.1.0')
# The oldest driver for each CUDA major version (NVIDIA's CUDA toolkit release notes).
MIN_DRIVER = {12: '525', 13: '580'}
# torch's headers include these; some toolkits (and these machines') ship without them.
NEEDED_HEADERS = ('cublas_v2.h', 'cusparse.h', 'cusolverDn.h')
#: in the venv: the key of the mmcv wheel install_env.sh installed (its CUDA archs)
KEY_FILE = '.wise-mmcv-key'
_ARCH = re.compile(r'^\d+\.\d+[af]?(\+PTX)?$')


class PlanError(Exception):
    """A CUDA build that cannot be done here; the message says what to do."""


@dataclass
class Facts:
    """What the machine and the venv have; ``probe`` fills it in."""

    torch_version: str                 # '2.14.1+cu130'
    torch_cuda: str | None             # '13.0'; None for a CPU-only torch
    torch_archs: list[str]             # torch's own kernels: ['sm_75', ..., 'sm_120']
    py_tag: str                        # 'cp311'
    gpus_torch: int = 0                # GPUs torch can use
    gpus_smi: int = 0                  # GPUs nvidia-smi lists
    driver: str | None = None
    nvcc: str | None = None            # path of the nvcc that would build
    nvcc_version: str | None = None    # '13.0'
    nvcc_archs: list[str] | None = None  # what nvcc can build: ['7.5', ..., '12.1']
    toolkit_headers: bool = True       # NEEDED_HEADERS in the toolkit's include/
    wheel_headers: str | None = None   # a venv folder with NEEDED_HEADERS (CUDA wheels)
    installed_mmcv: str | None = None  # mmcv version installed with its ops, if any
    installed_cuda: bool = False       # whether those ops include CUDA kernels
    installed_key: str | None = None   # the key of the wheel installed (KEY_FILE)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    mode: str                  # 'cpu' or 'cuda'
    key: str                   # cache folder of the wheel
    ready: bool                # the installed mmcv already fits: nothing to build
    arch_list: str = ''
    cuda_home: str = ''
    cpath: str = ''            # extra include folder for the build
    reason: str = ''

    def shell(self) -> str:
        values = dict(MMCV_MODE=self.mode, MMCV_KEY=self.key, MMCV_READY=int(self.ready),
                      MMCV_ARCH_LIST=self.arch_list, MMCV_CUDA_HOME=self.cuda_home,
                      MMCV_CPATH=self.cpath, MMCV_REASON=self.reason)
        return '\n'.join(f'{k}={shlex.quote(str(v))}' for k, v in values.items())


def default_arch_list(torch_archs: list[str]) -> str:
    """torch's own GPU list ('sm_86' -> '8.6'), with PTX of the newest for later GPUs."""
    archs = []
    for flag in torch_archs:
        m = re.fullmatch(r'sm_(\d+)(\d)([af]?)', flag)
        if m:
            archs.append(f'{m[1]}.{m[2]}{m[3]}')
    if not archs:
        raise PlanError('torch lists no GPU architectures; set TORCH_CUDA_ARCH_LIST, '
                        'e.g. TORCH_CUDA_ARCH_LIST="8.0;9.0+PTX"')
    archs.sort(key=lambda a: tuple(int(x) for x in re.findall(r'\d+', a)))
    return ';'.join(archs) + '+PTX'


def _check_arch_list(text: str, facts: Facts) -> list[str]:
    archs = [a for a in re.split(r'[;\s]+', text.strip()) if a]
    bad = [a for a in archs if not _ARCH.match(a)]
    if not archs or bad:
        raise PlanError(f'TORCH_CUDA_ARCH_LIST={text!r} is not a list of compute '
                        'capabilities such as "8.0;9.0+PTX"')
    if facts.nvcc_archs is not None:
        unknown = [a for a in archs if a.split('+')[0].rstrip('af') not in facts.nvcc_archs]
        if unknown:
            raise PlanError(f'nvcc {facts.nvcc_version} cannot build for {", ".join(unknown)} '
                            f'(it builds {facts.nvcc_archs[0]} to {facts.nvcc_archs[-1]}); '
                            'drop them from TORCH_CUDA_ARCH_LIST')
    return archs


def _want_cuda(facts: Facts) -> tuple[bool, str]:
    wise_cuda = facts.env.get('WISE_CUDA', '')
    if wise_cuda not in ('', '0', '1'):
        raise PlanError(f'WISE_CUDA={wise_cuda!r}: use 1 (build the CUDA ops), '
                        '0 (CPU ops only) or leave it unset (CUDA where a GPU is visible)')
    if wise_cuda == '1' or (not wise_cuda and facts.env.get('FORCE_CUDA') == '1'):
        return True, 'asked for (WISE_CUDA=1)'
    if wise_cuda == '0':
        return False, 'WISE_CUDA=0'
    if facts.gpus_torch:
        return True, f'{facts.gpus_torch} GPU(s) visible'
    if facts.gpus_smi:  # the GPU is there but this torch cannot drive it
        need = MIN_DRIVER.get(_major(facts.torch_cuda), '?') if facts.torch_cuda else '?'
        what = (f'it needs an NVIDIA driver >= {need} (this one: {facts.driver})'
                if facts.torch_cuda else 'it is a CPU-only build')
        raise PlanError(f'nvidia-smi lists {facts.gpus_smi} GPU(s), but torch '
                        f'{facts.torch_version} cannot use them: {what} (docs/install.md#gpus); '
                        'WISE_CUDA=0 makes a CPU-only env')
    return False, 'no GPU visible'


def _major(version: str | None) -> int:
    return int(version.split('.')[0]) if version else -1


def _nvcc_hint(torch_cuda: str, env: dict[str, str]) -> str:
    """PyPI's CUDA compiler, pinned to torch's CUDA version: nvvm and crt left unpinned
    resolve to a newer release, whose PTX the pinned ptxas rejects. While CUDA_HOME is
    set nothing else is looked in, so installing them alone would not help."""
    major = _major(torch_cuda)
    pkgs = ' '.join(f'"nvidia-{p}=={torch_cuda}.*"'
                    for p in ('cuda-nvcc', 'nvvm', 'cuda-crt', 'cuda-cccl'))
    wheels = (f'pip install {pkgs} into the venv (the CUDA {major} compiler and headers; '
              'torch brings the runtime)')
    if env.get('CUDA_HOME'):
        return f'point CUDA_HOME at a CUDA {major} toolkit, or unset it and {wheels}'
    return f'{wheels}, or point CUDA_HOME at a CUDA {major} toolkit'


def plan(facts: Facts) -> Plan:
    """Decide the build; ``PlanError`` if a CUDA build is wanted and cannot be done."""
    torch_v = facts.torch_version.split('+')[0]
    want, reason = _want_cuda(facts)
    if not want:
        ready = facts.installed_mmcv == MMCV_VERSION
        return Plan('cpu', f'mmcv-{MMCV_VERSION}-torch{torch_v}-cpu-{facts.py_tag}',
                    ready, reason=reason)
    if not facts.torch_cuda:
        raise PlanError(f'torch {facts.torch_version} is a CPU-only build and cannot run '
                        'CUDA ops: install a CUDA build of torch (docs/install.md#gpus), '
                        'or WISE_CUDA=0')
    if not facts.nvcc:
        where = (f'CUDA_HOME={facts.env["CUDA_HOME"]}' if facts.env.get('CUDA_HOME')
                 else 'the venv, PATH, /usr/local/cuda')
        raise PlanError(f"mmcv's CUDA ops ({reason}) need a CUDA {facts.torch_cuda} nvcc and "
                        f'none was found ({where}): '
                        f'{_nvcc_hint(facts.torch_cuda, facts.env)}; or WISE_CUDA=0 for CPU '
                        'ops only')
    if _major(facts.nvcc_version) != _major(facts.torch_cuda):
        raise PlanError(f'nvcc {facts.nvcc_version} ({facts.nvcc}) cannot build for torch '
                        f'{facts.torch_version}, which needs CUDA {_major(facts.torch_cuda)}: '
                        f'{_nvcc_hint(facts.torch_cuda, facts.env)}')
    cpath = ''
    if not facts.toolkit_headers:
        if not facts.wheel_headers:
            raise PlanError(f'the CUDA toolkit of {facts.nvcc} lacks {", ".join(NEEDED_HEADERS)}, '
                            "which torch's headers include: pip install nvidia-cublas "
                            'nvidia-cusparse nvidia-cusolver into the venv, or use a full toolkit')
        cpath = facts.wheel_headers
    arch_list = facts.env.get('TORCH_CUDA_ARCH_LIST') or default_arch_list(facts.torch_archs)
    archs = _check_arch_list(arch_list, facts)
    cu = 'cu' + facts.torch_cuda.replace('.', '')
    arch_tag = '-'.join(a.replace('.', '').replace('+PTX', 'ptx') for a in archs)
    key = f'mmcv-{MMCV_VERSION}-torch{torch_v}-{cu}-sm{arch_tag}-{facts.py_tag}'
    # CUDA ops fit only the architectures they were built for: the same key, or rebuild
    ready = facts.installed_mmcv == MMCV_VERSION and facts.installed_cuda \
        and facts.installed_key == key
    return Plan('cuda', key, ready, arch_list=';'.join(archs),
                cuda_home=str(Path(facts.nvcc).parents[1]), cpath=cpath, reason=reason)


# ---- probing this machine -------------------------------------------------------------

def _run(*cmd: str) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ''


def nvcc_release(nvcc: str) -> str | None:
    """'12.4' from ``nvcc --version`` ('Cuda compilation tools, release 12.4, V12.4.131')."""
    m = re.search(r'release (\d+\.\d+)', _run(nvcc, '--version'))
    return m[1] if m else None


def find_nvcc(env: dict[str, str], site: Path, torch_cuda: str | None,
              system: tuple[Path, ...] = (Path('/usr/local/cuda/bin/nvcc'),)) -> str | None:
    """The nvcc to build with: CUDA_HOME's when it is set (the user's choice, as torch's
    cpp_extension takes it); else the first of the venv's nvidia-cuda-nvcc wheels, PATH
    and /usr/local/cuda of torch's CUDA major (``torch_cuda``), as the one-line error
    advises installing those wheels; else the first found, for that error to name."""
    if env.get('CUDA_HOME'):
        candidates = [Path(env['CUDA_HOME']) / 'bin/nvcc']
    else:
        on_path = shutil.which('nvcc', path=env.get('PATH'))
        candidates = [*sorted(site.glob('nvidia/cu*/bin/nvcc')),
                      *([Path(on_path)] if on_path else []), *system]
    found = [str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)]
    matching = (c for c in found if _major(nvcc_release(c)) == _major(torch_cuda))
    return next(matching, found[0] if found else None)


def _toolkit_of(nvcc: str) -> Path:
    """The toolkit folder of an nvcc, through symlinks and a shell wrapper's ``exec``
    (``/usr/local/bin/nvcc`` on some machines)."""
    path = Path(os.path.realpath(nvcc))
    try:
        text = path.read_text(errors='replace')[:4096] if path.stat().st_size < 4096 else ''
    except OSError:
        text = ''
    m = re.search(r'exec\s+(\S+/bin/nvcc)\b', text)
    return Path(m[1]).parents[1] if m else path.parents[1]


def probe(env: dict[str, str]) -> Facts:
    import torch
    site = Path(sysconfig.get_paths()['purelib'])
    facts = Facts(
        torch_version=torch.__version__, torch_cuda=torch.version.cuda,
        torch_archs=torch._C._cuda_getArchFlags().split() if torch.version.cuda else [],
        py_tag=f'cp{sys.version_info[0]}{sys.version_info[1]}',
        gpus_torch=torch.cuda.device_count() if torch.version.cuda else 0, env=env)
    if shutil.which('nvidia-smi'):
        facts.gpus_smi = len(_run('nvidia-smi', '-L').splitlines())
        facts.driver = (_run('nvidia-smi', '--query-gpu=driver_version',
                             '--format=csv,noheader').splitlines() or [None])[0]
    nvcc = find_nvcc(env, site, torch.version.cuda)
    if nvcc:
        toolkit = _toolkit_of(nvcc)
        facts.nvcc = str(toolkit / 'bin/nvcc')
        facts.nvcc_version = nvcc_release(facts.nvcc)
        archs = re.findall(r'compute_(\d+)(\d)\b', _run(facts.nvcc, '--list-gpu-arch'))
        facts.nvcc_archs = sorted({f'{a}.{b}' for a, b in archs},
                                  key=lambda a: tuple(map(int, a.split('.')))) or None
        facts.toolkit_headers = all((toolkit / 'include' / h).exists() for h in NEEDED_HEADERS)
        for inc in sorted(site.glob('nvidia/cu*/include')):
            if all((inc / h).exists() for h in NEEDED_HEADERS):
                facts.wheel_headers = str(inc)
    key_file = Path(sys.prefix) / KEY_FILE
    facts.installed_key = key_file.read_text().strip() if key_file.is_file() else None
    try:
        import mmcv
        from mmcv.ops import get_compiling_cuda_version
        facts.installed_mmcv = mmcv.__version__
        facts.installed_cuda = get_compiling_cuda_version() != 'not available'
    except Exception:  # absent, or built without ops, or built for another torch
        pass
    return facts


def cuda_ops_problem() -> str | None:
    """What is wrong with mmcv's CUDA NMS and RoIAlign on this machine's GPU (their
    results against the CPU ops'), or None. Needs a GPU."""
    import torch
    from mmcv.ops import RoIAlign, nms
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 5 + torch.rand(200, 2, generator=g) * 30], 1)
    scores = torch.rand(200, generator=g)
    feats = torch.rand(2, 8, 32, 32, generator=g)
    rois = torch.tensor([[0, 1., 1, 20, 20], [1, 4, 6, 30, 28], [0, 0, 0, 31, 31]])
    try:
        kept = [nms(boxes.to(d), scores.to(d), 0.5)[1].cpu() for d in ('cpu', 'cuda')]
        align = RoIAlign((7, 7), 0.5, 2)
        pooled = [align(feats.to(d), rois.to(d)).cpu() for d in ('cpu', 'cuda')]
    except RuntimeError as e:  # "no kernel image is available": built for other GPUs
        return f'a CUDA op fails on {torch.cuda.get_device_name()}: {str(e).splitlines()[0]}'
    if not torch.equal(*kept):
        return 'CUDA NMS keeps other boxes than the CPU one'
    if not torch.allclose(*pooled, atol=1e-4):
        return 'CUDA RoIAlign differs from the CPU one'
    return None


def main() -> int:
    if sys.argv[1:] == ['--check-ops']:  # install_env.sh's last step, on a GPU
        problem = cuda_ops_problem()
        print(f'[mmcv] {problem}' if problem else '[mmcv] CUDA NMS and RoIAlign agree with '
              'the CPU ops', file=sys.stderr if problem else sys.stdout)
        return 2 if problem else 0
    try:
        print(plan(probe(dict(os.environ))).shell())
    except PlanError as e:
        print(f'[mmcv] {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
