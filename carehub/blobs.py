"""Where attachment bytes live: one small interface, a content-addressed directory behind it (an object store
can stand in by implementing the same two methods).

Blobs are a copy, not the record: every attachment is also inside its raw message, which the database keeps
durably. So a blob is written without waiting for the disk, and read back only if its bytes still hash to its key;
a blob lost or torn by a crash raises BlobMissing, and the caller extracts it from the raw message again.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from pathlib import Path
from typing import Protocol

_KEY_CHARS = frozenset("0123456789abcdef")


def key_for(data: bytes) -> str:
    """The key data is stored under: its SHA-256, so a key can be known before (or without) writing."""
    return hashlib.sha256(data).hexdigest()


class BlobMissing(KeyError):
    """No intact blob under this key (never stored, or lost or torn by a crash)."""


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store data; returns its key. Storing the same bytes twice returns the same key."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under key; BlobMissing if there are none, or they no longer match it."""
        ...


class DiskBlobStore:
    """Files named by their SHA-256 under root/ab/cd/, written to a temporary name and then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dirs: set[Path] = set()
        self._counter = itertools.count()

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not _KEY_CHARS.issuperset(key):
            raise KeyError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    async def put(self, data: bytes) -> str:
        key = key_for(data)
        # In a thread: file-system calls (mkdir, create, rename) can take milliseconds on container storage.
        await asyncio.to_thread(self._write, self._path(key), data)
        return key

    def _write(self, path: Path, data: bytes) -> None:
        if path.exists():
            return
        if path.parent not in self._dirs:  # mkdir is a file-system round trip: once per directory per process
            path.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(self._counter)}")
        try:
            try:
                tmp.write_bytes(data)
            except FileNotFoundError:  # the directory went away since we made it
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        try:
            data = await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise BlobMissing(key) from None
        if key_for(data) != key:
            self._path(key).unlink(missing_ok=True)  # torn: make room for the copy extracted again
            raise BlobMissing(key)
        return data
