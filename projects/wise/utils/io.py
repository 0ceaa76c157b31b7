"""File helpers that fail loudly, naming the file, and never leave half a file."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = 'w') -> Iterator[Any]:
    """Write to a temporary file beside ``path`` and rename it into place.

    A crash or exception midway leaves any earlier ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def safe_join(root: str | os.PathLike, name: str, source: str | os.PathLike) -> str:
    """``root/name`` for a file named by a data file (``source``), refusing names that
    are absolute or climb out of ``root`` (``..``): annotation files are data, and
    must not make a tool read or write elsewhere."""
    name = str(name)
    joined = os.path.normpath(os.path.join(root, name))
    base = os.path.normpath(root)
    inside = os.path.commonpath([os.path.abspath(joined), os.path.abspath(base)]) == \
        os.path.abspath(base)
    if os.path.isabs(name) or not inside:
        raise DataError(f'{source}: file name {name!r} points outside {root}')
    return joined


def dump_json(obj: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """Atomically write ``obj`` as JSON."""
    with atomic_write(path) as f:
        json.dump(obj, f, **kwargs)


def load_json(path: str | os.PathLike) -> Any:
    """Read JSON, turning a missing or truncated file into a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f'{path}: file not found')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f'{path}: not valid JSON (truncated or corrupt?): {e}') from None


def read_image(path: str | os.PathLike, mode: str = 'RGB') -> np.ndarray:
    """Decode an image to an HxWxC (or HxW for mode 'L'/'P') uint8 array, turned by its
    EXIF orientation as mmcv's loader (OpenCV) turns it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f'{path}: image not found')
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            return np.asarray(im if mode == 'P' else im.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f'{path}: cannot decode image ({e})') from None


def read_lines(path: str | os.PathLike) -> list[str]:
    """Read a split file (one id per line); an empty split is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f'{path}: split file not found')
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f'{path}: split file is empty')
    return ids


def load_coco_json(path: str | os.PathLike) -> dict:
    """A COCO json, checked for the lists that every reader of it indexes."""
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get('images'), list) \
            or not isinstance(data.get('categories'), list) \
            or not isinstance(data.get('annotations', []), list):
        raise DataError(f'{path}: not a COCO json (needs lists "images" and '
                        '"categories", and "annotations" if any)')
    return data
