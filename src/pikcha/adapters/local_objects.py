"""The default object store: plain files in a local directory."""

from __future__ import annotations

import errno
import hashlib
import json
import mimetypes
import os
import secrets
from contextlib import suppress
from pathlib import Path
from stat import S_ISREG

from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    IntegrityError,
    NotFoundError,
)
from pikcha.ports.objects import ObjectInfo

_RESERVED = ".pikcha"
_DEFAULT_TYPE = "application/octet-stream"


class LocalObjectStore:
    """Objects as files under ``root``: the key ``a/b.csv`` is ``root/a/b.csv``.

    The folder ``root/.pikcha`` holds what is not an object: a JSON sidecar per
    object (content type, sha256 and the file version it describes) and the
    temporary files of puts in progress, on the same file system so that a
    rename replaces an object atomically. Keys under ``.pikcha/`` are refused.

    The bytes and the sidecar are renamed one after the other, so a
    :meth:`stat` racing a :meth:`put` may report the previous content type for
    a moment; size and sha256 always describe the bytes on disk. Files copied
    in by other means are objects too, with a content type guessed from the
    name. Unlike a bucket, a key cannot be both an object and a folder: storing
    ``a/b`` when ``a`` exists raises :class:`IntegrityError`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        self._meta = self.root / _RESERVED / "meta"
        self._tmp = self.root / _RESERVED / "tmp"

    def put(
        self, key: str, data: bytes, content_type: str = _DEFAULT_TYPE
    ) -> ObjectInfo:
        path = self._path(key)
        self._prepare(key, path)
        digest = hashlib.sha256(data).hexdigest()
        try:
            self._write(path, bytes(data))
            version = os.stat(path)
            sidecar = {
                "key": key,
                "content_type": content_type,
                "sha256": digest,
                "size": version.st_size,
                "inode": version.st_ino,
                "mtime_ns": version.st_mtime_ns,
            }
            self._write(self._sidecar(key), json.dumps(sidecar).encode())
        except OSError as exc:
            raise self._unwritable(key, exc) from exc

        return ObjectInfo(key, len(data), digest, content_type)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._missing(key) from exc
        except OSError as exc:
            raise self._unreadable(key, exc) from exc

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            return self._info(key, path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._missing(key) from exc
        except OSError as exc:
            raise self._unreadable(key, exc) from exc

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        folder = prefix.rpartition("/")[0]
        start = self.root / folder if _is_clean(folder) else self.root
        keys: list[str] = []
        for directory, folders, files in os.walk(start):
            if Path(directory) == self.root and _RESERVED in folders:
                folders.remove(_RESERVED)
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in files:
                key = name if relative == "." else f"{relative}/{name}"
                if key.startswith(prefix) and _is_clean(key) and not _reserved(key):
                    keys.append(key)
        found: list[ObjectInfo] = []
        for key in sorted(keys):
            try:
                found.append(self._info(key, self._path(key)))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._unreadable(key, exc) from exc

        return found

    def location(self, key: str) -> str:
        return str(self._path(key))

    def _info(self, key: str, path: Path) -> ObjectInfo:
        version = os.stat(path)
        if not S_ISREG(version.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        try:
            sidecar = json.loads(self._sidecar(key).read_bytes())
        except (OSError, ValueError):
            sidecar = {}
        content_type = sidecar.get("content_type") or _guess_type(key)
        current = (
            sidecar.get("size") == version.st_size
            and sidecar.get("inode") == version.st_ino
            and sidecar.get("mtime_ns") == version.st_mtime_ns
        )
        digest = sidecar["sha256"] if current else _sha256(path)

        return ObjectInfo(key, version.st_size, digest, content_type)

    def _prepare(self, key: str, path: Path) -> None:
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(key, exc) from exc
        for ancestor in reversed(path.parents):
            if ancestor.is_relative_to(self.root) and ancestor.is_file():
                conflict = ancestor.relative_to(self.root).as_posix()
                raise IntegrityError(
                    f"cannot store object {key!r}: {conflict!r} is an object, "
                    "and a local object store cannot hold a folder of that name; "
                    "choose another key"
                )
        if path.is_dir():
            raise IntegrityError(
                f"cannot store object {key!r}: {str(path)!r} is a folder; "
                "choose another key"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._meta.mkdir(exist_ok=True)
        except OSError as exc:
            raise self._unwritable(key, exc) from exc

    def _write(self, target: Path, data: bytes) -> None:
        temporary = self._tmp / f"{secrets.token_hex(8)}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        _sync_folder(target.parent)

    def _path(self, key: str) -> Path:
        if not _is_clean(key) or _reserved(key):
            raise ConfigurationError(
                f"object key {key!r} is not valid: use a relative '/'-separated "
                "path with no empty, '.' or '..' parts, no backslash, no leading "
                f"'/', and not under {_RESERVED}/"
            )

        return self.root / key

    def _sidecar(self, key: str) -> Path:
        return self._meta / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def _missing(self, key: str) -> NotFoundError:
        return NotFoundError(
            f"object {key!r} does not exist in the local object store "
            f"{str(self.root)!r}"
        )

    def _unreadable(self, key: str, exc: OSError) -> InfrastructureError:
        return InfrastructureError(
            f"cannot read object {key!r} at {str(self.root / key)!r}: "
            f"{exc.strerror or exc}"
        )

    def _unwritable(self, key: str, exc: OSError) -> InfrastructureError:
        return InfrastructureError(
            f"cannot write object {key!r} to {str(self.root / key)!r} in the object "
            f"store folder {str(self.root)!r}: {exc.strerror or exc}; set "
            "PIKCHA_OBJECTS to file:///PATH of a writable directory with room for it"
        )


def _is_clean(key: str) -> bool:
    return not (
        not key
        or "\\" in key
        or "\x00" in key
        or any(part in {"", ".", ".."} for part in key.split("/"))
    )


def _reserved(key: str) -> bool:
    return key.split("/", 1)[0] == _RESERVED


def _guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or _DEFAULT_TYPE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)

    return digest.hexdigest()


def _sync_folder(folder: Path) -> None:
    # Makes the rename itself durable; not every file system allows it.
    with suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
