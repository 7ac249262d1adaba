"""The chat protocol end to end: a real WebSocket client against the hub on a real port, agents through the API
and the live event stream. Sequence numbers, resume after a dropped socket, deduplication by client id."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from carehub.models import Message
from tests.support.chat import agent_stream, new_cid, reply, resident
from tests.support.live import LiveHub
from tests.support.mail import post_email, resident_mail

MESSAGES = Message.__table__  # type: ignore[attr-defined]


async def count_messages(live: LiveHub, ticket_ref: str) -> int:
    ticket_id = int(ticket_ref.split("-")[1])
    async with live.runtime.transaction() as tx:
        return int((await tx.conn.execute(select(func.count()).where(MESSAGES.c.ticket_id == ticket_id))).scalar_one())


async def test_first_message_opens_a_ticket_with_numbered_messages_and_tells_agents(
    live: LiveHub, agent_token: str
) -> None:
    async with agent_stream(live.url, agent_token) as stream, resident(live.ws_url) as jo:
        welcome = await jo.hello()
        assert welcome["conversation"] is None
        assert welcome["available"] is True

        ack = await jo.say("Streetlight out on Kingston Rd", name="Jo Tremblay", email="Jo@Example.org")
        session = next(f for f in jo.frames if f["type"] == "session")
        reference = session["conversation"]["reference"]
        assert ack["seq"] == 1
        assert jo.token is not None
        acknowledgement = await jo.expect("message", seq=2)
        assert acknowledgement["from"] == "system"
        assert reference in acknowledgement["body"]

        created = await stream.wait_for("message.created", reference=reference, seq=1)
        assert created["channel"] == "chat"
        assert created["body"] == "Streetlight out on Kingston Rd"
        await stream.wait_for("ticket.created", reference=reference)

    headers = {"Authorization": f"Bearer {agent_token}"}
    ticket = (await live.client.get(f"/api/v1/tickets/{reference}", headers=headers)).json()
    assert ticket["channel"] == "chat"
    assert ticket["messages"][0]["body"] == "Streetlight out on Kingston Rd"
    assert len(ticket["messages"]) == 2
    # What the resident offered at the start is on the ticket for the agent (the name on the contact).
    assert ticket["chat"]["given_email"] == "jo@example.org"
    assert ticket["chat"]["status"] == "open"
    assert ticket["chat"]["resident_read_seq"] == 0


async def test_agent_reply_reaches_the_open_socket_live(live: LiveHub, agent_token: str) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Is the pool open on Sunday?")
        reference = jo.reference
        await jo.expect("message", seq=2)

        await reply(live.client, agent_token, reference, "Yes, 9 to 5.")
        got = await jo.expect("message", seq=3)
        assert got["from"] == "agent"
        assert got["body"] == "Yes, 9 to 5."
        assert got["name"] == "agent"  # the agent's first name


async def test_reconnect_after_agent_sent_three_gets_exactly_those_three_in_order(
    live: LiveHub, agent_token: str
) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Missed garbage pickup")
        await jo.expect("message", seq=2)
        reference = jo.reference
        token, seen = jo.token, jo.last_seq
        # The socket dies without a closing handshake (a tunnel, a sleeping laptop).
        jo.ws.transport.abort()

    for body in ("One", "Two", "Three"):
        await reply(live.client, agent_token, reference, body)

    async with resident(live.ws_url, token=token, last_seq=seen) as back:
        welcome = await back.hello()
        assert welcome["conversation"]["last_seq"] == seen + 3
        missed = await back.messages(3)
        assert [(m["seq"], m["body"]) for m in missed] == [(seen + 1, "One"), (seen + 2, "Two"), (seen + 3, "Three")]
        # Nothing else follows: a ping is answered next, not a duplicate.
        await back.send(type="ping")
        assert (await back.next())["type"] == "pong"


async def test_socket_killed_while_agent_sends_three_loses_and_repeats_nothing(live: LiveHub, agent_token: str) -> None:
    """The agent's three replies race the socket's death: whatever the old socket got, the new one completes the
    conversation from the last sequence number the client saw, in order, without a repeat."""
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Tree down on Liverpool Rd")
        await jo.expect("message", seq=2)
        reference = jo.reference
        sending = asyncio.gather(*(reply(live.client, agent_token, reference, f"Update {i}") for i in range(3)))
        jo.ws.transport.abort()
        await sending
        received_before = [f for f in jo.frames if f["type"] == "message" and f["seq"] > 2]
        token, seen = jo.token, jo.last_seq

    async with resident(live.ws_url, token=token, last_seq=seen) as back:
        await back.hello()
        rest = await back.messages(5 - seen)
        seqs = [m["seq"] for m in received_before + rest]
        assert seqs == [3, 4, 5]
        assert sorted(m["body"] for m in received_before + rest) == ["Update 0", "Update 1", "Update 2"]


async def test_resending_unacknowledged_message_after_reconnect_stores_it_once(live: LiveHub) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Noise complaint, Bayly St")
        token, reference = jo.token, jo.reference
        cid = new_cid()
        first = await jo.say("Still going on", cid=cid)

    async with resident(live.ws_url, token=token, last_seq=first["seq"]) as back:
        await back.hello()
        again = await back.say("Still going on", cid=cid)  # the client never saw the ack: it sends again
        assert again["seq"] == first["seq"]
    assert await count_messages(live, reference) == 3  # first message, acknowledgement, "Still going on"


async def test_reload_replays_the_whole_conversation_from_the_token(live: LiveHub, agent_token: str) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Hello")
        reference = jo.reference
        await jo.expect("message", seq=2)
        await reply(live.client, agent_token, reference, "Hi, how can I help?")
        await jo.expect("message", seq=3)
        token = jo.token

    async with resident(live.ws_url, token=token) as reloaded:  # a new page: only the token survived
        welcome = await reloaded.hello()
        assert welcome["conversation"]["reference"] == reference
        history = await reloaded.messages(3)
        assert [(m["seq"], m["from"]) for m in history] == [(1, "resident"), (2, "system"), (3, "agent")]
        assert history[0]["cid"] is not None  # the client recognises its own messages by cid


async def test_two_tabs_of_one_conversation_see_each_others_messages(live: LiveHub) -> None:
    """Alone, a socket's own messages are not sent back out (it has them); once a second tab resumes the
    conversation, each tab's messages reach the other live."""
    async with resident(live.ws_url) as tab1:
        await tab1.hello()
        await tab1.say("First")
        await tab1.expect("message", seq=2)
        async with resident(live.ws_url, token=tab1.token, last_seq=2) as tab2:
            await tab2.hello()
            ack = await tab2.say("From the second tab")
            echoed = await tab1.expect("message", seq=ack["seq"])
            assert (echoed["body"], echoed["from"]) == ("From the second tab", "resident")
            ack = await tab1.say("Typed in the first tab")
            echoed = await tab2.expect("message", seq=ack["seq"])
            assert echoed["body"] == "Typed in the first tab"
            assert echoed["cid"] is not None


