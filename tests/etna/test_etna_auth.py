"""ETNA tokens: renewal before expiry (no call fails), recovery from a token the venue dropped,
two-factor login, refused credentials."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from etna_harness import Etna

from gateway.domain import AuthenticationError, ConnectionStatus
from gateway.sandbox.etna.seed import TWO_FACTOR_USER


@pytest.fixture(scope="module")
async def etna() -> AsyncIterator[Etna]:
    venue = await Etna().start()
    yield venue
    await venue.stop()


async def _auth(etna: Etna) -> dict[str, float]:
    return dict(await etna.control("GET", "etna/auth"))


async def test_token_is_renewed_before_expiry_without_a_failed_call(etna: Etna) -> None:
    await etna.control("POST", "etna/settings", {"token_lifetime": 0.6})
    adapter = etna.adapter(token_lifetime=0.6)
    try:
        before = await _auth(etna)
        await etna.control("POST", "stats/reset")
        assert len(await adapter.fetch_accounts()) == 2
        renew_at = adapter.client.tokens.renew_at
        await asyncio.sleep(max(renew_at - time.monotonic(), 0) + 0.05)
        assert len(await adapter.fetch_accounts()) == 2  # after the renewal point, before the venue's expiry
        await asyncio.sleep(0.7)  # past the venue's expiry of the second token too
        assert len(await adapter.fetch_accounts()) == 2
        after = await _auth(etna)
        assert after["tokens_issued"] - before["tokens_issued"] == 3
        assert after["denied"] == before["denied"]  # the venue refused nothing
        stats = await etna.stats()
        assert stats == {"POST /api/token": 3, "GET /api/v1.0/users/@me/accounts": 3,  # each with its accounts' cash
                         "GET /api/v1.0/accounts/6303/info": 3, "GET /api/v1.0/accounts/6304/info": 3}
    finally:
        await adapter.close()
        await etna.control("POST", "etna/settings", {"token_lifetime": 86_400})


async def test_token_dropped_by_the_venue_is_replaced_and_the_call_succeeds(etna: Etna) -> None:
    await etna.control("POST", "etna/settings", {"token_lifetime": 0.2})
    adapter = etna.adapter()  # believes tokens live 24 h
    try:
        before = await _auth(etna)
        assert len(await adapter.fetch_accounts()) == 2
        await asyncio.sleep(0.3)
        assert len(await adapter.fetch_accounts()) == 2
        after = await _auth(etna)
        assert after["denied"] - before["denied"] == 1 and after["tokens_issued"] - before["tokens_issued"] == 2
    finally:
        await adapter.close()
        await etna.control("POST", "etna/settings", {"token_lifetime": 86_400})


async def test_two_factor_login_with_verification_code(etna: Etna) -> None:
    creds = {"app_key": etna.venue.credentials["app_key"], **TWO_FACTOR_USER}
    adapter = etna.adapter(credentials=creds)
    try:
        assert [a.account_number for a in await adapter.fetch_accounts()] == ["6310"]
    finally:
        await adapter.close()


async def test_two_factor_login_without_code_is_authentication_error(etna: Etna) -> None:
    creds = {k: v for k, v in TWO_FACTOR_USER.items() if k != "verification_code"}
    adapter = etna.adapter(credentials={"app_key": etna.venue.credentials["app_key"], **creds})
    try:
        with pytest.raises(AuthenticationError) as info:
            await adapter.fetch_accounts()
        assert info.value.broker_code == "VerificationCode"
    finally:
        await adapter.close()


async def test_wrong_password_is_authentication_error_and_start_does_not_raise(etna: Etna) -> None:
    adapter = etna.adapter(credentials={**etna.venue.credentials, "password": "nope"})
    try:
        await adapter.start()
        assert adapter.status is ConnectionStatus.UNAUTHENTICATED
        with pytest.raises(AuthenticationError) as info:
            await adapter.fetch_accounts()
        assert info.value.broker_code == "BaseAuthentication" and info.value.broker_message == "Invalid credentials"
    finally:
        await adapter.close()


async def test_wrong_app_key_is_authentication_error(etna: Etna) -> None:
    adapter = etna.adapter(credentials={**etna.venue.credentials, "app_key": "wrong"})
    try:
        with pytest.raises(AuthenticationError) as info:
            await adapter.fetch_accounts()
        assert info.value.broker_message == "Application key is not defined or does not exist"
    finally:
        await adapter.close()
