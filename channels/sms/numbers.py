"""Phone numbers to one canonical form (E.164), so one resident is one address however the number was typed.

SMS short codes ("12345", "3103") have no E.164 form; they are kept as their digits.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

# North American short codes are 5-6 digits, some countries' run from 3; 7+ bare digits are far more likely
# a local number missing its area code, which must not pass as a short code.
_SHORT_CODE = re.compile(r"[0-9]{3,6}")


def is_short_code(raw: str) -> bool:
    """True for a bare 3-6 digit SMS short code such as "12345"."""
    return _SHORT_CODE.fullmatch(raw.strip()) is not None


@lru_cache(maxsize=8192)  # residents text again and again; parsing costs ~80 µs a number
def to_e164(raw: str, region: str = "CA", *, require_valid: bool = True) -> str:
    """Return `raw` as E.164 ("+16135550123"), reading numbers without "+country" as in `region`.

    Short codes come back as their digits. Raises ValueError for anything that is not a phone number.
    require_valid=False also accepts numbers of a possible length that phonenumbers' metadata does not
    know (yet), e.g. a newly opened area code: use it for addresses a carrier has already delivered
    from, where refusing would lose a resident's message.
    """
    text = raw.strip()
    if is_short_code(text):
        return text
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise ValueError(f"not a phone number: {raw!r}: {exc.args[0] if exc.args else exc}") from exc
    if number.extension:
        raise ValueError(f"a phone number with an extension cannot receive SMS: {raw!r}")
    if not phonenumbers.is_valid_number(number):
        possible = phonenumbers.is_possible_number_with_reason(number) == ValidationResult.IS_POSSIBLE
        if require_valid or not possible:
            read_as = "" if text.startswith("+") else f" (read as a {region} number)"
            raise ValueError(f"not a valid phone number: {raw!r}{read_as}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)
