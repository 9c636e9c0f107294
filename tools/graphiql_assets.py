"""Refresh the vendored GraphiQL assets from the npm registry (``make graphiql-assets``).

The explorer page must work without a network: react, react-dom, graphiql and the explorer plugin are
served by the gateway from ``gateway/graphiql/static/vendor/``, pinned here. This script downloads each
pinned package with ``npm pack`` (the ordinary npm client and registry), copies the browser builds and
the licences, removes the source-map comments (the maps are not shipped, so a browser would ask for
them in vain), and writes ``VERSIONS.json`` with each package's registry integrity and each file's
SHA-256 (a test checks the files against it). Commit the result: a fresh clone needs no network.

Usage: ``python tools/graphiql_assets.py [--dest DIR]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

__all__ = ["PINS", "main", "refresh"]

ROOT = Path(__file__).resolve().parent.parent
DEST = ROOT / "gateway" / "graphiql" / "static" / "vendor"

#: package → (version, {file in the package: vendored name}, licence file in the package or None)
PINS: dict[str, tuple[str, dict[str, str], str | None]] = {
    "react": ("18.3.1", {"umd/react.production.min.js": "react.production.min.js"}, "LICENSE"),
    "react-dom": ("18.3.1", {"umd/react-dom.production.min.js": "react-dom.production.min.js"}, "LICENSE"),
    "graphiql": ("3.8.3", {"graphiql.min.js": "graphiql.min.js", "graphiql.min.css": "graphiql.min.css"}, "LICENSE"),
    # the plugin's tarball has no licence file: it is MIT, from graphiql's repository (its LICENSE applies)
    "@graphiql/plugin-explorer": ("3.2.5", {"dist/index.umd.js": "plugin-explorer.umd.js",
                                            "dist/style.css": "plugin-explorer.css"}, None),
    # bundled into the plugin's UMD build: only its licence is vendored
    "graphiql-explorer": ("0.9.0", {}, "LICENSE"),
}

_SOURCE_MAP = re.compile(rb"\n?(//[#@] sourceMappingURL=[^\n]*|/\*[#@] sourceMappingURL=[^*]*\*/)\s*$")


def _pack(spec: str, workdir: Path) -> tuple[Path, str]:
    """``npm pack spec`` into ``workdir``: the tarball and its registry integrity."""
    out = subprocess.run(["npm", "pack", spec, "--json", "--silent", "--pack-destination", str(workdir)],
                         check=True, capture_output=True, text=True).stdout
    info = json.loads(out)[0]
    return workdir / info["filename"], info["integrity"]


def _member(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(f"package/{name}")
    if handle is None:  # pragma: no cover - a directory
        raise FileNotFoundError(name)
    return handle.read()


def refresh(dest: Path = DEST) -> dict[str, dict[str, object]]:
    """Download every pinned package and rewrite ``dest`` (see the module docstring)."""
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed (Debian: apt-get install npm)")
    versions: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "vendor"
        (staging / "LICENSES").mkdir(parents=True)
        graphiql_licence = b""
        for package, (version, files, licence) in PINS.items():
            tarball, integrity = _pack(f"{package}@{version}", Path(tmp))
            record: dict[str, object] = {"version": version, "integrity": integrity, "files": {}}
            with tarfile.open(tarball) as tar:
                for source, name in files.items():
                    data = _SOURCE_MAP.sub(b"\n", _member(tar, source)).rstrip(b"\n") + b"\n"
                    (staging / name).write_bytes(data)
                    record["files"][name] = hashlib.sha256(data).hexdigest()  # type: ignore[index]
                text = _member(tar, licence) if licence else graphiql_licence
                if package == "graphiql":
                    graphiql_licence = text
            if not text:
                raise SystemExit(f"no licence text for {package}")
            header = f"{package} {version} (npm), licence as published with the package\n\n".encode()
            if licence is None:
                header = (f"{package} {version} (npm): MIT per its package.json; it is published from the "
                          f"graphiql repository, whose LICENSE follows\n\n").encode()
            licence_name = package.replace("@", "").replace("/", "__") + ".txt"
            (staging / "LICENSES" / licence_name).write_bytes(header + text)
            versions[package] = record
        (staging / "VERSIONS.json").write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(staging, dest)
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Vendor the pinned GraphiQL assets from the npm registry.")
    parser.add_argument("--dest", type=Path, default=DEST, help="target directory (default: %(default)s)")
    args = parser.parse_args(argv)
    versions = refresh(args.dest)
    for package, record in versions.items():
        print(f"{package}@{record['version']}: {', '.join(record['files']) or 'licence only'}")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
