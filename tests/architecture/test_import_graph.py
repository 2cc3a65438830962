"""services/ is layered: a package imports only packages of lower layers (never upward, no cycles),
and jobs and audit share the queue plumbing without importing each other."""
from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"
LAYERS = {
    "config": 0, "observability": 0,
    "moderation": 1, "generation": 1, "templates": 1, "queue": 1,
    "audit": 2, "jobs": 2, "model_store": 2, "training": 2,
    "feedback": 3,  # redacts texts by the audit's rule
    "pipeline": 4,
    "api": 5,
    "web": 6,
    "cli": 7,
}
APART = [("jobs", "audit"), ("audit", "jobs")]


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def imports() -> list[tuple[str, str, str]]:
    """(file, importing package, imported package) for every services.* import."""
    found = []
    for path in SERVICES.rglob("*.py"):
        rel = path.relative_to(SERVICES)
        source = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                target = package_of(name)
                if target and target != source:
                    found.append((str(rel), source, target))
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in SERVICES.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in SERVICES.glob("*.py") if p.stem != "__init__"}
    assert packages <= set(LAYERS), f"give these a layer: {sorted(packages - set(LAYERS))}"


def test_no_import_runs_upward():
    upward = [(f, s, t) for f, s, t in imports() if t in LAYERS and s in LAYERS and LAYERS[t] >= LAYERS[s]]
    assert upward == [], "imports that run upward or sideways: " + ", ".join(f"{f}: {s} -> {t}" for f, s, t in upward)


def test_jobs_and_audit_do_not_import_each_other():
    crossing = [(f, s, t) for f, s, t in imports() if (s, t) in APART]
    assert crossing == []