async def test_typing_and_read_state_flow_both_ways(live: LiveHub, agent_token: str) -> None:
    headers = {"Authorization": f"Bearer {agent_token}"}
    async with agent_stream(live.url, agent_token) as stream, resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Question about my tax bill")
        reference = jo.reference

        await jo.send(type="typing", on=True)
        assert (await stream.wait_for("chat.typing", reference=reference))["on"] is True
        await jo.send(type="read", seq=2)
        assert (await stream.wait_for("chat.read", reference=reference))["seq"] == 2

        response = await live.client.post(f"/api/v1/tickets/{reference}/typing", json={"on": True}, headers=headers)
        assert response.status_code == 204
        assert (await jo.expect("typing"))["on"] is True
        response = await live.client.post(f"/api/v1/tickets/{reference}/read", json={"seq": 1}, headers=headers)
        assert response.status_code == 204
        assert (await jo.expect("read"))["seq"] == 1


async def test_a_gap_left_by_a_lost_event_is_filled_from_the_database(live: LiveHub, agent_token: str) -> None:
    """Pub/sub can drop an event: the next one that arrives shows a gap, and the socket fills it before it."""
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.say("Parking ticket question")
        await jo.expect("message", seq=2)
        reference = jo.reference
        # An agent message is stored but its event is lost (published nowhere).
        publish = live.runtime.publish_soon
        live.runtime.publish_soon = lambda events: None  # type: ignore[method-assign]
        try:
            await reply(live.client, agent_token, reference, "Lost in transit")
        finally:
            live.runtime.publish_soon = publish  # type: ignore[method-assign]
        await reply(live.client, agent_token, reference, "Arrived")
        got = await jo.messages(2)
        assert [(m["seq"], m["body"]) for m in got] == [(3, "Lost in transit"), (4, "Arrived")]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "message", "cid": "abcdefgh-ijklmnop", "body": "x" * 2001}, "too_long"),
        ({"type": "message", "cid": "short-id", "body": "hi"}, "bad_frame"),
        ({"type": "message", "cid": "abcdefgh-ijklmnop", "body": "   "}, "bad_frame"),
        ({"type": "shout"}, "bad_frame"),
        ({"type": "close", "transcript": None}, "no_conversation"),
    ],
)
async def test_bad_frames_get_a_plain_error_and_the_socket_stays_open(
    live: LiveHub, frame: dict[str, object], code: str
) -> None:
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.send(**frame)
        error = await jo.expect("error")
        assert error["code"] == code
        assert error["detail"]
        await jo.send(type="ping")
        assert (await jo.next())["type"] == "pong"


