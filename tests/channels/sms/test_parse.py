"""Reading Twilio's webhooks: real incoming-message and status-callback payloads, the status table, bad input."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.datastructures import ImmutableMultiDict

from channels.base import ChannelKind, DeliveryStatus
from channels.sms.twilio import STATUS_MAP, TwilioWebhooks
from tests.channels.sms.corpus import form_of, message_statuses, request, webhook_payloads

STATUS_URL = "https://hub.test/webhooks/twilio/status"
SMS_URL = "https://hub.test/webhooks/twilio/sms"
INBOUND = [p for p in webhook_payloads() if p["kind"] == "inbound_message"]
STATUS_CALLBACKS = [p for p in webhook_payloads() if p["kind"] == "status_callback"]

# What each VA Notify status-callback fixture must become in our terms.
EXPECTED_STATUS = {
    "MESSAAGE_BODY_WITH_ACCEPTED_STATUS": None,
    "MESSAAGE_BODY_WITH_SCHEDULED_STATUS": None,
    "MESSAAGE_BODY_WITH_QUEUED_STATUS": None,
    "MESSAAGE_BODY_WITH_SENDING_STATUS": None,
    "MESSAAGE_BODY_WITH_SENT_STATUS": DeliveryStatus.SENT,
    "MESSAAGE_BODY_WITH_DELIVERED_STATUS": DeliveryStatus.DELIVERED,
    "MESSAAGE_BODY_WITH_UNDELIVERED_STATUS": DeliveryStatus.UNDELIVERED,
    "MESSAAGE_BODY_WITH_FAILED_STATUS": DeliveryStatus.FAILED,
    "MESSAAGE_BODY_WITH_CANCELED_STATUS": DeliveryStatus.FAILED,
    "MESSAAGE_BODY_WITH_FAILED_STATUS_AND_ERROR_CODE_30010": DeliveryStatus.FAILED,
    "MESSAGE_BODY_WITH_NO_MESSAGE_STATUS": None,
    "MESSAGE_BODY_WITH_INVALID_MESSAGE_STATUS": None,
}

STATUS_TABLE = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
    "queued": None,
    "accepted": None,
    "scheduled": None,
    "sending": None,
    "receiving": None,
    "received": None,
    "partially_delivered": None,
}

WEBHOOKS = TwilioWebhooks(auth_token="unused-here")


def _inbound(**fields: str) -> ImmutableMultiDict[str, str]:
    base = {"MessageSid": "SM" + "1" * 32, "From": "+16135550123", "To": "+19055550100", "Body": "hello"}
    base.update(fields)
    return ImmutableMultiDict({k: v for k, v in base.items() if v != "<absent>"})


# ---------------------------------------------------------------- incoming messages


@pytest.mark.parametrize("payload", INBOUND, ids=lambda p: p["params"]["MessageSid"])
def test_real_incoming_message_is_read(payload: dict[str, Any]) -> None:
    params = payload["params"]
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, form_of(payload["raw_form_body"])))
    assert message.channel is ChannelKind.SMS
    assert message.provider_id == params["MessageSid"]
    assert message.from_address == params["From"]
    assert message.to_address == params["To"]
    assert message.body == params["Body"]
    assert message.meta == {"num_media": 0, "media_urls": [], "media_types": []}


def test_incoming_message_meta_carries_nothing_personal_beyond_media() -> None:
    # Twilio adds the sender's city, state and ZIP; the hub has no use for them and must not store them.
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, form_of(INBOUND[0]["raw_form_body"])))
    assert set(message.meta) == {"num_media", "media_urls", "media_types"}
    assert "LOS ANGELES" not in repr(message)


def test_incoming_mms_lists_media_in_order_and_may_have_no_body() -> None:
    form = _inbound(
        Body="",
        NumMedia="2",
        MediaUrl0="https://api.twilio.com/media/ME1",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/media/ME2",
        MediaContentType1="image/png",
    )
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, form))
    assert message.body == ""
    assert message.meta == {
        "num_media": 2,
        "media_urls": ["https://api.twilio.com/media/ME1", "https://api.twilio.com/media/ME2"],
        "media_types": ["image/jpeg", "image/png"],
    }


def test_incoming_message_to_a_short_code_keeps_the_short_code() -> None:
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, _inbound(To="53079")))
    assert message.to_address == "53079"


def test_incoming_message_without_body_field_has_empty_body() -> None:
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, _inbound(Body="<absent>")))
    assert message.body == ""


def test_incoming_message_falls_back_to_sms_sid() -> None:
    form = _inbound(MessageSid="<absent>", SmsSid="SM" + "2" * 32)
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, form))
    assert message.provider_id == "SM" + "2" * 32


def test_incoming_message_from_a_number_unknown_to_phonenumbers_metadata_is_kept() -> None:
    # A possible but (to phonenumbers) unassigned number: Twilio delivered it, so it is a real sender.
    (message,) = WEBHOOKS.parse_inbound(request(SMS_URL, _inbound(From="+11111111111")))
    assert message.from_address == "+11111111111"


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"MessageSid": "<absent>"}, "MessageSid"),
        ({"MessageSid": ""}, "MessageSid"),
        ({"From": "<absent>"}, "no From"),
        ({"From": "not a number"}, "From"),
        ({"From": "+1111111111"}, "From"),
        ({"To": "<absent>"}, "no To"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
    ],
)
def test_malformed_incoming_message_is_a_value_error(fields: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        WEBHOOKS.parse_inbound(request(SMS_URL, _inbound(**fields)))


def test_incoming_payload_reserialised_with_invalid_from_is_refused() -> None:
    # VA Notify's JSON re-serialisation carries From "+1111111111": nine digits after +1, not a number.
    (payload,) = [p for p in webhook_payloads() if p["kind"] == "inbound_message_as_json"]
    form = ImmutableMultiDict({k: str(v) for k, v in payload["params"].items()})
    with pytest.raises(ValueError, match="From"):
        WEBHOOKS.parse_inbound(request(SMS_URL, form))


# ---------------------------------------------------------------- status callbacks


def test_every_status_callback_in_the_corpus_has_an_expectation() -> None:
    assert {p["source_constant"] for p in STATUS_CALLBACKS} == set(EXPECTED_STATUS)


@pytest.mark.parametrize("payload", STATUS_CALLBACKS, ids=lambda p: p["source_constant"])
def test_real_status_callback_is_read(payload: dict[str, Any]) -> None:
    update = WEBHOOKS.parse_status(request(STATUS_URL + "?d=17", form_of(payload["raw_form_body"])))
    # MessageSid, not the legacy SmsSid: in these payloads they differ, and MessageSid names our message.
    assert update.provider_id == payload["params"]["MessageSid"]
    assert update.status == EXPECTED_STATUS[payload["source_constant"]]
    assert update.outbox_id == 17
    assert update.error_code == payload["params"].get("ErrorCode")


def test_status_table_covers_every_status_in_twilios_spec() -> None:
    assert set(message_statuses()) == set(STATUS_MAP) == set(STATUS_TABLE)


@pytest.mark.parametrize(("twilio_status", "expected"), STATUS_TABLE.items())
def test_twilio_status_maps_to_delivery_status(twilio_status: str, expected: DeliveryStatus | None) -> None:
    form = ImmutableMultiDict({"MessageSid": "SM" + "3" * 32, "MessageStatus": twilio_status})
    assert WEBHOOKS.parse_status(request(STATUS_URL, form)).status == expected


def test_status_callback_error_code_and_message_are_kept() -> None:
    form = ImmutableMultiDict(
        {
            "MessageSid": "SM" + "3" * 32,
            "MessageStatus": "undelivered",
            "ErrorCode": "30005",
            "ErrorMessage": "Unknown destination handset",
        }
    )
    update = WEBHOOKS.parse_status(request(STATUS_URL, form))
    assert (update.error_code, update.error_message) == ("30005", "Unknown destination handset")


def test_status_callback_with_empty_error_code_has_none() -> None:
    form = ImmutableMultiDict({"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered", "ErrorCode": ""})
    assert WEBHOOKS.parse_status(request(STATUS_URL, form)).error_code is None


def test_unknown_status_moves_nothing_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    form = ImmutableMultiDict({"MessageSid": "SM" + "3" * 32, "MessageStatus": "teleported"})
    with caplog.at_level(logging.WARNING, logger="carehub.sms.twilio"):
        update = WEBHOOKS.parse_status(request(STATUS_URL, form))
    assert update.status is None
    assert "teleported" in caplog.text


@pytest.mark.parametrize(
    ("query", "outbox_id"),
    [("?d=42", 42), ("", None), ("?d=", None), ("?d=abc", None), ("?d=-3", None), ("?d=1&d=2", None),
     ("?x=1&d=7", 7), ("?d=%D9%A3", None)],
)  # fmt: skip
def test_outbox_id_comes_from_the_callback_url(query: str, outbox_id: int | None) -> None:
    form = ImmutableMultiDict({"MessageSid": "SM" + "3" * 32, "MessageStatus": "sent"})
    assert WEBHOOKS.parse_status(request(STATUS_URL + query, form)).outbox_id == outbox_id


def test_status_callback_without_message_sid_is_a_value_error() -> None:
    form = ImmutableMultiDict({"SmsSid": "SM" + "3" * 32, "MessageStatus": "delivered"})
    with pytest.raises(ValueError, match="MessageSid"):
        WEBHOOKS.parse_status(request(STATUS_URL, form))
