"""An append-only JSONL file of results that survives its writer being stopped.

A 12-hour evaluation preempted half-way must keep the half it did. So each result is appended as
one complete JSON line the moment it is known, with one ``write`` on a file opened for appending
(the kernel keeps such a write whole and in order), and never rewritten. A writer killed outright
(SIGKILL) loses only what had not finished; if it died in the middle of a line, the torn last
line is cut off when the file is opened again with ``resume``, which also tells which ids are
done, so the run can go on where it stopped: each id ends up in the file exactly once.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from leanpool._leanjson import loads_deep


def id_key(item_id: Any) -> str:
    """How ids compare across runs: their JSON text (so 7 and "7" stay different)."""
    return json.dumps(item_id, sort_keys=True, ensure_ascii=False, default=str)


class ResultsFile:
    """Appends result records (dicts with an ``"id"``) to `path`.

    With `resume`, the records already there are kept and `done` holds them by id; without it,
    the file is started afresh.
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = False) -> None:
        self.path = Path(path)
        self.done: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            self._read_and_repair()
            flags = os.O_WRONLY | os.O_APPEND
        else:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC
        self._fd: int | None = os.open(self.path, flags | os.O_CREAT, 0o644)

    def _read_and_repair(self) -> None:
        """Load complete lines; cut a torn last line (a writer killed while writing it)."""
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn: never finished
            good += len(line)
            if not line.strip():
                continue
            try:
                record = loads_deep(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue  # not ours to judge: kept, but it does not count as done
            if isinstance(record, dict) and "id" in record:
                self.done[id_key(record["id"])] = record
        if good < len(data):
            with open(self.path, "r+b") as handle:
                handle.truncate(good)

    def is_done(self, item_id: Any) -> bool:
        return id_key(item_id) in self.done

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, now (a failure to write raises `OSError`)."""
        line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path} is closed")
            view = memoryview(line)
            while view:  # a regular file takes it in one write; loop for the rare short one
                written = os.write(self._fd, view)
                view = view[written:]
            if "id" in record:
                self.done[id_key(record["id"])] = record

    def rewrite_in_order(self, ids: list[Any]) -> None:
        """Once a run is complete: the same lines, in the order of `ids` (others after them).

        Written to a new file that then replaces this one (`os.replace` is atomic), so a run
        stopped meanwhile still has every line, in the order they came.
        """
        with self._lock:
            order = {id_key(item): index for index, item in reversed(list(enumerate(ids)))}
            records = sorted(
                self.done.values(), key=lambda r: order.get(id_key(r["id"]), len(order))
            )
            temporary = self.path.with_name(self.path.name + ".reordering")
            with open(temporary, "w", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            os.replace(temporary, self.path)
            if self._fd is not None:  # go on appending to the new file
                os.close(self._fd)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
