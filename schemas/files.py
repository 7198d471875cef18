"""Crash-safe files every stage writes: atomic replacement of whole files, and an append-only journal.

Every file gets the mode of a plain `open(path, "w")`: 0o666 less the user's umask."""

import fcntl
import hashlib
import os
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Generic, TypeVar

import polars as pl
from pydantic import BaseModel, ValidationError

from schemas.base import Strict

Record = TypeVar("Record", bound=BaseModel)
LOCK = ".lock"  # one writer per output folder: the holder's flock, with who holds it written inside


def process_umask() -> int:
    """The process umask, read from /proc without changing it (elsewhere: set and restored at once)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def staging_folder(target: Path) -> Path:
    """A new hidden folder beside `target` to fill and rename into place, with the mode of a plain `mkdir`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        staging = target.parent / f".{target.name}.{secrets.token_hex(4)}"
        try:
            staging.mkdir()
            return staging
        except FileExistsError:
            continue


def follow_umask(*paths: Path) -> None:
    """Give files another library wrote privately (safetensors: 600) the mode of a plain new file, 0o666 & ~umask."""
    mode = 0o666 & ~process_umask()
    for path in paths:
        os.chmod(path, mode)


def check_output_folder(path: Path, option: str = "--out") -> None:
    """ValueError naming the path when it cannot be (or become) a folder this process writes to."""
    existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{option} {path}: {existing} is a file, not a folder: pass a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: cannot write into {existing}: pick a folder you can write to")


def temp_sibling(path: Path) -> tuple[int, Path]:
    """A new hidden file next to `path`, open for writing, with mode 0o666 less the umask (mkstemp's is 600)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    fd, tmp = temp_sibling(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Write a Parquet file atomically."""
    fd, tmp = temp_sibling(path)
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Journal(Generic[Record]):
    """A crash-safe log of pydantic records in one `.jsonl` file."""

    def __init__(self, path: Path, model: type[Record]) -> None:
        self.path = Path(path)
        self.model = model
        self.handle = None

    def read(self) -> tuple[list[Record], int]:
        """Complete records and the byte length they span, leaving the file as it is (a torn last line is skipped)."""
        if not self.path.is_file():
            return [], 0
        data = self.path.read_bytes()
        records: list[Record] = []
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                records.append(self.model.model_validate_json(line))
            except ValidationError as err:
                if good_end + len(line) == len(data):
                    break
                raise ValueError(f"{self.path}: corrupt record at byte {good_end}: {err}") from err
            good_end += len(line)
        return records, good_end

    def load(self) -> list[Record]:
        """All complete records; a torn or unreadable last line (a killed writer) is cut off the file."""
        records, good_end = self.read()
        if self.path.is_file() and good_end < self.path.stat().st_size:
            with self.path.open("r+b") as handle:
                handle.truncate(good_end)
        return records

    def append(self, record: Record) -> None:
        """Write one record and make it durable before returning."""
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("ab")
        self.handle.write(record.model_dump_json().encode() + b"\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        """Close the file handle (appending again reopens it)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class LockHolder(Strict):
    """Who holds an output folder's lock: written into the lock file for the message a second writer gets."""

    pid: int
    host: str
    command: str
    started_at: float

    def describe(self) -> str:
        """`pid 12 on host (curate generate, since 2026-01-01 10:00:00)`."""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))
        return f"pid {self.pid} on {self.host} ({self.command}, since {since})"


def lock_holder(path: Path) -> str:
    """What the lock file at `path` says about its holder (`another process` while it is being written)."""
    try:
        return LockHolder.model_validate_json(path.read_bytes()).describe()
    except (OSError, ValidationError):
        return "another process"


def open_locked(path: Path) -> int | None:
    """A descriptor of `path` holding its exclusive flock, or None when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        with suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        os.close(fd)  # the previous holder removed the file between our open and flock: lock the new one


@contextmanager
def folder_lock(folder: Path, command: str) -> Iterator[None]:
    """Be the one writer of `folder` for the block (ValueError naming the holder otherwise); the OS drops the lock
    when the holder dies. The lock file goes on release, and so do the folders this call created if the block left
    them empty."""
    created = [path for path in (folder, *folder.absolute().parents) if not path.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = open_locked(path)
    if fd is None:
        raise ValueError(
            f"{folder} is in use by {lock_holder(path)}: wait for it to finish or stop it, or use another folder"
        )
    try:
        holder = LockHolder(pid=os.getpid(), host=socket.gethostname(), command=command, started_at=time.time())
        os.ftruncate(fd, 0)
        os.write(fd, holder.model_dump_json().encode())
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)
        with suppress(OSError):  # stops at the first folder the command wrote into
            for made in created:
                made.rmdir()
