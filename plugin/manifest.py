"""The batch manifest: which clips in an output folder are finished, and from what.

``facestyle-batch.json`` in the output folder maps each finished output's file name to the
SHA-256 of its input file, of its style (the pack file's bytes) and of the settings that
shape the output, and to the output's size in bytes. A clip is done when its entry matches
all three hashes and the output is still there at that size; anything else is rendered
(again), so a deleted, truncated or damaged output is redone. Its modification time is not
recorded: a copy of the folder that does not keep times (``cp -r``) would redo every clip.
Entries from before the size was recorded need the output only to exist. The manifest is
rewritten whole, atomically, after every finished clip, so a killed batch loses at most the
clips in flight.
"""

from __future__ import annotations

import hashlib
import json
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.atomic import write_atomically
from pipeline.errors import InputError

__all__ = ["MANIFEST_NAME", "ClipKey", "Manifest", "ManifestEntry", "file_sha256", "text_sha256"]

MANIFEST_NAME = "facestyle-batch.json"
_VERSION = 1


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ClipKey:
    """What a clip's output is made from: the hashes of its input, style and settings."""

    input_sha256: str
    style_sha256: str
    settings_sha256: str

    @property
    def digest(self) -> str:
        """One hash of all three, for names of work folders."""
        return text_sha256(f"{self.input_sha256}:{self.style_sha256}:{self.settings_sha256}")


@dataclass(frozen=True)
class ManifestEntry:
    """One finished clip.

    Attributes:
        input: the input file as given.
        key: the hashes it was made from.
        frames: frames written.
        seconds: render time (summed over its segments).
        finished: when it was finished, ISO 8601 UTC.
        output_bytes: the output's size as written; ``None`` in entries written before
            sizes were recorded.
    """

    input: str
    key: ClipKey
    frames: int
    seconds: float
    finished: str
    output_bytes: int | None = None


class Manifest:
    """The finished clips of one output folder.

    Args:
        folder: the batch's output folder.

    Raises:
        InputError: the manifest exists but is not one facestyle wrote.
    """

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / MANIFEST_NAME
        self.entries: dict[str, ManifestEntry] = {}
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            if data.get("version") != _VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            for name, entry in data["clips"].items():
                self.entries[name] = ManifestEntry(
                    entry["input"],
                    ClipKey(**entry["key"]),
                    int(entry["frames"]),
                    float(entry["seconds"]),
                    entry["finished"],
                    None if entry.get("output_bytes") is None else int(entry["output_bytes"]),
                )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise InputError(
                f"{self.path} is not a facestyle batch manifest ({error}); move it away to "
                "start the batch afresh"
            ) from error

    def done(self, output: Path, key: ClipKey) -> ManifestEntry | None:
        """The entry of ``output`` if it was made from ``key`` and is still there as written
        (at its recorded size, where one was recorded)."""
        entry = self.entries.get(output.name)
        if entry is None or entry.key != key:
            return None
        try:
            status = output.stat()
        except OSError:
            return None
        kept = stat.S_ISREG(status.st_mode) and entry.output_bytes in (None, status.st_size)
        return entry if kept else None

    def record(self, output: Path, input: Path, key: ClipKey, frames: int, seconds: float) -> None:
        """Add or replace ``output``'s entry (``output`` finished, its size is recorded) and
        rewrite the manifest atomically.

        Raises:
            OSError: ``output`` is gone.
            OutputError: the manifest cannot be written.
        """
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        size = output.stat().st_size
        self.entries[output.name] = ManifestEntry(str(input), key, frames, seconds, finished, size)
        clips = {name: asdict(entry) for name, entry in sorted(self.entries.items())}
        text = json.dumps({"version": _VERSION, "clips": clips}, indent=1)
        write_atomically(self.path, text.encode() + b"\n")
