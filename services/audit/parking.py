"""Where audit events wait when they cannot be written yet, and how they get back.

- `Spool` (Router side): one JSON file per event in `audit.spool_dir`, written atomically and
  fsync'ed; used when the broker refused an event and PostgreSQL did too (or at shutdown).
- `DeadLetters` (worker side): a Redis list (`audit.deadletter_key`) for events whose PostgreSQL
  write failed `audit.max_retries` times.
Replay is idempotent: rows are inserted ON CONFLICT (event_id) DO NOTHING, and an entry is
removed only after its write succeeded, so a crash mid-replay repeats work but loses nothing.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator


class Spool:
    def __init__(self, directory: Path | str):
        self.dir = Path(directory)

    def put(self, event: dict[str, Any]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{event.get('event_id') or uuid.uuid4().hex}.json"
        tmp = self.dir / f".{name}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(event, fh)
            fh.flush()
            os.fsync(fh.fileno())
        path = self.dir / name
        os.replace(tmp, path)  # readers never see half a file
        return path

    def paths(self) -> list[Path]:
        try:
            return sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except FileNotFoundError:
            return []

    def __len__(self) -> int:
        return len(self.paths())

    def drain(self, send: Callable[[dict[str, Any]], Any], limit: int | None = None) -> int:
        """send() each parked event, oldest first, removing it once sent; stops at the first failure."""
        done = 0
        for path in self.paths()[:limit]:
            try:
                event = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:  # another drainer took it
                continue
            send(event)
            path.unlink(missing_ok=True)
            done += 1
        return done


class DeadLetters:
    def __init__(self, redis_client: Any, key: str):
        self.r, self.key = redis_client, key

    def put(self, event: dict[str, Any]) -> None:
        self.r.lpush(self.key, json.dumps(event, default=str))

    def __len__(self) -> int:
        return int(self.r.llen(self.key))

    def _oldest(self, n: int) -> Iterator[tuple[bytes | str, dict[str, Any]]]:
        for raw in reversed(self.r.lrange(self.key, -n, -1)):
            yield raw, json.loads(raw)

    def drain(self, write: Callable[[dict[str, Any]], Any], limit: int = 100) -> int:
        """write() up to `limit` parked events (oldest first), each removed after its write succeeded."""
        done = 0
        for raw, event in self._oldest(limit):
            write(event)
            self.r.lrem(self.key, 1, raw)
            done += 1
        return done
