"""The approval signer's HTTP service (``paystream signer``), on this host only.

    POST /v1/approvals   Authorization: Bearer <PAYSTREAM_SIGNER_TOKEN>
        {"chain_id": 31337, "contract": "0x..", "batch_id": 7,
         "payments": "0x<56 bytes per payment>", "nonce": "123", "deadline": 1700000000}
    200 {"signatures": ["0x..", ...]}               M signatures, ascending signer address
    403 {"code": "BATCH_OVER_CAP" | "PAYEE_NOT_ALLOWED" | "WRONG_CONTRACT",
         "reason": "...", "payees": [...]}
    429 {"code": "DAILY_CAP_REACHED", "reason": "..."}   try again later
    GET /v1/status        the signers, the policy and what the last 24 h approved

It signs only for the chain and the settlement contract recorded by
`paystream chain deploy` (read at each request), and only batches its policy
allows. Every decision is logged, without the token or any key.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

from aiohttp import web
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.chain.deployment import deployment_file
from services.chain.keys import approval_message, sign_approvals, signer_keys
from services.chain.packing import unpack_batch
from services.errors import InvariantViolation
from services.settings import Settings
from services.signer.journal import ApprovalJournal
from services.signer.policy import Refusal, RefusalCode, SignerPolicy

log = logging.getLogger("paystream.signer")

STATUS = {RefusalCode.DAILY_CAP_REACHED: 429}


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: int
    contract: str
    batch_id: int = Field(ge=0, lt=2**64)
    payments: str = Field(pattern=r"^0x([0-9a-fA-F]{2})+$")
    nonce: int = Field(ge=0, lt=2**256)
    deadline: int = Field(ge=0, lt=2**256)


class Signer:
    def __init__(self, settings: Settings, policy: SignerPolicy, journal: ApprovalJournal) -> None:
        self.settings = settings
        self.policy = policy
        self.journal = journal
        self.keys: tuple[LocalAccount, ...] = signer_keys(settings)

    def contract(self) -> str | None:
        """The settlement contract recorded for the signer's chain."""
        path = deployment_file(self.settings)
        if not path.exists():
            return None
        return str(json.loads(path.read_text())["settlement"])

    def approve(self, request: ApprovalRequest) -> list[bytes] | Refusal:
        contract = self.contract()
        if request.chain_id != self.settings.chain_id or (
            contract is None or request.contract.lower() != contract.lower()
        ):
            return Refusal(
                RefusalCode.WRONG_CONTRACT,
                f"the signer signs for chain {self.settings.chain_id}, contract {contract}",
            )
        packed = bytes.fromhex(request.payments[2:])
        records = unpack_batch(packed)
        payments_hash = keccak(packed)
        again = self.journal.approved(payments_hash.hex())
        spent = self.journal.spent()
        if again:  # counted once: judged as if it were not yet counted
            spent -= sum(r.amount for r in records)
        refusal = self.policy.judge(records, spent)
        if refusal is not None:
            return refusal
        if not again:
            self.journal.record(payments_hash.hex(), sum(r.amount for r in records))
        message = approval_message(
            request.chain_id,
            contract,
            request.batch_id,
            payments_hash,
            request.nonce,
            request.deadline,
        )
        return sign_approvals(list(self.keys[: self.settings.chain_required_approvals]), message)

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": self.settings.chain_id,
            "contract": self.contract(),
            "signers": [a.address for a in self.keys],
            "required_approvals": self.settings.chain_required_approvals,
            "policy": self.policy.model_dump(mode="json"),
            "approved_24h": self.journal.spent(),
        }


def signer_app(signer: Signer) -> web.Application:
    token = signer.settings.signer_token.get_secret_value().encode()

    def authorised(request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        return hmac.compare_digest(given, token)

    async def approvals(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"code": "UNAUTHORISED"}, status=401)
        try:
            body = ApprovalRequest.model_validate(await request.json())
            decided = signer.approve(body)
        except (ValueError, ValidationError, InvariantViolation) as exc:
            return web.json_response({"code": "MALFORMED", "reason": str(exc)}, status=400)
        if isinstance(decided, Refusal):
            log.warning("batch %s refused: %s %s", body.batch_id, decided.code, decided.reason)
            return web.json_response(
                {"code": decided.code, "reason": decided.reason, "payees": decided.payees},
                status=STATUS.get(decided.code, 403),
            )
        log.info("batch %s approved (%d bytes)", body.batch_id, len(body.payments) // 2 - 1)
        return web.json_response({"signatures": ["0x" + s.hex() for s in decided]})

    async def status(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"code": "UNAUTHORISED"}, status=401)
        return web.json_response(signer.status())

    app = web.Application(client_max_size=2**20)
    app.router.add_post("/v1/approvals", approvals)
    app.router.add_get("/v1/status", status)
    return app


def build_signer(settings: Settings) -> Signer:
    """The signer of ``settings``: its keys, policy and journal (refuses to
    start without a valid policy, or without its keys off the local chain)."""
    policy = SignerPolicy.load(settings.signer_policy_file)
    path = settings.state_dir / "signer" / f"approvals-{settings.chain_id}.jsonl"
    return Signer(settings, policy, ApprovalJournal(path, time.time))
