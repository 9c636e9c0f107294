"""ETNA tokens: ``POST token`` with the credentials in headers, renewed before they expire.

ETNA does not say when a token expires (24 h per its docs); the connection option
``token_lifetime`` (seconds, default 86 400) says it, and a token is renewed once
``max(lifetime - 300, lifetime * 0.8)`` seconds have passed, so that no call is sent with an
expired token. One lock makes concurrent callers share one login.

Credentials (``ConnectionConfig.credentials``): ``app_key``, ``username``, ``password``; optional
``pin`` (``PinCode``) and ``verification_code`` (the second step of two-factor login).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from ...config import ConnectionConfig
from ...domain.errors import AuthenticationError, BadResponse
from ..http import HttpClient

__all__ = ["TokenManager"]


class TokenManager:
    """Holds the current bearer token of one connection.

    Args:
        http: an :class:`HttpClient` without bearer headers (the ``token`` endpoint takes none).
        config: the connection (credentials, option ``token_lifetime``).
    """

    def __init__(self, http: HttpClient, config: ConnectionConfig) -> None:
        self.http = http
        self.config = config
        self.lifetime = float(config.options.get("token_lifetime", 86_400.0))
        self.token: str | None = None
        self.renew_at = 0.0
        self.logins = 0
        self._lock = asyncio.Lock()

    def headers(self) -> Mapping[str, str]:
        """``Authorization: Bearer <token>`` (empty before the first login)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def valid(self) -> bool:
        return self.token is not None and time.monotonic() < self.renew_at

    async def ensure(self) -> str:
        """A token that will not expire before the next call is answered; logs in when needed.

        Raises:
            AuthenticationError: credentials missing or refused, or two-factor login without a code.
        """
        if self.valid():
            assert self.token is not None
            return self.token
        async with self._lock:
            if not self.valid():
                await self._login()
            assert self.token is not None
            return self.token

    def invalidate(self, token: str | None) -> None:
        """Forget ``token`` (the broker refused it) unless a newer one has replaced it already."""
        if token is not None and token == self.token:
            self.token = None

    def _credential(self, name: str) -> str:
        value = self.config.credential(name)
        if not value:
            raise AuthenticationError(f"ETNA credential {name!r} is not configured", connection=self.config.name)
        return value

    async def _login(self) -> None:
        """``POST token``: 200 ``Succeeded``; 202 ``Expecting`` ``VerificationCode`` → second step."""
        headers = {"Username": self._credential("username"), "Password": self._credential("password")}
        pin = self.config.credential("pin")
        if pin:
            headers["PinCode"] = pin
        started = time.monotonic()
        response = await self.http.read("POST", "token", headers=headers)
        body = response.body if isinstance(response.body, dict) else {}
        if response.status == 202 and body.get("State") == "Expecting":
            code = self.config.credential("verification_code")
            if body.get("Step") != "VerificationCode" or not code:
                raise AuthenticationError(f"ETNA login needs step {body.get('Step')!r}: {body.get('Reason')}",
                                          connection=self.config.name, broker_code=str(body.get("Step")),
                                          broker_message=str(body.get("Reason")))
            second = {"VerificationCode": code, "Authorization": f"Bearer {body.get('Token')}"}
            response = await self.http.read("POST", "token", headers=second)
            body = response.body if isinstance(response.body, dict) else {}
        if response.status != 200 or body.get("State") != "Succeeded" or not isinstance(body.get("Token"), str):
            raise BadResponse(f"unexpected ETNA token answer (HTTP {response.status}, State {body.get('State')!r})",
                              connection=self.config.name)
        self.token = body["Token"]
        margin = min(300.0, self.lifetime * 0.2)
        self.renew_at = started + self.lifetime - margin
        self.logins += 1
