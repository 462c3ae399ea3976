"""What the deployment's admin (or a second holder of the operator key) does to
the scenario's chain, behind the engine's back."""

from __future__ import annotations

from services.bootstrap import chain_client
from tests.faults.pipeline import FaultPipeline
from tests.support.keys import keys_of


async def move_treasury(p: FaultPipeline, keep: int | None) -> int:
    """Withdraw all but ``keep`` of the treasury to the admin (``keep`` None:
    send back all the admin holds); the treasury's balance after."""
    client = await chain_client(p.settings)
    admin = keys_of(client).admin
    if keep is not None:
        held = await client.treasury_balance()
        await client.call_settlement(admin, "withdraw", admin.address, held - keep)
    else:
        back = await client.token_balance(admin.address)
        await client.call_token(admin, "transfer", client.deployment.settlement, back)
    return await client.treasury_balance()


async def blacklist(p: FaultPipeline, address: str) -> None:
    """The token refuses every transfer to ``address`` from now on."""
    client = await chain_client(p.settings)
    await client.call_token(keys_of(client).admin, "setBlacklisted", address, True)
    assert not await client.payee_accepts(address)


async def top_up_treasury(p: FaultPipeline, amount: int) -> int:
    """The platform adds ``amount`` to the treasury (minted straight to the
    settlement contract: no one's deposit); the treasury's balance after."""
    client = await chain_client(p.settings)
    await client.call_token(keys_of(client).admin, "mint", client.deployment.settlement, amount)
    return await client.treasury_balance()
