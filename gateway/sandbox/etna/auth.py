"""ETNA login: ``POST token`` with credentials in headers, then ``Et-App-Key`` + bearer token on
every call.

* A missing or wrong ``Et-App-Key`` answers 403 ``{"error": …}`` on any endpoint.
* ``POST token`` answers 200 ``{"State": "Succeeded", "Token"}``, 202 ``{"State": "Expecting",
  "Step": "VerificationCode", …, "Token"}`` for a user with two-factor login (send the code in
  ``VerificationCode`` with ``Authorization: Bearer <step-1 token>``), or 401 ``{"State": "Failed",
  "Step", "Reason"}``.
* A missing, unknown or expired token answers 401 ``{"Message": "Authorization has been denied
  for this request."}``. Tokens live ``token_lifetime`` seconds (24 h unless changed).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from .wire import EtnaError, json_response

__all__ = ["AuthStore", "EtnaUser"]


@dataclass(slots=True)
class EtnaUser:
    id: int
    login: str
    password: str
    first_name: str
    last_name: str
    email: str
    accounts: list[str] = field(default_factory=list)
    verification_code: str | None = None  # set: two-factor login
    admin: bool = False


@dataclass(slots=True)
class _Token:
    user: EtnaUser
    expires: float
    step: str | None = None  # "VerificationCode" while the first factor only is done


class AuthStore:
    """Users, the application key and issued tokens of one venue."""

    def __init__(self, app_key: str, token_lifetime: float = 86_400.0) -> None:
        self.app_key = app_key
        self.token_lifetime = token_lifetime
        self.users: dict[str, EtnaUser] = {}
        self._tokens: dict[str, _Token] = {}
        self.issued = 0
        self.denied = 0

    def add_user(self, user: EtnaUser) -> EtnaUser:
        self.users[user.login.lower()] = user
        return user

    def check_app_key(self, request: Request) -> None:
        if request.headers.get("Et-App-Key") != self.app_key:
            raise EtnaError(403)

    def _issue(self, user: EtnaUser, step: str | None = None) -> str:
        token = secrets.token_urlsafe(48)
        lifetime = 300.0 if step else self.token_lifetime
        self._tokens[token] = _Token(user, time.monotonic() + lifetime, step)
        if step is None:
            self.issued += 1
        return token

    def _bearer(self, request: Request) -> _Token | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        entry = self._tokens.get(header[len("Bearer "):])
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            del self._tokens[header[len("Bearer "):]]
            return None
        return entry

    def require(self, request: Request) -> EtnaUser:
        """The user of the request's bearer token, else 403 / 401 as ETNA answers."""
        self.check_app_key(request)
        entry = self._bearer(request)
        if entry is None or entry.step is not None:
            self.denied += 1
            raise EtnaError(401)
        return entry.user

    async def token(self, request: Request) -> Response:
        """``POST token``."""
        self.check_app_key(request)
        code = request.headers.get("VerificationCode")
        if code is not None:
            entry = self._bearer(request)
            if entry is None or entry.step != "VerificationCode":
                return _failed("VerificationCode", "Corrupted ticket")
            if code != entry.user.verification_code:
                return _failed("VerificationCode", "Invalid verification code")
            return json_response({"State": "Succeeded", "Token": self._issue(entry.user)})
        user = self.users.get(request.headers.get("Username", "").lower())
        if user is None or request.headers.get("Password") != user.password:
            return _failed("BaseAuthentication", "Invalid credentials")
        if user.verification_code is not None:
            token = self._issue(user, step="VerificationCode")
            return json_response({"Step": "VerificationCode", "Reason": "Expecting confirmation code",
                                  "State": "Expecting", "Token": token}, 202)
        return json_response({"State": "Succeeded", "Token": self._issue(user)})


def _failed(step: str, reason: str) -> Response:
    return json_response({"State": "Failed", "Step": step, "Reason": reason}, 401)
