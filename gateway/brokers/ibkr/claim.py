"""One IBKR login, one gateway process, when the replicas share nothing (no Redis).

The Client Portal session has one selected account and one reply chain; two processes that each
believe they own it switch it under each other (issue #9 measured incomplete order lists). Without
the Redis backend the adapter therefore claims its login with an exclusive ``flock`` on a file named
after the login (:func:`..runtime.session_name`, never a credential) in the user's runtime directory
(``$XDG_RUNTIME_DIR``, else the temporary directory): a second process on the same machine and login
is refused at start. Processes on other machines cannot be detected this way; the README says to
serve one IBKR login from one replica, or to configure ``[events] backend = "redis"``.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from typing import IO

__all__ = ["LoginClaim", "LoginInUse"]


class LoginInUse(RuntimeError):
    """Another gateway process on this machine serves the same IBKR login without Redis."""


class LoginClaim:
    """An exclusive, process-lifetime claim on ``session`` (released on close or process exit)."""

    def __init__(self, session: str, directory: str | None = None) -> None:
        folder = directory or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        self.path = os.path.join(folder, "broker-gateway-" + re.sub(r"[^A-Za-z0-9_.-]", "_", session) + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Claim the login; raises :class:`LoginInUse` when another process holds it."""
        if self._file is not None:
            return
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the claim's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LoginInUse(
                f"another broker-gateway process serves this IBKR login ({self.path}); one IBKR login needs one "
                "replica unless [events] backend = \"redis\" shares its session between replicas") from None
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
