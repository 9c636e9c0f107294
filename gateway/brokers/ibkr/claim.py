"""One IBKR login, one gateway process, when the replicas share nothing (no Redis).

The Client Portal session has one selected account and one reply chain; two processes that each
believe they own it switch it under each other (issue #9 measured incomplete order lists). Without
the Redis backend the adapter therefore claims its login with an exclusive ``flock`` on a file named
after the login (:func:`..runtime.session_name`, never a credential) in the user's runtime directory
(``$XDG_RUNTIME_DIR``, else the temporary directory): a second process on the same machine and login
is refused at start (``broker-gateway serve`` says so in one line and exits). Processes on other
machines cannot be detected this way; the README says to serve one IBKR login from one replica, or to
configure ``[events] backend = "redis"``.
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


#: path → (the open, locked file, how many claims of this process hold it)
_held: dict[str, tuple[IO[str], int]] = {}


class LoginClaim:
    """A claim on ``session`` exclusive to this process (several claims inside the process share it;
    the file lock goes with the last release, or with the process)."""

    def __init__(self, session: str, directory: str | None = None) -> None:
        folder = directory or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        self.path = os.path.join(folder, "broker-gateway-" + re.sub(r"[^A-Za-z0-9_.-]", "_", session) + ".lock")
        self.held = False

    def acquire(self) -> None:
        """Claim the login; raises :class:`LoginInUse` when another process holds it."""
        if self.held:
            return
        if self.path in _held:
            handle, count = _held[self.path]
            _held[self.path] = (handle, count + 1)
            self.held = True
            return
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the claim's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LoginInUse(
                f"another broker-gateway process serves this IBKR login ({self.path}); one IBKR login needs one "
                "replica unless [events] backend = \"redis\" shares its session between replicas") from None
        _held[self.path] = (handle, 1)
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        handle, count = _held.pop(self.path)
        if count > 1:
            _held[self.path] = (handle, count - 1)
            return
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
