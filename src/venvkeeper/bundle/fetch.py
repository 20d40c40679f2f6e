"""The lock's files, fetched from the lock's own URLs into a download cache.

uv has no command that downloads a lock's files, and its offline mode will not take them from a
directory instead (the lock's URLs win), so ``pack`` does it here: :func:`download` fetches the
artifacts :mod:`venvkeeper.bundle.locked` selected, in parallel, each checked against the lock's
sha256 before it enters the cache (``<cache>/<sha256[:2]>/<sha256>/<file>``), and reuses what the
cache holds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import re
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import BinaryIO

from venvkeeper import __version__
from venvkeeper.bundle.locked import Artifact
from venvkeeper.core import progress as steps
from venvkeeper.core.errors import VenvkeeperError
from venvkeeper.gateways.uv import per_user_dir, unusable_reason

__all__ = ["FetchError", "cache_path", "default_cache_dir", "download"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0  # per connection attempt and per read, not for the whole file
_RETRY_DELAYS_S = (0.5, 2.0)  # transient failures only: a refused connection fails at once


class FetchError(VenvkeeperError):
    """A locked file could not be fetched, or what was fetched is not what uv.lock says."""

    code = "fetch"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/venvkeeper/wheels``, else ``~/.cache/venvkeeper/wheels``; for a user who
    cannot write there (a service user whose home is missing or unreadable), a per-user directory
    under the temporary directory, as for uv's cache."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # A relative XDG_CACHE_HOME is to be ignored (XDG base directory specification).
    try:
        wanted = (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "venvkeeper" / "wheels"
    except RuntimeError:  # no HOME and no passwd entry to take it from
        return per_user_dir("venvkeeper-wheels")
    return wanted if unusable_reason(str(wanted)) is None else per_user_dir("venvkeeper-wheels")


def cache_path(cache_dir: Path, artifact: Artifact) -> Path:
    return cache_dir / artifact.sha256[:2] / artifact.sha256 / artifact.filename


def download(
    artifacts: Iterable[Artifact],
    cache_dir: Path,
    *,
    jobs: int = 8,
    progress: bool,
    timeout: float = _TIMEOUT_S,
) -> dict[str, Path]:
    """Each artifact's file in the cache (filename -> path), fetched when the cache lacks it.

    A cached file is used only when it still hashes to the lock's sha256; a download is hashed as
    it streams into a temporary file in ``cache_dir`` and renamed into place only when it matches,
    so the cache never holds a file the lock did not name. Up to ``jobs`` files at once; after a
    failure no new one starts, and the error names the first failed file (the others below it).
    """
    unique: dict[str, Artifact] = {}
    for artifact in artifacts:
        # Both become a path in the cache: a plain file name and a hex digest, nothing else.
        name = artifact.filename
        if not _SHA256.fullmatch(artifact.sha256) or not name or name[0] == "." or {"/", "\\"} & set(name):
            raise FetchError(
                f"{name!r} (sha256 {artifact.sha256!r}): not a file venvkeeper can cache",
                hint="run `uv lock`",
            )
        if unique.setdefault(name, artifact).sha256 != artifact.sha256:
            raise FetchError(f"{name}: locked with two different sha256", hint="run `uv lock`")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(
            f"{cache_dir}: cannot create the download cache: {exc.strerror}",
            hint="make it writable, or point XDG_CACHE_HOME elsewhere",
        ) from exc
    work = sorted(unique.values(), key=lambda a: a.filename)
    if not work:
        return {}
    with (
        _progress(len(work), enabled=progress) as advance,
        ThreadPoolExecutor(max(1, min(jobs, len(work)))) as pool,
    ):
        futures = [pool.submit(_fetch_one, artifact, cache_dir, timeout) for artifact in work]
        for future in futures:
            future.add_done_callback(lambda _: advance())
        wait(futures, return_when=FIRST_EXCEPTION)
        pool.shutdown(cancel_futures=True)  # after a failure: the queued files do not start
    failures = [error for f in futures if not f.cancelled() and (error := f.exception()) is not None]
    if failures:
        if isinstance(failures[0], FetchError) and len(failures) > 1:
            failures[0].detail = "\n".join(["also:", *map(str, failures[1:])])
        raise failures[0]
    return {artifact.filename: future.result() for artifact, future in zip(work, futures, strict=True)}


def _fetch_one(artifact: Artifact, cache_dir: Path, timeout: float) -> Path:
    final = cache_path(cache_dir, artifact)
    if final.is_file():
        with contextlib.suppress(OSError), final.open("rb") as fh:
            if hashlib.file_digest(fh, "sha256").hexdigest() == artifact.sha256:
                return final
    if urllib.parse.urlsplit(artifact.url).scheme not in ("http", "https", "file"):
        raise FetchError(
            f"{artifact.filename}: cannot download {artifact.url!r}: not an http(s) or file URL",
            hint="run `uv lock` against an index served over HTTP(S)",
        )
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(dir=cache_dir, prefix=f".{artifact.filename}.", suffix=".part")
        with os.fdopen(fd, "wb") as out:
            actual = _stream_with_retries(artifact, out, timeout)
        if actual != artifact.sha256:
            raise FetchError(
                f"{artifact.filename}: downloaded from {artifact.url}, sha256 {actual}, not uv.lock's "
                f"{artifact.sha256}",
                hint="the index serves another file than the one locked (replaced, or altered on the way); "
                "nothing was cached. Re-lock (`uv lock`) only if you trust the new file",
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, final)
    except OSError as exc:
        raise FetchError(
            f"{cache_dir}: cannot write {artifact.filename} to the download cache: {exc.strerror}",
            hint="check the cache's free space and permissions",
        ) from exc
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
    return final


class _TransientError(Exception):
    """A failure worth another try: a timeout, a dropped connection, an overloaded index."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


