"""A small OSV-compatible service on 127.0.0.1 for the audit tests: ``POST /v1/querybatch`` and
``GET /v1/vulns/ID`` as https://google.github.io/osv.dev/api/ describes them, answering from OSV
records the test gives (matched by the same rule the real service uses: versions, then ranges)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from packaging.version import Version

__all__ = ["OsvServer", "affects"]


def _in_range(events: Sequence[Mapping[str, str]], version: Version) -> bool:
    affected = False
    for event in sorted(events, key=lambda e: Version(next(iter(e.values())))):
        [(kind, value)] = event.items()
        if kind == "introduced" and Version(value) <= version:
            affected = True
        elif kind in ("fixed", "last_affected"):
            # fixed closes at its version, last_affected just after it
            closes_at = Version(value)
            affected = affected and not (closes_at <= version if kind == "fixed" else closes_at < version)
    return affected


def affects(record: Mapping[str, Any], name: str, version: str) -> bool:
    for entry in record.get("affected", []):
        package = entry.get("package", {})
        if package.get("ecosystem") != "PyPI" or package.get("name", "").lower() != name.lower():
            continue
        if version in entry.get("versions", []):
            return True
        if any(
            r.get("type") == "ECOSYSTEM" and _in_range(r["events"], Version(version))
            for r in entry.get("ranges", [])
        ):
            return True
    return False


class OsvServer:
    def __init__(self, records: Sequence[Mapping[str, Any]], *, status: int = 200) -> None:
        self.records = {r["id"]: r for r in records}
        self.status = status
        self.queries: list[Any] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                if server.status != 200:
                    self._answer(server.status, {"message": "unavailable"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.queries.append(body)
                if self.path != "/v1/querybatch":
                    self._answer(404, {"message": "not found"})
                    return
                results = []
                for query in body["queries"]:
                    name, version = query["package"]["name"], query["version"]
                    hits = [
                        {"id": r["id"], "modified": r.get("modified", "")}
                        for r in server.records.values()
                        if affects(r, name, version)
                    ]
                    results.append({"vulns": hits} if hits else {})
                self._answer(200, {"results": results})

            def do_GET(self) -> None:
                vuln = self.path.removeprefix("/v1/vulns/")
                if server.status != 200 or vuln not in server.records:
                    self._answer(server.status if server.status != 200 else 404, {"message": "not found"})
                    return
                self._answer(200, server.records[vuln])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> OsvServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
