"""BrokerConnection: one configured connection to a broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from ...domain.enums import ConnectionStatus
from ...domain.errors import AuthenticationError, GatewayError, OperationFailed
from ...domain.keys import ConnectionKey
from ..common import Node
from ..context import Info
from ..enums import BrokerEnum, ConnectionStatusEnum
from ..ids import encode

if TYPE_CHECKING:
    from ..account.types import Account
    from ..allocation_group.types import AllocationGroup

__all__ = ["BrokerConnection"]


@strawberry.type(description="A configured connection to one broker (one set of credentials).")
class BrokerConnection(Node):
    name: str = strawberry.field(description="The connection's name, as configured.")
    broker: BrokerEnum = strawberry.field(description="Which broker it speaks to.")

    @classmethod
    def build(cls, name: str, broker: str) -> BrokerConnection:
        return cls(id=strawberry.ID(encode(ConnectionKey(name))), name=name, broker=BrokerEnum(broker))

    @strawberry.field(description="Health as seen by this request: it reads the accounts (once per request) to tell.")
    async def status(self, info: Info) -> ConnectionStatusEnum:
        try:
            await info.context.loaders.account_list_by_connection.load(self.name)
        except AuthenticationError:
            return ConnectionStatusEnum(ConnectionStatus.UNAUTHENTICATED.value)
        except OperationFailed:
            return ConnectionStatusEnum(ConnectionStatus.DOWN.value)
        except GatewayError:
            return ConnectionStatusEnum(ConnectionStatus.DEGRADED.value)
        return ConnectionStatusEnum(info.context.registry.get(self.name).status.value)

    @strawberry.field(description="The connection's accounts; empty with an `errors[]` entry when the broker fails.")
    async def accounts(self, info: Info) -> list[Annotated[Account, strawberry.lazy("..account.types")]]:
        from ..account.types import Account

        try:
            accounts = await info.context.loaders.account_list_by_connection.load(self.name)
        except GatewayError as exc:
            info.context.report(exc.with_connection(self.name), info)
            return []
        return [Account.from_domain(a) for a in accounts]

    @strawberry.field(description="The connection's allocation groups (IBKR Financial Advisor); empty elsewhere.")
    async def allocation_groups(self, info: Info
                                ) -> list[Annotated[AllocationGroup, strawberry.lazy("..allocation_group.types")]]:
        from ..allocation_group.types import AllocationGroup

        try:
            groups = await info.context.loaders.allocation_groups_by_connection.load(self.name)
        except GatewayError as exc:
            info.context.report(exc.with_connection(self.name), info)
            return []
        return [AllocationGroup.from_domain(g) for g in groups]
