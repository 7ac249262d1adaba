"""Build webhook requests exactly as Twilio sends them: form-encoded, signed by twilio's own RequestValidator."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

import httpx
from twilio.request_validator import RequestValidator

from tests.support.identities import ACCOUNT_SID, AUTH_TOKEN, CITY_NUMBER, PUBLIC_URL

SMS_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def sms_params(from_number: str, body: str, *, sid: str | None = None) -> dict[str, str]:
    sid = sid or new_message_sid()
    return {
        "ToCountry": "CA",
        "ToState": "ON",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "PICKERING",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "ON",
        "SmsStatus": "received",
        "FromCity": "AJAX",
        "Body": body,
        "FromCountry": "CA",
        "To": CITY_NUMBER,
        "MessagingServiceSid": "",
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_number,
        "ApiVersion": "2010-04-01",
    }


def signature(path_and_query: str, params: Mapping[str, str], token: str = AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(PUBLIC_URL + path_and_query, dict(params)))


async def post_signed(
    client: httpx.AsyncClient, path_and_query: str, params: Mapping[str, str], *, token: str = AUTH_TOKEN
) -> httpx.Response:
    return await client.post(
        path_and_query,
        data=dict(params),
        headers={"X-Twilio-Signature": signature(path_and_query, params, token)},
    )


async def text_hub(client: httpx.AsyncClient, from_number: str, body: str, *, sid: str | None = None) -> httpx.Response:
    return await post_signed(client, SMS_PATH, sms_params(from_number, body, sid=sid))


def status_params(sid: str, status: str, *, to: str, error_code: str | None = None) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": CITY_NUMBER,
        "To": to,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return params


async def status_callback(
    client: httpx.AsyncClient,
    outbox_id: int,
    sid: str,
    status: str,
    *,
    to: str,
    error_code: str | None = None,
) -> httpx.Response:
    return await post_signed(
        client, f"{STATUS_PATH}?d={outbox_id}", status_params(sid, status, to=to, error_code=error_code)
    )
