"""The city's public CAP feed: its alerts that went out, as CAP 1.2 messages and an Atom feed linking to them.

Public and unauthenticated: these are the alerts residents were sent."""

from __future__ import annotations

from fastapi import APIRouter, Response

from carehub.agents.auth import RuntimeDep
from carehub.cap import published
from carehub.cap.export import ATOM_MEDIA_TYPE, CAP_MEDIA_TYPE, Publisher, alert_xml, atom_feed
from carehub.clock import utcnow
from carehub.problems import Problem

router = APIRouter(prefix="/cap", tags=["cap"])
# Aggregators poll every minute or so; a minute's staleness is nothing next to the SMS and email that went first.
CACHE = {"Cache-Control": "public, max-age=60"}


@router.get("/alerts.atom", response_class=Response)
async def alerts_feed(rt: RuntimeDep) -> Response:
    """An Atom 1.0 feed of the newest published alerts (at most 50), each entry linking to its CAP message."""
    async with rt.transaction() as tx:
        alerts = await published.recent(tx.conn)
    body = atom_feed(alerts, Publisher.from_settings(rt.settings), utcnow())
    return Response(body, media_type=ATOM_MEDIA_TYPE, headers=CACHE)


@router.get("/alerts/{alert_id}.xml", response_class=Response)
async def alert_message(alert_id: int, rt: RuntimeDep) -> Response:
    """One published alert as a CAP 1.2 message (a Cancel for one cancelled after its deliveries started)."""
    async with rt.transaction() as tx:
        alert = await published.one(tx.conn, alert_id)
    if alert is None:
        raise Problem(404, "There is no published alert with this id.")
    return Response(alert_xml(alert, Publisher.from_settings(rt.settings)), media_type=CAP_MEDIA_TYPE, headers=CACHE)
