"""Credentials never reach a record: MLflow params, the logged config, checkpoints, console lines and log files.

A tracking URI may carry credentials (``https://user:token@host``, ``postgresql://user:pw@db/mlflow``); the
user info of any URL is replaced by ``***`` wherever a URI or a line of text leaves the process, and query
parameters that conventionally hold secrets (``token=``, ``password=``, ...) are masked too.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
# scheme://user[:password]@host -> scheme://***@host (any scheme: http, https, postgresql+psycopg2, ...)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s'\"]+)@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&;](?:token|access_token|password|passwd|pwd|secret|api_key|apikey|sig|"
                           r"signature|key)=)(?P<value>[^&;\s'\"]+)", re.IGNORECASE)
# config fields whose values are URIs that may carry credentials
URI_FIELDS = ("run.tracking_uri",)


def redact_text(text: str) -> str:
    """``text`` with the credentials of every URL in it masked."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m.group('key')}{MASK}", text)


def redact_uri(uri: str) -> str:
    return redact_text(uri)


def redact_config_dict(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A copy of :meth:`ucluster.config.Config.to_dict` output with credential-bearing fields masked."""
    out = {section: dict(fields) for section, fields in values.items()}
    for dotted in URI_FIELDS:
        section, _, key = dotted.partition(".")
        if isinstance(out.get(section, {}).get(key), str):
            out[section][key] = redact_uri(out[section][key])
    return out


def has_credentials(uri: str) -> bool:
    return redact_uri(uri) != uri