def _stream_with_retries(artifact: Artifact, out: BinaryIO, timeout: float) -> str:
    for delay in _RETRY_DELAYS_S:
        try:
            return _stream(artifact, out, timeout)
        except _TransientError:
            time.sleep(delay)
            out.seek(0)
            out.truncate()
    try:
        return _stream(artifact, out, timeout)
    except _TransientError as exc:
        raise exc.error from exc.__cause__


def _network_error(artifact: Artifact, exc: BaseException) -> FetchError:
    reason = getattr(exc, "reason", None) or exc
    if artifact.url.startswith("file:"):
        return FetchError(
            f"{artifact.filename}: cannot read {artifact.url}: {reason}",
            hint="the lock names a local file that is not there; run `uv lock`",
        )
    return FetchError(
        f"{artifact.filename}: cannot download {artifact.url}: the index is unreachable ({reason})",
        hint="check that this host reaches the index (network, proxy, firewall); files already in the "
        "download cache are not fetched again",
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every download: urllib would build a new one per file, loading the
    system's certificates each time, which costs more than the downloads themselves."""
    return ssl.create_default_context()


def _stream(artifact: Artifact, out: BinaryIO, timeout: float) -> str:
    """Copy the URL's body into ``out``; its sha256 (hex)."""
    # The scheme is http, https or file: _fetch_one checked it.
    request = urllib.request.Request(artifact.url, headers={"User-Agent": f"venvkeeper/{__version__}"})  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=timeout, context=_tls())  # noqa: S310
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        error = FetchError(
            f"{artifact.filename}: {artifact.url} answered HTTP {exc.code} {exc.reason}",
            hint="the index no longer serves the locked file, or wants credentials",
        )
        if exc.code in (408, 429) or exc.code >= 500:
            raise _TransientError(error) from exc
        raise error from exc
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, ConnectionRefusedError) or isinstance(
            getattr(exc, "reason", None), ConnectionRefusedError
        ):
            raise _network_error(
                artifact, exc
            ) from exc  # nothing listens: a second try would not change that
        raise _TransientError(_network_error(artifact, exc)) from exc
    digest = hashlib.sha256()
    with response:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _TransientError(_network_error(artifact, exc)) from exc
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            out.write(chunk)


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Callable[[], None]]:
    """The step "fetching N files", advanced once per file (fetched or found in the cache); shown by
    whatever the command line installed (:mod:`venvkeeper.core.progress`)."""
    if not enabled:
        yield lambda: None
        return
    with steps.step(f"fetching {total} file{'' if total == 1 else 's'}", total=total) as step:
        yield step.advance
        step.summary = step.label  # without the count of those done
