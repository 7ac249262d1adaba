"""Inbound SMS webhook requests as Twilio sends them (form fields, X-Twilio-Signature over the public URL), built
ahead of a run and written one per line for bench/wrk_replay.lua: "<signature> TAB <form-encoded body>"."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench._wrk import WrkResult, share

SMS_PATH = "/webhooks/twilio/sms"
ACCOUNT_SID = "AC" + "b3" * 16
CITY_NUMBER = "+19055550100"

TEXTS = (
    "Pothole on Kingston Rd just west of Brock, eastbound lane. Two cars hit it this morning.",
    "Garbage wasn't picked up on Finch Ave today",
    "Streetlight out at Liverpool and Glenanna, very dark at night",
    "When is the next green bin pickup for Amberlea?",
    "There's a fallen tree blocking the sidewalk on Whites Rd near the school. Kids are walking on the road.",
    "Water main break? Water coming up through the road on Dixie Rd",
    "Hi, I'd like to book a large item pickup (old couch). Address is 1234 Rosebank Rd.",
    "Noise complaint: construction started at 6am again on Bayly St",
    "Thanks!",
    "Yes",
    "Is the Chestnut Hill rec centre pool open on the holiday Monday?",
    "Parking ticket question - I paid it online but got a reminder letter. Ref 88123.",
)


@dataclass(frozen=True)
class SignedSms:
    sid: str
    sender: str
    signature: str
    body: str


def phone_pool(area_code: str, size: int) -> list[str]:
    return [f"+1{area_code}555{i:04d}" for i in range(size)]


def twilio_params(sid: str, sender: str, text: str) -> dict[str, str]:
    """The fields Twilio posts for an incoming SMS (as in tests/support/twilio.py)."""
    return {
        "ToCountry": "CA", "ToState": "ON", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "PICKERING",
        "FromZip": "", "SmsSid": sid, "FromState": "ON", "SmsStatus": "received", "FromCity": "AJAX", "Body": text,
        "FromCountry": "CA", "To": CITY_NUMBER, "MessagingServiceSid": "", "ToZip": "", "NumSegments": "1",
        "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "ApiVersion": "2010-04-01",
    }  # fmt: skip


def signed_sms(
    rng: random.Random, validator: RequestValidator, public_url: str, senders: Sequence[str], count: int
) -> list[SignedSms]:
    """`count` texts, each with its own MessageSid, from senders drawn at random, signed as Twilio signs a call to
    `public_url`."""
    url = public_url + SMS_PATH
    out = []
    for _ in range(count):
        sid = f"SM{rng.getrandbits(128):032x}"
        sender = rng.choice(senders)
        params = twilio_params(sid, sender, rng.choice(TEXTS))
        out.append(SignedSms(sid, sender, str(validator.compute_signature(url, params)), urlencode(params)))
    return out


def write_requests(path: Path, requests: Sequence[SignedSms]) -> Path:
    path.write_text("".join(f"{r.signature}\t{r.body}\n" for r in requests))
    return path


def sent_requests(requests: Sequence[SignedSms], result: WrkResult) -> list[SignedSms]:
    """The requests wrk wrote: the first n of each thread's share of the file."""
    threads = len(result.sent_per_thread)
    sent: list[SignedSms] = []
    for thread, n in enumerate(result.sent_per_thread):
        sent.extend(share(requests, thread, threads)[:n])
    return sent
