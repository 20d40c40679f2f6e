"""The one place venvkeeper talks to an OSV service: the OSV API's ``/v1/querybatch`` and ``/v1/vulns/ID``
(https://google.github.io/osv.dev/api/), at the base URL the operator gives (osv.dev's, a mirror, or
a service of their own on the same API). Which packages to ask about, and what the answers mean, is
decided in :mod:`venvkeeper.audit`; this module only sends the requests and reads the JSON.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.core.exitcodes import ExitCode

__all__ = ["NoAdvisoryDataError", "fetch_vuln", "query_batch"]

_TIMEOUT = 30.0
_BATCH = 1000  # the API's limit on queries per querybatch request


class NoAdvisoryDataError(VenvkeeperError):
    """No advisory data could be read: the audit says nothing either way (exit 2, not "clean")."""

    code = "no-data"
    exit_code = ExitCode.BAD_INPUT


def _request(url: str, body: Mapping[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - the operator's own http(s) URL, checked by the caller
        url,
        data=data,
        headers={"Content-Type": "application/json", "User-Agent": "venvkeeper"},
        method="POST" if data is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise NoAdvisoryDataError(
            f"{url}: the OSV service answered HTTP {exc.code} {exc.reason}",
            hint="check the --osv URL (the base of an OSV API, e.g. https://api.osv.dev)",
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NoAdvisoryDataError(
            f"{url}: cannot reach the OSV service: {reason}",
            hint="check the network, or audit offline with --osv PATH of an OSV export (PyPI/all.zip)",
        ) from None
    except ValueError:
        raise NoAdvisoryDataError(
            f"{url}: the OSV service's answer is not JSON", hint="check the --osv URL"
        ) from None


def query_batch(base: str, packages: Sequence[tuple[str, str]], ecosystem: str) -> list[list[str]]:
    """For each (name, version), the ids of the advisories the service says affect it (in order)."""
    found: list[list[str]] = []
    for start in range(0, len(packages), _BATCH):
        chunk = packages[start : start + _BATCH]
        queries = [{"package": {"name": n, "ecosystem": ecosystem}, "version": v} for n, v in chunk]
        answer = _request(f"{base.rstrip('/')}/v1/querybatch", {"queries": queries})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(chunk):
            raise NoAdvisoryDataError(
                f"{base}: /v1/querybatch answered {len(results) if isinstance(results, list) else 'no'} "
                f"results for {len(chunk)} queries",
                hint="check that --osv names an OSV API",
            )
        for result in results:
            vulns = result.get("vulns") if isinstance(result, dict) else None
            found.append(
                [v["id"] for v in vulns or [] if isinstance(v, dict) and isinstance(v.get("id"), str)]
            )
    return found


def fetch_vuln(base: str, vuln_id: str) -> Any:
    """The full OSV record of one advisory."""
    return _request(f"{base.rstrip('/')}/v1/vulns/{urllib.parse.quote(vuln_id, safe='')}")
