"""Keep secrets out of logs, error messages and MLflow params.

A *secret key* is a config key or environment variable whose last name part mentions a password,
secret, token, API key, credential or private key (``db.password``, ``api_key``,
``DATABRICKS_TOKEN``, ``AWS_SECRET_ACCESS_KEY``). Their values are shown as ``REDACTED``:

* :func:`redact` -- a copy of a (nested) mapping with secret values replaced, for anything logged
  or sent to MLflow;
* :func:`redact_uri` -- a URI without the password of its user info (``https://u:***@host``) and
  without secret query parameters (``?token=***``);
* :class:`SecretFilter` -- a logging filter the jobs put on their handlers: it replaces, in every
  formatted record, the values of secret environment variables and of secrets registered with
  :func:`register_secrets` (the jobs register those found in their config).

This module never configures logging itself.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SecretFilter", "is_secret_key", "redact", "redact_uri", "register_secrets", "scrub", "secret_values"]

REDACTED = "REDACTED"
_SECRET = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|apikey|credential|private[_-]?key|authorization",
                     re.IGNORECASE)
_MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words and digits
_registered: set[str] = set()


def is_secret_key(key: Any) -> bool:
    """True if ``key`` (the last part of a dotted path, or an env variable name) names a secret."""
    if not isinstance(key, str):
        return False
    parts = re.split(r"[.\[]", key.strip()) if key.strip() else [key]
    last = parts[-1] if parts[-1] != "key" or len(parts) < 2 else ".".join(parts[-2:])  # fs.s3a.secret.key
    return bool(_SECRET.search(last or key))


def redact(value: Any, *, key: str = "") -> Any:
    """A copy of ``value`` with the values of secret keys (at any depth) replaced by ``REDACTED``."""
    if key and is_secret_key(key) and value is not None:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, str) and "://" in value:
        return redact_uri(value)
    return value


def redact_uri(uri: str) -> str:
    """``scheme://user:password@host/path?token=x`` -> ``scheme://user:REDACTED@host/path?token=REDACTED``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc, query = parts.netloc, parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if "@" not in netloc and not any(is_secret_key(k) for k, _ in pairs):
        return uri  # nothing to hide: keep it byte for byte (sqlite:///a stays sqlite:///a)
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    if pairs:
        query = urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe=REDACTED)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def register_secrets(values: Iterable[Any]) -> None:
    """Remember secret values (e.g. found in a config) so :class:`SecretFilter` hides them too."""
    _registered.update(str(v) for v in values if v is not None and len(str(v)) >= _MIN_SECRET_LENGTH)


def secret_values(data: Any, *, key: str = "") -> list[str]:
    """The values of secret keys anywhere in a nested mapping (for :func:`register_secrets`)."""
    if key and is_secret_key(key) and data is not None and not isinstance(data, (Mapping, list, tuple)):
        return [str(data)]
    if isinstance(data, Mapping):
        return [s for k, v in data.items() for s in secret_values(v, key=str(k))]
    if isinstance(data, (list, tuple)):
        return [s for v in data for s in secret_values(v)]
    return []


def _environment_secrets() -> set[str]:
    return {v for k, v in os.environ.items() if is_secret_key(k) and len(v) >= _MIN_SECRET_LENGTH}


def scrub(text: str) -> str:
    """``text`` with every secret env value and registered secret replaced by ``REDACTED``."""
    for secret in sorted(_environment_secrets() | _registered, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class SecretFilter(logging.Filter):
    """Replace secret values (secret env variables, registered secrets) in every record by ``REDACTED``.

    The record's message is formatted once (``msg % args``) and its exception text rendered, so
    neither a format argument nor a traceback can carry a secret past the handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        record.msg, record.args = scrub(record.getMessage()), None
        return True
