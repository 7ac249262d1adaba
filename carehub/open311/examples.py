"""Example Open311 services `carehub dev` starts a new city with, so a newcomer can try an Open311 app at once
(admins replace them through /api/v1/open311/services)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from carehub.open311.catalogue import SERVICES, ServiceCreate

EXAMPLES = [
    ServiceCreate.model_validate(s)
    for s in (
        {
            "code": "POTHOLE",
            "name": "Pothole",
            "description": "A hole in a city road, lane or municipal parking lot.",
            "group": "Roads",
            "keywords": ["road", "pothole", "asphalt"],
            "team": "roads",
            "attributes": [
                {
                    "code": "SIZE",
                    "description": "How big is it?",
                    "datatype": "singlevaluelist",
                    "required": True,
                    "values": [{"key": "small", "name": "Smaller than a plate"}, {"key": "large", "name": "Larger"}],
                }
            ],
        },
        {
            "code": "STREETLIGHT",
            "name": "Streetlight out",
            "description": "A streetlight that is out, flickering or on during the day.",
            "group": "Roads",
            "keywords": ["light", "lamp", "dark"],
            "team": "roads",
        },
        {
            "code": "MISSED_WASTE",
            "name": "Missed waste collection",
            "description": "Garbage, recycling, green bin or yard waste not picked up on collection day.",
            "group": "Waste",
            "keywords": ["garbage", "recycling", "green bin", "pickup"],
            "team": "waste",
            "attributes": [
                {
                    "code": "STREAM",
                    "description": "What was missed?",
                    "datatype": "multivaluelist",
                    "required": True,
                    "values": [
                        {"key": "garbage", "name": "Garbage"},
                        {"key": "recycling", "name": "Recycling"},
                        {"key": "green_bin", "name": "Green bin"},
                        {"key": "yard", "name": "Yard waste"},
                    ],
                }
            ],
        },
        {
            "code": "GRAFFITI",
            "name": "Graffiti",
            "description": "Graffiti on city property: parks, bridges, signs.",
            "group": "Parks",
            "keywords": ["graffiti", "vandalism", "tag"],
            "team": "parks",
        },
    )
]


async def add_examples(conn: AsyncConnection, now: datetime) -> None:
    await conn.execute(
        insert(SERVICES),
        [{**s.model_dump(mode="json"), "created_at": now, "updated_at": now} for s in EXAMPLES],
    )