async def test_the_same_message_resent_from_two_tabs_at_once_is_stored_once(live: LiveHub) -> None:
    async with resident(live.ws_url) as tab1:
        await tab1.hello()
        await tab1.say("Opening")
        reference = tab1.reference
        async with resident(live.ws_url, token=tab1.token, last_seq=2) as tab2:
            await tab2.hello()
            cid = new_cid()
            acks = await asyncio.gather(tab1.say("Sent twice", cid=cid), tab2.say("Sent twice", cid=cid))
            assert acks[0]["seq"] == acks[1]["seq"]
    assert await count_messages(live, reference) == 3


async def test_a_chat_ended_in_another_tab_refuses_new_messages(live: LiveHub) -> None:
    async with resident(live.ws_url) as tab1:
        await tab1.hello()
        await tab1.say("Opening")
        async with resident(live.ws_url, token=tab1.token, last_seq=2) as tab2:
            await tab2.hello()
            await tab2.send(type="close", transcript=None)
            await tab2.expect("closed")
            await tab1.expect("closed")
            await tab1.send(type="message", cid=new_cid(), body="Hello?")
            assert (await tab1.expect("error"))["code"] == "closed"


async def test_a_first_message_resent_after_its_session_frame_was_lost_opens_no_second_ticket(
    live: LiveHub, agent_token: str
) -> None:
    cid = new_cid()
    async with resident(live.ws_url) as jo:
        await jo.hello()
        await jo.send(type="message", cid=cid, body="Broken swing at Kinsmen Park")
        session = await jo.expect("session")  # stored; now the client loses it, as if the socket died first
        jo.ws.transport.abort()

    async with resident(live.ws_url) as again:  # no token: the widget never kept one
        await again.hello()
        ack = await again.say("Broken swing at Kinsmen Park", cid=cid)
        resumed = next(f for f in again.frames if f["type"] == "session")
        assert resumed["conversation"]["reference"] == session["conversation"]["reference"]
        assert ack["seq"] == 1
        assert (await again.expect("message", seq=2))["from"] == "system"  # the rest follows, once

    listing = await live.client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {agent_token}"})
    assert [t["reference"] for t in listing.json()["items"]] == [session["conversation"]["reference"]]


async def test_typing_on_a_ticket_that_is_not_a_chat_is_a_clear_conflict(live: LiveHub, agent_token: str) -> None:
    await post_email(live.client, resident_mail("sam@example.org", "Pothole", "Deep one on Brock Rd.\n"))
    response = await live.client.post(
        "/api/v1/tickets/PKR-000001/typing", json={"on": True}, headers={"Authorization": f"Bearer {agent_token}"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "not a web chat ticket" in response.json()["detail"]
