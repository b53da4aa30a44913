"""The pages' static files: named by their content, compressed, cached for a year.

A page links `/static/app.css?v=<hash>` (`Assets.url`), the first 12 hex digits of the
file's SHA-256. That URL can only ever mean these bytes, so it is served with
`Cache-Control: public, max-age=31536000, immutable`: a phone on 3G fetches the CSS and JS
once, not on every page. A new release changes the hash, hence the URL, so nobody keeps an
old stylesheet. A request without the current hash (an old page, a hand-typed URL) gets the
current bytes with `no-cache` (use the copy only after asking; an `ETag` makes that a 304).
The pages themselves stay `no-store` (api/web/pages.py): they carry a person's figures.

Text assets are sent compressed when the browser accepts it: brotli (`br`) when the
`brotli` package is installed, else gzip; each compressed form is made once per process and
kept (deterministic bytes: gzip's timestamp is zero). `Vary: Accept-Encoding` keeps shared
caches from handing gzip to a client that did not ask for it. Only files present at
start-up are served, by exact name: no path from the URL ever reaches the file system.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

try:  # optional: brotli is smaller than gzip by ~15 % on CSS/JS; without it, gzip serves everyone
    import brotli
except ImportError:  # pragma: no cover - exercised by monkeypatching BROTLI in the tests
    brotli = None

STATIC_DIR = Path(__file__).resolve().parent / "static"
HASH_HEX_DIGITS = 12  # 48 bits: enough to tell two releases of one file apart
IMMUTABLE = "public, max-age=31536000, immutable"  # one year, the longest a cache is asked to keep
REVALIDATE = "no-cache"
COMPRESSIBLE_SUFFIXES = (".css", ".js", ".svg", ".json", ".html", ".txt", ".map", ".mjs")
COMPRESS_BYTES_MIN = 256  # below this the headers cost more than the saving
BROTLI_BEST_BYTES_MAX = 256 * 1024  # brotli's best quality (11) is slow on big bundles: 9 above this
ASSET_FILES_MAX = 512  # an explicit bound on what one directory scan may load into memory
ENCODINGS = ("br", "gzip")  # preference order when the client accepts several
BROTLI = brotli  # the tests replace it with None to pin the gzip-only path

_compressed: dict[tuple[str, str], bytes] = {}  # (sha256, encoding) -> bytes, shared by every app in the process


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    media_type: str
    sha256: str

    @property
    def version(self) -> str:
        return self.sha256[:HASH_HEX_DIGITS]

    @property
    def compressible(self) -> bool:
        return self.name.endswith(COMPRESSIBLE_SUFFIXES) and len(self.body) >= COMPRESS_BYTES_MIN


def _media_type(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("javascript") else guessed


def _compress(asset: Asset, encoding: str) -> bytes:
    key = (asset.sha256, encoding)
    if key not in _compressed:
        if encoding == "gzip":
            _compressed[key] = gzip.compress(asset.body, compresslevel=9, mtime=0)
        else:
            quality = 11 if len(asset.body) <= BROTLI_BEST_BYTES_MAX else 9
            _compressed[key] = BROTLI.compress(asset.body, quality=quality)
    return _compressed[key]


def accepted_encodings(header: str) -> set[str]:
    """The codings an `Accept-Encoding` header admits (q > 0); `*` admits both of ours."""
    admitted, refused = set(), set()
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        token = token.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        (admitted if quality > 0 else refused).add(token)
    if "*" in admitted:
        admitted |= set(ENCODINGS) - refused
    return admitted & set(ENCODINGS)


class Assets:
    """The files of one static directory, read once: `url(name)` for templates, `response` to serve."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        files = sorted(path for path in directory.rglob("*") if path.is_file())
        if len(files) > ASSET_FILES_MAX:
            raise ValueError(f"{directory}: {len(files)} files, more than the {ASSET_FILES_MAX} served as assets")
        self.files: dict[str, Asset] = {}
        for path in files:
            name = path.relative_to(directory).as_posix()
            body = path.read_bytes()
            self.files[name] = Asset(name, body, _media_type(name), hashlib.sha256(body).hexdigest())

    def url(self, name: str) -> str:
        """'/static/app.css?v=3f2a…': a KeyError for a file that is not there (a template bug)."""
        return f"/static/{name}?v={self.files[name].version}"

    def response(self, request: Request, name: str) -> Response:
        asset = self.files.get(name)
        if asset is None:
            return Response("not found", status_code=404, media_type="text/plain; charset=utf-8",
                            headers={"Cache-Control": REVALIDATE})
        encoding = None
        if asset.compressible:
            admitted = accepted_encodings(request.headers.get("accept-encoding", ""))
            usable = [coding for coding in ENCODINGS if coding in admitted and (coding != "br" or BROTLI)]
            encoding = usable[0] if usable else None
        body = _compress(asset, encoding) if encoding else asset.body
        if encoding and len(body) >= len(asset.body):
            encoding, body = None, asset.body
        # A strong ETag names one representation: the gzip bytes are not the brotli bytes.
        etag = f'"{asset.version}{"-" + encoding if encoding else ""}"'
        headers = {"ETag": etag, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": IMMUTABLE if request.query_params.get("v") == asset.version else REVALIDATE}
        if asset.compressible:
            headers["Vary"] = "Accept-Encoding"
        if encoding:
            headers["Content-Encoding"] = encoding
        if etag in [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            return Response(status_code=200, media_type=asset.media_type,
                            headers={**headers, "Content-Length": str(len(body))})
        return Response(body, media_type=asset.media_type, headers=headers)
