"""All-or-nothing updates of several files: stage, journal, rename, roll forward.

Adding an episode rewrites up to a dozen files (data parquet, one MP4 per view, the
episode table, tasks, stats, info.json). Each new version is first written under a
hidden temporary name next to its target and fsynced. Then a journal listing every
(temporary, final) pair is written atomically; that write is the commit point. The
renames follow, ``meta/info.json`` last, and the journal is removed.

- A crash before the journal exists leaves the old files untouched (temporaries are
  ignored by readers and deleted by :func:`recover`).
- A crash after it may leave some files renamed. Every rename only ever replaces a file
  by a superset of itself (rows and video packets are appended, never changed), and
  readers take the episode count from info.json, which is renamed last, so the dataset
  still reads as it was. :func:`recover` (run by the writer when it reopens) finishes
  the renames from the journal.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

JOURNAL = "meta/.commit-journal.json"
TMP_SUFFIX = ".tmp"


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some file systems cannot open directories; nothing to sync then
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write one file atomically (temporary name, fsync, rename, fsync the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class Transaction:
    """Files staged under temporary names, committed together by :meth:`commit`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.staged: list[tuple[Path, Path]] = []  # (temporary, final), commit order

    def path_for(self, relative: str) -> Path:
        """A fresh temporary path to write the new version of ``root/relative`` to."""
        final = self.root / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}{TMP_SUFFIX}")
        self.staged = [(t, f) for t, f in self.staged if f != final]  # last staging wins
        self.staged.append((tmp, final))
        return tmp

    def write_bytes(self, relative: str, data: bytes) -> None:
        self.path_for(relative).write_bytes(data)

    def commit(self) -> None:
        # info.json is the reader's source of truth: rename it last.
        info = [p for p in self.staged if p[1].name == "info.json"]
        order = [p for p in self.staged if p[1].name != "info.json"] + info
        for tmp, _ in order:
            fsync_file(tmp)
        journal = {"renames": [[str(t.relative_to(self.root)), str(f.relative_to(self.root))]
                               for t, f in order]}  # fmt: skip
        atomic_write_bytes(self.root / JOURNAL, json.dumps(journal).encode())
        _apply(self.root, journal["renames"])
        self.staged = []

    def abort(self) -> None:
        for tmp, _ in self.staged:
            tmp.unlink(missing_ok=True)
        self.staged = []


def _replace(src: Path, dst: Path) -> None:
    # One indirection so tests can simulate a power cut between two renames.
    os.replace(src, dst)


def _apply(root: Path, renames: list[list[str]]) -> None:
    folders = set()
    for tmp, final in renames:
        if (root / tmp).exists():
            _replace(root / tmp, root / final)
            folders.add((root / final).parent)
    for folder in folders:
        fsync_dir(folder)
    (root / JOURNAL).unlink(missing_ok=True)
    fsync_dir(root / "meta")


def recover(root: Path) -> str | None:
    """Finish an interrupted commit and delete stray temporaries; returns what it did."""
    root = Path(root)
    done = None
    journal = root / JOURNAL
    if journal.is_file():
        try:
            renames = json.loads(journal.read_text())["renames"]
        except (json.JSONDecodeError, KeyError):
            renames = None  # a torn journal cannot exist (atomic write); be safe anyway
        if renames is not None:
            _apply(root, renames)
            done = f"finished an interrupted commit of {len(renames)} files"
        journal.unlink(missing_ok=True)
    stray = list(root.rglob(f".*{TMP_SUFFIX}"))
    for p in stray:
        if p.is_dir():  # a writer's scratch folder
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    if stray:
        done = (done + "; " if done else "") + f"deleted {len(stray)} unfinished temporary files"
    return done
