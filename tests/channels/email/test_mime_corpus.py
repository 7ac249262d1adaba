"""parse_email over real-world mail: flanker's fixture corpus and CPython's own test_email data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.email.mime import MAX_SUBJECT_RAW_CHARS, ParsedEmail, UnparseableEmail, parse_email
from tests.support.corpus import FLANKER_MESSAGES as FLANKER
from tests.support.corpus import STDLIB_EMAIL_DATA

CORPUS_FILES = sorted(FLANKER.rglob("*.eml")) + sorted(p for p in STDLIB_EMAIL_DATA.iterdir() if p.is_file())


def _flanker(name: str) -> ParsedEmail:
    return parse_email((FLANKER / name).read_bytes())


def test_corpus_is_present() -> None:
    assert len(CORPUS_FILES) > 100


def _outcome(path: Path) -> str:
    try:
        parsed = parse_email(path.read_bytes())
    except UnparseableEmail as exc:
        return f"unparseable: {exc.reason}"
    return "parsed" if parsed.message_id.startswith("<") and parsed.message_id.endswith(">") else "bad message id"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.relative_to(p.parents[1]).as_posix() for p in CORPUS_FILES])
def test_every_corpus_file_parses_or_is_rejected_with_a_reason(path: Path) -> None:
    outcome = _outcome(path)
    assert outcome == "parsed" or (outcome.startswith("unparseable: ") and len(outcome) > len("unparseable: "))


def test_corpus_outcome_counts() -> None:
    outcomes = [_outcome(p) for p in CORPUS_FILES]
    # Everything unparseable is an image, a sound file or msg_19.txt (a bare body without headers).
    assert outcomes.count("parsed") == 95
    assert len(outcomes) - outcomes.count("parsed") == 18


def test_non_mail_files_in_the_stdlib_data_are_rejected() -> None:
    for name in ("python.gif", "python.png", "sndhdr.wav", "msg_19.txt"):
        with pytest.raises(UnparseableEmail, match="header"):
            parse_email((STDLIB_EMAIL_DATA / name).read_bytes())


def test_plain_message_yields_sender_subject_date_and_text() -> None:
    parsed = _flanker("text-only.eml")
    assert parsed.from_address == "bob@marley.com"
    assert parsed.subject == "Testing message parsing"
    assert parsed.date == datetime(2011, 12, 29, 10, 6, 53, tzinfo=UTC)
    assert parsed.message_id.startswith("<CAEAsyCbSF1Bk7CBuu6zp3Qs8=j2i")
    assert parsed.text
    assert parsed.attachments == ()


def test_pdf_attachment_is_kept_with_name_type_and_size() -> None:
    parsed = _flanker("attached-pdf.eml")
    assert [(a.filename, a.content_type, a.size) for a in parsed.attachments] == [("test.pdf", "application/pdf", 6940)]
    assert parsed.attachments[0].content.startswith(b"%PDF")
    # The file has no From header at all.
    assert parsed.from_address is None


def test_cyrillic_attachment_name_is_decoded() -> None:
    parsed = _flanker("russian-attachment-yahoo.eml")
    assert parsed.from_address == "mailboxaddr1234567@yahoo.com"
    assert parsed.subject == "Hello"
    [attachment] = parsed.attachments
    # Cyrillic on purpose: Yahoo put the name in the header as raw UTF-8, cut mid-character at the end.
    assert attachment.filename.startswith("Картинка с очень, очень длинным")  # noqa: RUF001
    assert attachment.content_type == "image/png"
    assert attachment.content.startswith(b"\x89PNG")


def test_leading_blank_line_before_headers_is_tolerated_and_noted() -> None:
    parsed = _flanker("iphone.eml")
    assert parsed.from_address == "someone@somewhere.com"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("photo.JPG", "image/jpeg")]
    assert "blank lines before the header section were ignored" in parsed.defects


def test_encoded_word_display_name_is_decoded() -> None:
    parsed = _flanker("encoded-header.eml")
    assert parsed.from_name == "Foo, Bar"
    assert parsed.from_address == "foo.bar@example.com"
    assert parsed.subject == "hello"


def test_undeclared_latin1_in_from_header_falls_back_to_a_lenient_decode() -> None:
    parsed = _flanker("from-encoding.eml")
    assert parsed.from_name == "Ingo Lütkebohle"
    assert parsed.from_address == "ingo@blank.pages.de"
    assert parsed.headers["precedence"] == "bulk"


def test_enclosed_message_with_bad_encoding_is_kept_as_an_eml_attachment() -> None:
    parsed = _flanker("enclosed-bad-encoding.eml")
    assert parsed.text == "Hello"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("thanks.eml", "message/rfc822")]
    assert b"Subject: Thanks!" in parsed.attachments[0].content
    # The To display name is an encoded word in UTF-8 base64; the address must survive it.
    assert parsed.to == ("bob@example.com",)


def test_message_global_is_treated_like_an_enclosed_message() -> None:
    parsed = _flanker("enclosed-global.eml")
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("thanks.eml", "message/global")]


def test_deeply_nested_enclosed_message_does_not_recurse_into_the_body() -> None:
    parsed = _flanker("enclosed-endless.eml")
    assert parsed.text == "Hello"
    assert len(parsed.attachments) == 1


def test_html_only_mail_yields_text_from_the_html() -> None:
    parsed = _flanker("long-links.eml")
    assert parsed.text.startswith("http://www.longurlmaker.com/view/?id=")
    assert "<" not in parsed.text
    assert parsed.html_sanitized is not None
    assert 'rel="noopener noreferrer"' in parsed.html_sanitized


def test_empty_plain_part_beside_empty_html_gives_empty_text_not_an_error() -> None:
    parsed = parse_email((STDLIB_EMAIL_DATA / "msg_08.txt").read_bytes())
    assert parsed.text == ""
    assert parsed.reply_text == ""


def test_alternative_mail_prefers_the_plain_part_and_sanitises_the_html() -> None:
    parsed = _flanker("relative.eml")
    assert parsed.text.startswith("This is html and text message, thanks")
    assert "\r" not in parsed.text
    assert parsed.html_sanitized is not None
    assert "<script" not in parsed.html_sanitized


def test_missing_boundaries_leave_the_body_as_plain_text() -> None:
    parsed = _flanker("missing-boundaries.eml")
    assert parsed.text.startswith("Hi This is a broken message")
    assert "Messy part" in parsed.text
    assert parsed.attachments == ()


@pytest.mark.parametrize(
    ("name", "defect"),
    [
        ("false-multipart.eml", "no subparts were found"),
        ("missing-final-boundary.eml", "not the corresponding close boundary"),
        ("mailformed-headers.eml", "start boundary was never found"),
    ],
)
def test_broken_mime_structure_is_reported_as_a_defect(name: str, defect: str) -> None:
    parsed = _flanker(name)
    assert any(defect in d for d in parsed.defects)


def test_broken_multipart_keeps_its_payload_as_text() -> None:
    parsed = _flanker("mailformed-headers.eml")
    assert parsed.from_address == "headers@gmail.com"
    assert parsed.text
    assert parsed.attachments == ()


def test_torture_message_parses_with_its_enclosed_messages_and_media() -> None:
    parsed = _flanker("torture.eml")
    assert parsed.from_address == "mrc@cac.washington.edu"
    assert parsed.subject == "Multi-media mail demonstration"
    assert parsed.text.startswith("This is a demonstration of multi-part mail")
    types = [a.content_type for a in parsed.attachments]
    assert types.count("message/rfc822") == 8
    assert {"audio/basic", "image/pbm", "image/gif"} <= set(types)


def test_attachments_over_the_count_limit_are_skipped_with_a_reason() -> None:
    parsed = parse_email((FLANKER / "torture.eml").read_bytes(), max_attachments=2)
    assert len(parsed.attachments) == 2
    assert len(parsed.skipped_attachments) == 9
    assert all(reason == "more than 2 attachments" for _, reason in parsed.skipped_attachments)


def test_attachments_over_the_size_limit_are_skipped_with_a_reason() -> None:
    parsed = parse_email((FLANKER / "attached-pdf.eml").read_bytes(), max_attachment_bytes=1000)
    assert parsed.attachments == ()
    assert parsed.skipped_attachments == (("test.pdf", "6940 bytes is over the 1000 byte limit"),)


def test_dsn_bounce_keeps_the_delivery_status_and_returned_message() -> None:
    parsed = _flanker("bounce/zed.eml")
    assert parsed.from_address == "mailer-daemon@example.com.com"
    assert [a.content_type for a in parsed.attachments] == ["message/delivery-status", "message/rfc822"]
    assert b"Status: 5." in parsed.attachments[0].content


def test_gb_encoded_8bit_filename_does_not_crash_and_stays_a_txt() -> None:
    parsed = _flanker("outlook-express.eml")
    [attachment] = parsed.attachments
    assert attachment.filename.endswith(".txt")
    assert "/" not in attachment.filename


def test_missing_message_id_is_derived_from_the_bytes_so_redelivery_deduplicates() -> None:
    raw = b"From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n"
    first, again = parse_email(raw), parse_email(raw)
    assert first.message_id == again.message_id
    assert first.message_id.endswith("@carehub.invalid>")
    assert parse_email(raw + b"more").message_id != first.message_id


def test_threading_headers_are_read_robustly() -> None:
    raw = (
        b"From: A <A@Example.ORG>\r\nMessage-ID:  <m1@x.example>  (comment)\r\n"
        b"In-Reply-To: Your note <p2@x.example>\r\n"
        b"References: <p1@x.example>\r\n <p2@x.example>,<p2@x.example> junk\r\n"
        b"Date: Sat, 1 Mar 2025 10:00:00 -0000\r\n\r\nbody\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.message_id == "<m1@x.example>"
    assert parsed.in_reply_to == "<p2@x.example>"
    assert parsed.references == ("<p1@x.example>", "<p2@x.example>")
    assert parsed.from_address == "a@example.org"
    assert parsed.date == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def test_unknown_charset_is_decoded_leniently_and_noted() -> None:
    raw = b"From: a@example.org\r\nContent-Type: text/plain; charset=x-no-such\r\n\r\ncaf\xc3\xa9\r\n"
    parsed = parse_email(raw)
    assert parsed.text == "café"
    assert "unknown charset 'x-no-such'; decoded leniently" in parsed.defects


def test_bytes_invalid_in_the_declared_charset_are_decoded_leniently_and_noted() -> None:
    raw = b"From: a@example.org\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xe9\r\n"
    parsed = parse_email(raw)
    assert parsed.text == "café"
    assert any("not valid in declared charset 'utf-8'" in d for d in parsed.defects)


def test_attachment_filenames_are_made_safe() -> None:
    raw = (
        b"From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b'--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="../../etc/pa\tss.pdf"'
        b"\r\n\r\n%PDF\r\n"
        b"--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment\r\n\r\nPNG\r\n"
        b'--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename="' + b"x" * 300 + b'.csv"'
        b"\r\n\r\na,b\r\n--b--\r\n"
    )
    names = [a.filename for a in parse_email(raw).attachments]
    assert names[0] == "pass.pdf"
    assert names[1] == "attachment-2.png"
    assert names[2].endswith(".csv")
    assert len(names[2]) == 120


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty input"),
        (b"  \r\n\r\n", "empty input"),
        (b"just some words\r\nwithout headers\r\n", "does not start with a header field"),
        (b"\x89PNG\r\n\x1a\n", "does not start with a header field"),
    ],
)
def test_input_that_is_not_an_email_is_rejected_with_a_specific_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(UnparseableEmail, match=reason):
        parse_email(raw)


@pytest.mark.parametrize("name", ["torture.eml", "bounce/office365.eml", "russian-attachment-yahoo.eml"])
def test_truncated_and_mangled_copies_of_real_mail_never_crash(name: str) -> None:
    raw = (FLANKER / name).read_bytes()
    variants = [raw[:cut] for cut in range(200, len(raw), max(1, len(raw) // 40))]
    variants += [raw.replace(b"boundary=", b"boundary"), raw.replace(b"charset=", b"charset=x-"), raw[::-1]]
    for variant in variants:
        try:
            parse_email(variant)
        except UnparseableEmail as exc:
            assert exc.reason  # noqa: PT017 - many inputs per test; pytest.raises cannot express "may raise"


def test_huge_encoded_subject_is_read_from_its_first_raw_characters_only() -> None:
    # 210 KB of encoded words; carehub keeps 300 characters of a subject, and decoding it all cost half a second.
    parsed = _flanker("long-header.eml")
    assert parsed.subject.startswith("Die heiße Zypernsonne quälte Max und Victoria")
    assert 300 < len(parsed.subject) <= MAX_SUBJECT_RAW_CHARS
    assert "=?" not in parsed.subject
