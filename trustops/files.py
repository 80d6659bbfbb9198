"""Writing a file so that a crash leaves the old bytes or the new ones, never a torn mix.

Every whole-file write of trustops' own state goes through :func:`write_atomically`: the monitor
state store, the storage setting, the capture reader's local mirror and the Evidently workspace.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomically(path: str | Path, data: bytes | str, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    ``durable``: fsync the file and its folder before returning, so the write survives a power
    loss too (state others rely on); a cache that can be rebuilt passes ``False``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            temp.write(payload)
            if durable:
                temp.flush()
                os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    if durable:
        fsync_folder(path.parent)
    return path


def fsync_folder(folder: str | Path) -> None:
    """A rename or a new file is durable only once its directory entry is."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_png(figure: Any, path: str | Path, *, dpi: int) -> Path:
    """Render a Matplotlib ``figure`` as PNG and write it to ``path`` whole (a reader never sees half a picture)."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return write_atomically(path, buffer.getvalue(), durable=False)
