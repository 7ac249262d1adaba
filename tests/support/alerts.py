"""Alert test helpers: residents subscribed the way the service does it (asked and confirmed, consent recorded),
staff tokens for the alerts API, a ready-made alert, and waiting for an alert to finish."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from carehub.clock import utcnow
from carehub.models import Consent, Contact, ContactAddress, Role, Subscription
from carehub.runtime import Runtime
from carehub.subscriptions import repository as subs
from carehub.subscriptions import service
from channels.base import ChannelKind
from tests.conftest import Hub
from tests.support.waiting import eventually

# Alert settings that make sends fast and the tick quick, for tests that wait for an alert to finish.
FAST = {"sms_mps": 500.0, "email_mps": 500.0, "alert_interval_seconds": 1}
WATER_MAIN = {
    "en": {
        "sms": "Water main break on Kingston Rd. Boil water before you drink it.",
        "email_subject": "Boil water advisory",
        "email_body": "A water main broke on Kingston Road.\n\nBoil water for one minute before you drink it.",
    },
    "fr": {
        "sms": "Bris de conduite d'eau sur le chemin Kingston. Faites bouillir l'eau avant de la boire.",
        "email_subject": "Avis d'ébullition de l'eau",
        "email_body": "Une conduite d'eau a cédé sur le chemin Kingston.\n\nFaites bouillir l'eau une minute.",
    },
}
WORDING = "I agree to receive alerts from the City of Pickering about the topics I chose."


async def subscribe(
    rt: Runtime,
    channel: ChannelKind,
    addresses: Sequence[str],
    topic: str = "water",
    *,
    language: str = "en",
    area_id: int | None = None,
) -> list[int]:
    """Confirmed subscriptions of these addresses to a topic, in one transaction; returns their ids."""
    ids: list[int] = []
    async with rt.transaction() as tx:
        now = utcnow()
        found = await subs.topic_by(tx.conn, slug=topic)
        assert found is not None, f"no topic {topic}"
        for address in addresses:
            asked = await service.request(
                tx.conn,
                rt.settings,
                channel=channel,
                address=address,
                topic_ids=[found.id],
                area_id=area_id,
                language=language,
                method=service.Method.STAFF,
                wording=WORDING,
                now=now,
            )
            active = await service.confirm(
                tx.conn,
                channel=channel,
                address_id=asked.address_id,
                code=asked.code,
                method=service.Method.STAFF,
                wording=WORDING,
                now=now,
            )
            assert active, f"{address} was not confirmed"
            ids.extend(s.id for s in active)
    return ids


CONTACTS = Contact.__table__  # type: ignore[attr-defined]
ADDRESSES = ContactAddress.__table__  # type: ignore[attr-defined]
SUBSCRIPTIONS = Subscription.__table__  # type: ignore[attr-defined]
CONSENTS = Consent.__table__  # type: ignore[attr-defined]
# What subscribing one new address writes, parents first: the copies below must be exactly this.
_WRITTEN = ("contacts", "contact_addresses", "subscriptions", "consents")


async def subscribe_many(
    rt: Runtime, channel: ChannelKind, addresses: Sequence[str], topic: str = "water", *, language: str = "en"
) -> None:
    """The same store as subscribe() for thousands of new addresses, in a second instead of a minute: the first
    address goes through the service (asked, confirmed, consent recorded); the others get copies of exactly the
    rows it wrote, inserted in bulk. Fails if the service writes anything else, so the copies cannot drift."""
    first, rest = addresses[0], addresses[1:]
    async with rt.transaction() as tx:
        before = await _row_counts(tx.conn)
    await subscribe(rt, channel, [first], topic, language=language)
    async with rt.transaction() as tx:
        conn = tx.conn
        after = await _row_counts(conn)
        changed = {name for name, n in after.items() if n != before[name]}
        assert changed == set(_WRITTEN), f"subscribing wrote {sorted(changed)}; subscribe_many copies {_WRITTEN}"
        if not rest:
            return
        address = (
            (
                await conn.execute(
                    select(ADDRESSES).where(ADDRESSES.c.channel == channel.value, ADDRESSES.c.address == first)
                )
            )
            .one()
            ._asdict()
        )
        contact = (await conn.execute(select(CONTACTS).where(CONTACTS.c.id == address["contact_id"]))).one()._asdict()
        subscriptions = [
            r._asdict()
            for r in await conn.execute(select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.address_id == address["id"]))
        ]
        consents = [
            r._asdict() for r in await conn.execute(select(CONSENTS).where(CONSENTS.c.address_id == address["id"]))
        ]
        contact_ids = await _insert_returning_ids(conn, CONTACTS, [_copy(contact) for _ in rest])
        address_ids = await _insert_returning_ids(
            conn,
            ADDRESSES,
            [_copy(address, contact_id=c, address=a) for c, a in zip(contact_ids, rest, strict=True)],
        )
        await conn.execute(insert(SUBSCRIPTIONS), [_copy(s, address_id=a) for a in address_ids for s in subscriptions])
        await conn.execute(insert(CONSENTS), [_copy(c, address_id=a) for a in address_ids for c in consents])


async def _row_counts(conn: AsyncConnection) -> dict[str, int]:
    return {
        name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
        for name, table in SQLModel.metadata.tables.items()
    }


def _copy(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**{k: v for k, v in row.items() if k != "id"}, **changes}


async def _insert_returning_ids(conn: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    result = await conn.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [int(i) for i in result.scalars()]


def phone(i: int) -> str:
    """A distinct valid Canadian mobile-style number per i (555-01xx numbers are reserved for fiction)."""
    return f"+1905555{i:04d}"


async def staff(hub: Hub, role: Role = Role.COMMUNICATIONS, email: str | None = None) -> dict[str, str]:
    """Bearer headers of a new agent with this role (communications staff by default)."""
    return {"Authorization": f"Bearer {await hub.agent_token(role, email)}"}


def draft(**overrides: Any) -> dict[str, Any]:
    """A water main alert to the water topic, with English and French text; overrides replace fields."""
    return {"title": "Water main break", "topic": "water", "content": WATER_MAIN, **overrides}


async def report_when_done(hub: Hub, headers: dict[str, str], alert_id: int, within: float = 20) -> dict[str, Any]:
    """The alert (with its report) once it is sent or cancelled and every delivery has reached a final state."""

    async def done() -> dict[str, Any] | None:
        alert: dict[str, Any] = (await hub.client.get(f"/api/v1/alerts/{alert_id}", headers=headers)).json()
        report = alert["report"]
        final = alert["status"] in ("sent", "cancelled") and report["done"] == report["total"]
        return alert if final else None

    return await eventually(done, within=within, interval=0.05, what=f"alert {alert_id} to finish")
