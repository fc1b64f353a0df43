"""Write a file under a temporary name beside it, then rename: never a half-written file.

Every output facestyle makes (rendered videos, style packs, the cached sample clip) goes
through these two steps, so a crash, a full disk or Ctrl-C leaves the final name untouched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from pipeline.errors import OutputError

__all__ = [
    "check_output",
    "discard",
    "partial_file",
    "partial_path",
    "publish",
    "remove_partials",
    "reserve_partial",
    "write_atomically",
    "write_image",
]


def partial_path(final: str | Path, claim: Callable[[Path], object] | None = None) -> Path:
    """Create an empty hidden file in ``final``'s folder to write into.

    The name keeps ``final``'s suffix, so writers that pick a format from the suffix (PyAV,
    OpenCV) still do. The rename in :func:`publish` is atomic because both names are in the
    same folder. The file gets the permissions any new file gets (0o666 less the umask,
    applied by the kernel), so nothing reads or sets the process-wide umask, which other
    threads may depend on at that moment.

    Args:
        final: the name the finished file will have.
        claim: called with the name before the file is made. A caller that records it there
            can delete the file whenever it is stopped: a Ctrl-C landing between the file's
            creation and the caller's use of the returned name once left a partial file
            behind that nobody knew of.

    Raises:
        OSError: the folder does not exist or cannot be written.
    """
    final = Path(final)
    while True:
        path = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}")
        if claim is not None:
            claim(path)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue  # another writer's partial file: draw another name
        except BaseException:
            # Stopped around the creation: the name is random, so the file there is ours.
            discard(path)
            raise
        return path


def discard(path: str | Path) -> None:
    """Delete ``path`` if it is there, as cleanup after a failure.

    ``Path.unlink(missing_ok=True)`` is not enough: on a read-only filesystem unlink fails
    (EROFS) before it looks the name up, so cleaning up a partial file that could never be
    made raised, and that error replaced the one saying why the output could not be written.

    Raises:
        OSError: ``path`` is there and cannot be deleted.
    """
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        if os.path.lexists(path):
            raise


def reserve_partial(final: str | Path, claim: Callable[[Path], object] | None = None) -> Path:
    """:func:`partial_path` for ``final``, failing with an :class:`OutputError` that names
    ``final``, not the hidden partial file.

    Raises:
        OutputError: ``final`` is a folder, or its folder does not exist or cannot be written.
    """
    final = Path(final)
    folder = final.parent
    if final.is_dir():
        raise OutputError(f"cannot write {final}: it is a folder; give a file name")
    if not folder.is_dir():
        raise OutputError(f"cannot write {final}: folder {folder} does not exist; create it first")
    try:
        return partial_path(final, claim=claim)
    except OSError as error:
        raise OutputError(
            f"cannot write {final}: folder {folder} is not writable ({error.strerror}); "
            "choose a folder you can write to"
        ) from error


def check_output(final: str | Path) -> None:
    """Refuse an output that could not be written, before the work that makes it: a partial
    file for ``final`` is made and deleted (:func:`reserve_partial`), so a render or a
    training does not run for minutes only to fail at its end.

    Raises:
        OutputError: ``final`` is a folder, or its folder does not exist or cannot be written.
    """
    made: list[Path] = []
    try:
        reserve_partial(final, claim=made.append)
    finally:
        for path in made:
            discard(path)


@contextlib.contextmanager
def partial_file(final: str | Path) -> Iterator[Path]:
    """A new partial file for ``final`` (:func:`partial_path`) for the block to write and
    :func:`publish`; deleted when the block ends however it ends (an exception, Ctrl-C) unless
    it was published.

    Raises:
        OSError: the folder does not exist or cannot be written.
    """
    name: dict[str, Path] = {}
    try:
        yield partial_path(final, claim=lambda path: name.update(path=path))
    finally:
        if "path" in name:
            discard(name["path"])  # gone already once published


def publish(partial: str | Path, final: str | Path) -> None:
    """Move a finished ``partial`` file to ``final``, replacing any file there.

    Raises:
        OSError: the rename failed (``partial`` is left for the caller to delete).
    """
    os.replace(partial, final)


def write_atomically(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a partial file and a rename (folders created).

    Raises:
        OutputError: the file cannot be written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with partial_file(path) as partial:
            partial.write_bytes(data)
            publish(partial, path)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from error
    return path


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Encode an image by ``path``'s suffix (PNG if none) and write it atomically.

    Args:
        image: ``(H, W, 3)`` ``uint8`` RGB.

    Raises:
        OutputError: the suffix names no image format OpenCV writes, or the file cannot be
            written.
    """
    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix or ".png", np.ascontiguousarray(image[:, :, ::-1]))
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"cannot write {path}: unknown image type; use a .png or .jpg name")
    return write_atomically(path, encoded.tobytes())


def remove_partials(final: str | Path) -> list[Path]:
    """Delete the partial files that writers of ``final`` left behind when they were killed.

    A process killed outright (SIGKILL, a lost machine) cannot remove its partial file;
    whoever writes ``final`` next calls this first. Only names :func:`partial_path` makes for
    ``final`` are touched.

    Returns:
        The files deleted.
    """
    final = Path(final)
    pattern = f".{glob.escape(final.stem)}.{'?' * 8}.part{glob.escape(final.suffix)}"
    removed = []
    for path in final.parent.glob(pattern):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
