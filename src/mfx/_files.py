"""Atomic file writing: a file appears at its path complete or not at all.

Temporary files are named ``.<name>.<pid>.<host>.<random>.tmp`` beside the target: the pid and
a tag of the host name say who wrote them, so a later successful write of the same target can
remove the ones whose writer died (``kill -9``, a power cut) without touching those of a writer
that is still running, here or on another machine sharing the folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

_TEMP_TAIL = re.compile(r"\.(\d+)\.([0-9a-f]{8})\.[0-9a-f]{8}\.tmp")


def _host_tag() -> str:
    """Eight hex digits that identify this machine (a hash: host names may hold any text)."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _temp_name(target: str) -> str:
    return f".{target}.{os.getpid()}.{_host_tag()}.{secrets.token_hex(4)}.tmp"


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except (OverflowError, ValueError):  # not a pid this system can have
        return False
    return True


def stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files of ``path`` left by writers on this host that are no longer running."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}"
    host = _host_tag()
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix):
            continue
        match = _TEMP_TAIL.fullmatch(name, len(prefix))
        if match is None or match.group(2) != host:
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _alive(pid):
            continue
        found.append(folder / name)
    return found


def remove_stale_temp_files(path: str | os.PathLike[str]) -> list[Path]:
    """Remove :func:`stale_temp_files` of ``path``; returns those removed.

    :func:`atomic_path` does this after each successful write of ``path``; call it for a
    companion file that a write did not produce this time (an export's ``.data`` file).
    """
    removed = []
    for stale in stale_temp_files(path):
        with contextlib.suppress(OSError):
            stale.unlink()
            removed.append(stale)
            log.info("removed %s, left by an interrupted write of %s", stale, Path(path).name)
    return removed


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # e.g. a folder that cannot be opened on this platform: best effort
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the target folder so the final ``os.replace`` is atomic on the
    same file system; it is flushed to disk first, so even a crash of the machine leaves the old
    file or the new one, never a mix. On any exception (Ctrl-C included) the temporary file is
    removed and the previous content of ``path``, if any, is left untouched. A process killed
    outright cannot remove its temporary file; the next successful write of the same ``path``
    removes it (see :func:`stale_temp_files`).
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "output folder does not exist", str(folder))
    # 0o666 filtered by the umask, like a plain open(); O_EXCL never reuses another's file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = folder / _temp_name(target.name)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        break
    os.close(fd)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_path(folder, directory=True)
    remove_stale_temp_files(target)
