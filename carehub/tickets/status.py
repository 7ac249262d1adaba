"""Which status changes an agent may make, and why not: the ticket life cycle in one table.

    new      -> open, pending (only once a reply has been sent), resolved, closed
    open     -> pending, resolved, closed
    pending  -> open, resolved, closed      ("waiting for the resident": their next message reopens it)
    resolved -> open, closed                (their message within the reopen window reopens it too)
    closed   -> (final)                     (their next message opens a new ticket)

Nothing goes back to new: it means "nobody has looked yet". The resident's side of the cycle (pending or resolved
back to open) is not an agent's change: repository.note_inbound and the PostgreSQL ingest functions make it.
"""

from __future__ import annotations

from carehub.models import TicketStatus
from carehub.problems import Problem

NEW, OPEN, PENDING, RESOLVED, CLOSED = (
    TicketStatus.NEW,
    TicketStatus.OPEN,
    TicketStatus.PENDING,
    TicketStatus.RESOLVED,
    TicketStatus.CLOSED,
)

ALLOWED: dict[TicketStatus, frozenset[TicketStatus]] = {
    NEW: frozenset({OPEN, PENDING, RESOLVED, CLOSED}),
    OPEN: frozenset({PENDING, RESOLVED, CLOSED}),
    PENDING: frozenset({OPEN, RESOLVED, CLOSED}),
    RESOLVED: frozenset({OPEN, CLOSED}),
    CLOSED: frozenset(),
}


def check_transition(current: TicketStatus, wanted: TicketStatus, *, replied: bool) -> None:
    """Raise a 409 Problem that says why, unless an agent may move a ticket from current to wanted.
    replied: a reply has been sent to the resident (first_response_at is set)."""
    if current == wanted:
        return
    if current is CLOSED:
        raise Problem(
            409,
            "A closed ticket is final and cannot be reopened: a new message from the resident opens a new ticket. "
            "If there is more to do, set a ticket to resolved instead of closed.",
        )
    if wanted is NEW:
        raise Problem(409, f"A ticket cannot go back to new (it is {current.value}); new means nobody has seen it.")
    if wanted is PENDING and not replied:
        raise Problem(
            409,
            "Pending means waiting for the resident, but nothing has been sent to them yet: reply first, then set "
            "the ticket to pending.",
        )
    if wanted not in ALLOWED[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current]))
        raise Problem(409, f"A {current.value} ticket cannot become {wanted.value}; it can become: {allowed}.")
