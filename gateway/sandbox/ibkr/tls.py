"""An optional self-signed certificate for serving the IBKR sandbox over HTTPS, like the CP gateway
at ``https://localhost:5000``. Uses the ``openssl`` command line tool (the ``cryptography`` package
is not a dependency)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["self_signed"]


def self_signed(directory: str | None = None) -> tuple[str, str]:
    """Write a fresh self-signed certificate for ``localhost`` / ``127.0.0.1``; returns
    ``(certfile, keyfile)``. Raises ``RuntimeError`` when ``openssl`` is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("serving the IBKR sandbox over HTTPS needs the openssl command line tool")
    out = Path(directory or tempfile.mkdtemp(prefix="ibkr-sandbox-tls-"))
    cert, key = out / "cert.pem", out / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)
