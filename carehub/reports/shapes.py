"""What the overview report returns (API shapes; the tables it reads are in carehub/models.py)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import SQLModel

from carehub.models import Priority, Role, TicketStatus
from channels.base import ChannelKind


class QueueCell(SQLModel):
    team: str | None
    status: TicketStatus
    count: int


class ChannelCount(SQLModel):
    channel: ChannelKind
    count: int


class QueueNow(SQLModel):
    active: int
    unassigned: int
    by_team_status: list[QueueCell]
    by_channel: list[ChannelCount]


class Waiting(SQLModel):
    oldest_unanswered_seconds: int | None  # the active ticket waiting longest for a first answer, now
    answered_in_period: int  # tickets created in the period that have had a first answer
    first_response_median_seconds: int | None
    first_response_p90_seconds: int | None


class SlaRow(SQLModel):
    team: str | None
    priority: Priority
    tickets: int  # created in the period with a due time
    first_response_due: int  # targets that fell due (met, or passed unmet)
    first_response_met: int
    first_response_met_pct: float | None
    resolution_due: int
    resolution_met: int
    resolution_met_pct: float | None
    breached: int


class AgentLoad(SQLModel):
    id: int
    name: str
    role: Role
    active_assigned: int
    capacity: int
    online: bool | None  # None: presence is not known to this hub


class CsatRow(SQLModel):
    team: str | None
    sent: int
    answered: int
    average: float | None  # 1 to 5
    satisfied_pct: float | None  # answers of 4 or 5
    response_rate_pct: float | None


class Overview(SQLModel):
    since: datetime
    until: datetime
    generated_at: datetime
    queue: QueueNow
    waiting: Waiting
    sla: list[SlaRow]
    agents: list[AgentLoad]
    csat: list[CsatRow]
