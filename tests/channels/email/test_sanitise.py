"""HTML from inbound mail is sanitised before an agent's browser could render it."""

from __future__ import annotations

from channels.email.mime import ParsedEmail, parse_email


def _html_mail(html: str) -> ParsedEmail:
    raw = (
        "From: Resident <resident@example.org>\r\nTo: care@city.example\r\nSubject: html\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    )
    return parse_email(raw.encode())


def _sanitised(html: str) -> str:
    cleaned = _html_mail(html).html_sanitized
    assert cleaned is not None
    return cleaned


def test_script_tags_and_their_content_are_removed() -> None:
    cleaned = _sanitised("<p>hi</p><script>alert('x')</script>")
    assert "<script" not in cleaned
    assert "alert" not in cleaned
    assert "<p>hi</p>" in cleaned


def test_event_handler_attributes_are_removed() -> None:
    cleaned = _sanitised('<img src="https://x.example/a.png" onerror="steal()"><p onclick="steal()">x</p>')
    assert "onerror" not in cleaned
    assert "onclick" not in cleaned
    assert "steal" not in cleaned


def test_javascript_urls_are_removed_from_links() -> None:
    cleaned = _sanitised('<a href="javascript:steal()">click</a>')
    assert "javascript" not in cleaned
    assert "click" in cleaned


def test_style_blocks_and_iframes_are_removed() -> None:
    cleaned = _sanitised('<style>body{display:none}</style><iframe src="https://evil.example"></iframe><b>ok</b>')
    assert "<style" not in cleaned
    assert "display:none" not in cleaned
    assert "<iframe" not in cleaned
    assert "evil.example" not in cleaned
    assert "<b>ok</b>" in cleaned


def test_links_are_kept_with_noopener_noreferrer() -> None:
    cleaned = _sanitised('<a href="https://city.example/permits">permits</a>')
    assert 'href="https://city.example/permits"' in cleaned
    assert 'rel="noopener noreferrer"' in cleaned


def test_html_only_mail_gets_readable_text_without_markup_or_script() -> None:
    parsed = _html_mail(
        "<html><head><style>p{}</style></head><body><p>Line one</p><p>Line &amp; two</p>"
        "<script>var x=1;</script></body></html>"
    )
    assert parsed.text == "Line one\n\nLine & two"
    assert parsed.reply_text == parsed.text


def test_plain_text_mail_has_no_html() -> None:
    parsed = parse_email(b"From: a@example.org\r\nSubject: s\r\n\r\nhello\r\n")
    assert parsed.html_sanitized is None
