"""The one text hash allowances are bound to: the same post hashes the same, a changed
post (one letter, an invisible character) does not."""

from __future__ import annotations

from proxy.compliance.texthash import text_hash


def test_same_post_as_browsers_send_it() -> None:
    base = text_hash("Sveiki, šodien  tiekamies\nplkst. 10")
    assert text_hash("  Sveiki, šodien tiekamies\r\nplkst. 10 \n") == base
    # NFD (s + combining caron) is the same text as NFC š
    assert text_hash("Sveiki, s\u030codien tiekamies plkst. 10") == base
    assert text_hash("Sveiki,\u00a0šodien\ttiekamies\u2028plkst. 10") == base


def test_changed_post_differs() -> None:
    base = text_hash("Call me on +371 2612 3456")
    assert text_hash("Call me on +371 2612 3457") != base
    assert text_hash("Call me on +371 2612\u200b 3456") != base
    assert text_hash("call me on +371 2612 3456") != base
    assert text_hash("Call me on +371 2612 3456\ud800") != base
    assert len(base) == 64
    assert int(base, 16) >= 0
