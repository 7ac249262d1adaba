"""Which of the city's alerts its CAP feed publishes, gathered with their topic, areas and parent for export."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.alerts import repository as alerts
from carehub.cap.export import PublishedAlert, PublishedArea
from carehub.db import AnyRow
from carehub.models import AlertStatus

FEED_SIZE = 50


async def recent(conn: AsyncConnection, limit: int = FEED_SIZE) -> list[PublishedAlert]:
    """The newest published alerts, newest first."""
    return await _gather(conn, await alerts.published(conn, limit=limit))


async def one(conn: AsyncConnection, alert_id: int) -> PublishedAlert | None:
    """The alert if it is published (a draft or an alert that never started is not)."""
    found = await _gather(conn, await alerts.published(conn, limit=1, alert_id=alert_id))
    return found[0] if found else None


async def _gather(conn: AsyncConnection, rows: Sequence[AnyRow]) -> list[PublishedAlert]:
    topics = await alerts.topics_by_id(conn, sorted({r.topic_id for r in rows if r.topic_id is not None}))
    areas = await alerts.areas_by_id(conn, sorted({i for r in rows for i in r.area_ids or []}))
    parents = await alerts.started_at(conn, sorted({r.parent_id for r in rows if r.parent_id is not None}))
    published = []
    for row in rows:
        topic = topics.get(row.topic_id) if row.topic_id is not None else None
        parent_sent = parents.get(row.parent_id) if row.parent_id is not None else None
        cancelled = row.status == AlertStatus.CANCELLED.value
        published.append(
            PublishedAlert(
                id=row.id,
                kind=row.kind,
                title=row.title,
                emergency=bool(row.emergency),
                content=row.content,
                started_at=row.started_at,
                cancelled_at=(row.cancelled_at or row.started_at) if cancelled else None,
                topic_slug=topic.slug if topic is not None else None,
                topic_names={"en": topic.name_en, "fr": topic.name_fr} if topic is not None else {},
                areas=tuple(PublishedArea(areas[i].name, areas[i].geometry) for i in row.area_ids or [] if i in areas),
                # An update always follows an alert that went out; one that did not is left unreferenced.
                parent=(row.parent_id, parent_sent) if parent_sent is not None else None,
            )
        )
    return published
