"""Every form a secret can take in a file: the needles `live_tests.secrets` masks.

Raw; JSON-escaped up to `JSON_ESCAPE_DEPTH` times, ASCII-escaped or not; HTML-escaped; URL-encoded
with upper- or lowercase %xx; base64 at every byte alignment; Python repr; sanitised as a file name;
and the latin-1 bytes of the secret as mitmproxy's HAR writes them back (surrogate escapes).
"""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse

# A JSON string holding JSON holding the secret (a state, a stack trace, a request body in a
# record) escapes it twice; three levels cover a HAR of such a body.
JSON_ESCAPE_DEPTH = 3
# Base64 of a secret inside a longer value only shows the characters that depend on the secret
# alone; shorter runs than this would mask unrelated base64 text.
MIN_BASE64_LENGTH = 6
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")  # as the store names files after streams


def _json_escaped(text: str, escape_slash: bool) -> set[str]:
    forms = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    if escape_slash:  # some encoders (PHP, some Java) write "/" as "\/"
        forms |= {form.replace("/", "\\/") for form in forms}
    return forms


def json_forms(secret: str, depth: int = JSON_ESCAPE_DEPTH) -> list[str]:
    """The secret JSON-escaped 0 to `depth` times, each level ASCII-escaped or not."""
    found = [secret]
    level = {secret}
    for n in range(depth):
        level = {form for text in level for form in _json_escaped(text, escape_slash=n == 0)} - set(found)
        found += sorted(level)
    return found


def _html_escaped(text: str) -> set[str]:
    # Jinja/markupsafe write &#34; and &#39;, html.escape &quot; and &#x27;.
    jinja = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return {jinja.replace('"', "&#34;").replace("'", "&#39;"), html.escape(text, quote=True)}


def _url_encoded(text: str) -> set[str]:
    forms = {urllib.parse.quote(text, safe=""), urllib.parse.quote_plus(text), urllib.parse.quote(text)}
    return forms | {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in forms}


def _base64_forms(secret: str) -> set[str]:
    """The base64 characters that depend only on the secret, at each of the 3 byte alignments."""
    data = secret.encode("utf-8")
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start, end = -(-8 * offset // 6), 8 * (offset + len(data)) // 6
        piece = encoded[start:end]
        if len(piece) >= MIN_BASE64_LENGTH:
            forms |= {piece, piece.replace("+", "-").replace("/", "_")}
    return forms


def _latin1_as_read(secret: str) -> str | None:
    """The secret's latin-1 bytes as UTF-8 text with surrogate escapes (how mitmproxy's HAR keeps a
    header sent in latin-1); None when latin-1 and UTF-8 agree or it has no latin-1 form."""
    try:
        data = secret.encode("latin-1")
    except UnicodeEncodeError:
        return None
    text = data.decode("utf-8", "surrogateescape")
    return None if text == secret else text


def encoded_forms(secret: str) -> list[str]:
    """How a secret can appear in files: raw, JSON-escaped at any depth, HTML-escaped, URL-encoded,
    base64, repr'd, sanitised as a file name."""
    forms = json_forms(secret)
    latin1 = _latin1_as_read(secret)
    if latin1 is not None:  # e.g. an HTTP header: sent as latin-1, read back with surrogates
        forms += [form for form in json_forms(latin1, depth=2) if form != latin1]
    for text in list(forms):
        forms += sorted(_html_escaped(text))
    for text in json_forms(secret, depth=1):
        forms += sorted(_url_encoded(text))
    forms += sorted(_base64_forms(secret))
    forms += [repr(secret)[1:-1], _UNSAFE_FILENAME.sub("_", secret)]
    return list(dict.fromkeys(forms))
