"""Where attachment bytes live: one small interface, a content-addressed directory behind it (an object store
can stand in by implementing the same two methods)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

_KEY_CHARS = frozenset("0123456789abcdef")


class BlobStore(Protocol):
    async def put(self, data: bytes) -> str:
        """Store data durably; returns its key. Storing the same bytes twice returns the same key."""
        ...

    async def get(self, key: str) -> bytes: ...


class DiskBlobStore:
    """Files named by their SHA-256 under root/ab/cd/, written to a temporary name, fsynced, then renamed, so a
    crash never leaves a half-written blob under a real key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not _KEY_CHARS.issuperset(key):
            raise KeyError(f"not a blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    async def put(self, data: bytes) -> str:
        key = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, self._path(key), data)
        return key

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)
