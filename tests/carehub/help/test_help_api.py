"""The help centre's staff API and learning: writers create, publish, update and archive articles (Markdown
sanitised, audited, embedded), agents read and search but cannot write, review dates, and the insights show
searches with no good result and each article's yes/no feedback."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from carehub.clock import utcnow
from carehub.help import repository
from carehub.models import AuditEvent, Role
from tests.conftest import Hub
from tests.support.alerts import staff

AUDIT = AuditEvent.__table__  # type: ignore[attr-defined]

ARTICLE = {
    "key": "missed-waste-collection",
    "language": "en",
    "title": "Missed waste collection",
    "summary": "What to do when your garbage was not collected.",
    "body_markdown": "Leave it at the curb until **8 p.m.**\n\n<script>alert(1)</script> [Durham](https://durham.ca)"
    " [bad](javascript:alert(1))",
    "topic": "waste",
    "keywords": ["garbage", "trash"],
    "related_services": ["Garbage and recycling"],
}


async def test_a_writer_publishes_an_article_that_residents_then_find(hub: Hub) -> None:
    writer = await staff(hub, Role.COMMUNICATIONS)
    created = await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)
    assert created.status_code == 201, created.text
    article = created.json()
    assert article["status"] == "draft"
    assert article["searchable_by_meaning"] is True
    assert "<strong>8 p.m.</strong>" in article["body_html"]
    assert "<script" not in article["body_html"]
    assert 'href="https://durham.ca" rel="noopener noreferrer"' in article["body_html"]
    assert "javascript:" not in article["body_html"].replace("[bad](javascript:alert(1))", "")
    assert article["review_due_at"] is not None

    # A draft is not public.
    assert (await hub.client.get("/help/missed-waste-collection")).status_code == 404
    published = await hub.client.post(f"/api/v1/help/articles/{article['id']}/publish", headers=writer)
    assert published.json()["status"] == "published"

    page = await hub.client.get("/help/missed-waste-collection")
    assert page.status_code == 200
    assert "Missed waste collection" in page.text
    found = await hub.client.get("/help/search", params={"q": "the trash truck never came"})
    assert "/help/missed-waste-collection" in found.text

    async with hub.runtime.transaction() as tx:
        audited = await tx.conn.execute(
            select(AUDIT.c.action).where(AUDIT.c.entity_type == "help_article").order_by(AUDIT.c.id)
        )
        assert [r.action for r in audited] == ["create", "publish"]


async def test_agents_read_and_search_but_cannot_write(hub: Hub) -> None:
    writer = await staff(hub, Role.SUPERVISOR, "sup@city.test")
    agent = await staff(hub, Role.AGENT, "agent@city.test")
    refused = await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=agent)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")

    article = (await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)).json()
    await hub.client.post(f"/api/v1/help/articles/{article['id']}/publish", headers=writer)
    listed = await hub.client.get("/api/v1/help/articles", params={"status": "published"}, headers=agent)
    assert [a["key"] for a in listed.json()] == ["missed-waste-collection"]
    searched = await hub.client.get("/api/v1/help/search", params={"q": "garbage not picked up"}, headers=agent)
    assert searched.json()["hits"][0]["url"].endswith("/help/missed-waste-collection")
    assert searched.json()["good"] is True

    duplicate = await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)
    assert duplicate.status_code == 409
    bad_key = await hub.client.post("/api/v1/help/articles", json={**ARTICLE, "key": "Not A Slug"}, headers=writer)
    assert bad_key.status_code == 422
    bad_topic = await hub.client.post(
        "/api/v1/help/articles", json={**ARTICLE, "topic": "Waste Things"}, headers=writer
    )
    assert bad_topic.status_code == 422
    bad_change = await hub.client.patch(
        f"/api/v1/help/articles/{article['id']}", json={"topic": "Waste Things"}, headers=writer
    )
    assert bad_change.status_code == 422


async def test_an_edit_re_renders_and_archiving_takes_an_article_off_the_pages(hub: Hub) -> None:
    writer = await staff(hub)
    article = (await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)).json()
    await hub.client.post(f"/api/v1/help/articles/{article['id']}/publish", headers=writer)
    changed = await hub.client.patch(
        f"/api/v1/help/articles/{article['id']}", json={"body_markdown": "Call *Durham Region*."}, headers=writer
    )
    assert changed.json()["body_html"] == "<p>Call <em>Durham Region</em>.</p>\n"
    archived = await hub.client.post(f"/api/v1/help/articles/{article['id']}/archive", headers=writer)
    assert archived.json()["status"] == "archived"
    assert (await hub.client.get("/help/missed-waste-collection")).status_code == 404
    answer = await hub.client.get("/api/v1/help/search", params={"q": "garbage not picked up"}, headers=writer)
    assert answer.json()["hits"] == []


async def test_articles_due_for_review_are_listed(hub: Hub) -> None:
    writer = await staff(hub)
    article = (await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)).json()
    await hub.client.post(f"/api/v1/help/articles/{article['id']}/publish", headers=writer)
    due = await hub.client.get("/api/v1/help/articles", params={"due_for_review": "true"}, headers=writer)
    assert due.json() == []
    past = (utcnow() - timedelta(days=1)).isoformat()
    await hub.client.patch(f"/api/v1/help/articles/{article['id']}", json={"review_due_at": past}, headers=writer)
    due = await hub.client.get("/api/v1/help/articles", params={"due_for_review": "true"}, headers=writer)
    assert [a["id"] for a in due.json()] == [article["id"]]


async def test_insights_count_unanswered_searches_and_feedback(hub: Hub) -> None:
    writer = await staff(hub)
    article = (await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)).json()
    await hub.client.post(f"/api/v1/help/articles/{article['id']}/publish", headers=writer)
    for q in ("how do I adopt a llama", "How do I  adopt a LLAMA", "garbage not picked up"):
        await hub.client.get("/help/search", params={"q": q})
    for helpful in ("yes", "no", "no"):
        await hub.client.post("/help/missed-waste-collection/feedback", data={"helpful": helpful})

    insights = (await hub.client.get("/api/v1/help/insights", headers=writer)).json()
    assert insights["searches"] == 3
    assert insights["searches_with_good_result"] == 1
    assert insights["unanswered"][0]["query"] == "how do i adopt a llama"
    assert insights["unanswered"][0]["count"] == 2
    assert insights["feedback"][0]["helpful"] == 1
    assert insights["feedback"][0]["not_helpful"] == 2
    agent = await staff(hub, Role.AGENT, "agent@city.test")
    assert (await hub.client.get("/api/v1/help/insights", headers=agent)).status_code == 403


async def test_search_queries_are_purged_after_the_retention_period(hub: Hub) -> None:
    now = utcnow()
    async with hub.runtime.transaction() as tx:
        for at, q in ((now - timedelta(days=91), "12 main st my name is jo"), (now, "older kept")):
            await repository.log_search(
                tx.conn,
                now=at,
                language="en",
                query=q,
                result_count=0,
                top_score=0,
                good=False,
                source="page",
                keep_days=90,
            )
    await hub.client.get("/help/search", params={"q": "pothole"})
    async with hub.runtime.transaction() as tx:
        left = (await tx.conn.execute(select(repository.SEARCHES.c.query).order_by(repository.SEARCHES.c.id))).all()
        count = (await tx.conn.execute(select(func.count()).select_from(repository.SEARCHES))).scalar_one()
    assert [r.query for r in left] == ["older kept", "pothole"]
    assert count == 2
