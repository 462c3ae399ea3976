"""Asking the approval signer (``paystream signer``) to approve a batch.

A worker holds no approval key: above the contract's approval threshold it
sends the packed batch to the signer on this host and gets M signatures, or
the signer's refusal. Each request has a timeout and is not retried here (the
settlement's bounded retries are): a signer that does not answer leaves the
batch held, and the sweeper asks again later.
"""

from __future__ import annotations

from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from services.errors import InfrastructureError, PaystreamError
from services.settings import Settings


class SignerUnavailable(InfrastructureError):
    """The signer did not answer (or not as a signer): nothing is decided."""


class ApprovalRefused(PaystreamError):
    """The signer's policy refused the batch (``code`` says why)."""

    def __init__(self, code: str, reason: str, payees: tuple[str, ...] = ()) -> None:
        super().__init__(f"the approval signer refused the batch: {code}: {reason}")
        self.code = code
        self.reason = reason
        self.payees = payees


class SignerClient:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: ClientSession | None = None

    async def approve(
        self, contract: str, batch_id: int, packed: bytes, nonce: int, deadline: int
    ) -> list[bytes]:
        body = {
            "chain_id": self.settings.chain_id,
            "contract": contract,
            "batch_id": batch_id,
            "payments": "0x" + packed.hex(),
            "nonce": nonce,
            "deadline": deadline,
        }
        url = f"{self.settings.signer_url}/v1/approvals"
        try:
            async with self._client().post(url, json=body) as response:
                status = response.status
                answer: dict[str, Any] = await response.json(content_type=None)
        except (ClientError, TimeoutError, OSError, ValueError) as exc:
            raise SignerUnavailable(
                f"the approval signer at {url} does not answer ({type(exc).__name__}): "
                "start it with `paystream signer`"
            ) from exc
        if status == 200:
            return [bytes.fromhex(s[2:]) for s in answer["signatures"]]
        if status in (403, 429):
            raise ApprovalRefused(
                str(answer["code"]), str(answer.get("reason", "")), tuple(answer.get("payees", ()))
            )
        raise SignerUnavailable(
            f"the approval signer answered {status} {answer.get('code')} "
            f"{answer.get('reason', '')}".rstrip()
            + (" (PAYSTREAM_SIGNER_TOKEN differs from the signer's)" if status == 401 else "")
        )

    def _client(self) -> ClientSession:
        if self._session is None or self._session.closed:
            self._session = ClientSession(
                timeout=ClientTimeout(total=self.settings.signer_timeout_s),
                headers={
                    "Authorization": f"Bearer {self.settings.signer_token.get_secret_value()}"
                },
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
