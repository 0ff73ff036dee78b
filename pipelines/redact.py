"""Secrets out of everything shown or stored: one redaction for URLs, error texts and log lines.

What is hidden (replaced by ``***``):
- the user-info of any URL (``https://user:pass@host/`` → ``https://***@host/``);
- the value of any query parameter or ``name=value`` pair named like a credential (``token``, ``api_key``,
  ``secret``, ``password``, ``auth``, ``sig``…);
- the value of credential-bearing headers (``Authorization``, ``Cookie``, ``X-Api-Key``…) however printed;
- every string registered with :func:`register_secret` (the configuration registers its credentials: the
  secret parts of apprise URLs, which hide tokens in their paths, and ``${VAR}`` values of variables named
  like secrets), wherever they appear.

Pure functions over strings plus one process-wide registry; ``crawler.daemon.logs`` installs a logging filter that
runs every log record through :func:`redact_text`.
"""

from __future__ import annotations

import base64
import re
import threading
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

MASK = "***"

# A name is a credential's when one of its words (split on _ - . and case changes) is one of these, or it
# ends with one (``apikey``, ``accesstoken``).
_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "password", "passwd", "pwd", "pass", "passphrase", "auth",
    "authorization", "sig", "signature", "credential", "credentials", "session", "sessionid", "sid",
    "jwt", "bearer", "cookie", "otp", "private", "access",
})
_SECRET_SUFFIXES = ("key", "token", "secret", "password", "passwd", "signature", "auth", "sig")
# Parameters that end like a secret but are not one.
_NOT_SECRET = frozenset({"monkey", "turkey", "hockey", "jockey", "whiskey", "passage", "author", "authors"})
# Shorter registered strings would hide ordinary words; a credential is longer than this.
MIN_SECRET = 4

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s\"'<>`]+")
_PAIR = re.compile(r"(?P<name>[A-Za-z0-9_.+%-]{1,64})=(?P<value>[^&\s\"'<>;,)\]}]+)")
_HEADER = re.compile(
    r"(?P<name>(?:proxy-)?authorization|set-cookie|cookie|x-[a-z0-9-]*(?:key|token|secret|auth|signature)"
    r"[a-z0-9-]*|[a-z0-9-]*api-?key)(?P<sep>[\"']?\s*[:=]\s*(?:\[\s*)?(?:b(?=[\"']))?)(?P<q>[\"']?)",
    re.IGNORECASE,
)
_HEADER_END = re.compile(r"[\r\n,;&}\]]")
# Punctuation that ends a sentence rather than the URL before it ("…/feed?token=x: HTTP 404").
_URL_TAIL = ".,:;!?)]}"

_lock = threading.Lock()
_registered: tuple[str, ...] = ()


def is_secret_name(name: str) -> bool:
    """Whether a parameter, header or variable of this name carries a credential."""
    n = name.strip().lstrip("+-:").lower()
    if not n or n in _NOT_SECRET:
        return False
    words = [w for w in re.split(r"[^a-z0-9]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()) if w]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return n.endswith(_SECRET_SUFFIXES)


def register_secret(value: str | None) -> None:
    """Hide this exact string (and its percent-encoded forms) wherever it is shown from now on."""
    if not value or len(value) < MIN_SECRET or value == MASK:
        return
    global _registered
    forms = {value, quote(value, safe=""), quote_plus(value)}
    with _lock:
        merged = set(_registered) | {f for f in forms if len(f) >= MIN_SECRET}
        # Longest first: a secret containing another is hidden whole.
        _registered = tuple(sorted(merged, key=len, reverse=True))


def forget_secrets() -> None:
    """Drop the registered strings (tests, a configuration reloaded)."""
    global _registered
    with _lock:
        _registered = ()


def redact_url(url: str) -> str:
    """A URL with its user-info and credential-named query values hidden; anything else as it was."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text_plain(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = _PAIR.sub(_pair, parts.query) if parts.query else parts.query
    fragment = _PAIR.sub(_pair, parts.fragment) if parts.fragment else parts.fragment
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _pair(m: re.Match[str]) -> str:
    name, value = m.group("name"), m.group("value")
    if not is_secret_name(unquote(name)):
        return m.group(0)
    bare = value.rstrip(_URL_TAIL)
    return f"{name}={MASK}{value[len(bare):] if bare else ''}"


def redact_text_plain(text: str) -> str:
    """:func:`redact_text` without the URL pass (for what is not a URL)."""
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _PAIR.sub(_pair, text)
    return _redact_headers(text)


def _redact_headers(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in _HEADER.finditer(text):
        if m.start() < pos:
            continue
        quote_char = m.group("q")
        start = m.end()
        if quote_char:
            end = text.find(quote_char, start)
            end = len(text) if end < 0 else end
        else:
            found = _HEADER_END.search(text, start)
            end = found.start() if found else len(text)
        if end <= start:
            continue
        out.append(text[pos:start])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _url(m: re.Match[str]) -> str:
    url = m.group(0)
    bare = url.rstrip(_URL_TAIL)
    return redact_url(bare) + url[len(bare):]


def redact_text(text: str | None) -> str:
    """Any text shown or stored (an error, a log line, a URL): every credential in it hidden."""
    if not text:
        return text or ""
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL.sub(_url, text)
    text = _PAIR.sub(_pair, text)
    return _redact_headers(text)


def url_secrets(url: str) -> list[str]:
    """The credentials a URL carries: its password (or token user), credential-named query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if parts.password:
        found.append(parts.password)
    if parts.username and parts.password is None:
        found.append(parts.username)  # https://TOKEN@host/
    if parts.username is not None and parts.password is not None:
        # as an HTTP Basic Authorization header carries them
        pair = f"{unquote(parts.username)}:{unquote(parts.password)}"
        found.append(base64.b64encode(pair.encode()).decode())
    for m in _PAIR.finditer(parts.query):
        if is_secret_name(unquote(m.group("name"))):
            found.append(m.group("value"))
            found.append(unquote(m.group("value")))
    return [f for f in found if f]
