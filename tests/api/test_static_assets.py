"""Static assets: named by content, compressed when the browser accepts it, cached for a year
(api/web/assets.py; issue 17, item 6). Pages stay uncached: they carry a person's figures."""
from __future__ import annotations

import gzip
import hashlib
import re
import warnings

import pytest

from api.app import build_services, create_app
from api.settings import Settings
from api.web import assets
from api.web.assets import IMMUTABLE, STATIC_DIR, accepted_encodings
from tests.api.conftest import SECRET
from tests.conftest import FixedClock

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CSS = (STATIC_DIR / "app.css").read_bytes()
CSS_VERSION = hashlib.sha256(CSS).hexdigest()[:12]


@pytest.fixture
def client(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'assets.db'}", secret=SECRET, pack="vn-pilot", mode="demo")
    with TestClient(create_app(services=build_services(settings, clock=FixedClock())),
                    raise_server_exceptions=False) as client:
        yield client


def fetch(client, path: str, encodings: str = "", **headers: str):
    return client.get(path, headers={"Accept-Encoding": encodings, **headers})


def test_a_page_links_its_css_and_js_by_the_first_12_hex_digits_of_their_sha256(client):
    page = client.get("/signin").text
    js_version = hashlib.sha256((STATIC_DIR / "app.js").read_bytes()).hexdigest()[:12]
    assert f'href="/static/app.css?v={CSS_VERSION}"' in page
    assert f'src="/static/app.js?v={js_version}"' in page
    assert not re.search(r'"/static/app\.(css|js)"', page)  # no unversioned link left


def test_a_hashed_asset_is_immutable_for_a_year_and_gzipped_when_gzip_is_accepted(client):
    answer = fetch(client, f"/static/app.css?v={CSS_VERSION}", "gzip")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable" == IMMUTABLE
    assert answer.headers["content-encoding"] == "gzip" and answer.headers["vary"] == "Accept-Encoding"
    assert answer.headers["content-type"] == "text/css; charset=utf-8"
    assert answer.content == CSS  # httpx undid the gzip: the same bytes as the file
    assert answer.num_bytes_downloaded == len(gzip.compress(CSS, compresslevel=9, mtime=0)) < len(CSS) // 2
    assert answer.headers["etag"] == f'"{CSS_VERSION}-gzip"'


def test_brotli_is_preferred_when_accepted_and_installed_and_gzip_serves_without_it(client, monkeypatch):
    brotli = pytest.importorskip("brotli")
    answer = fetch(client, f"/static/app.css?v={CSS_VERSION}", "gzip, deflate, br")
    assert answer.headers["content-encoding"] == "br" and answer.content == CSS
    assert answer.num_bytes_downloaded == len(brotli.compress(CSS, quality=11))
    assert answer.num_bytes_downloaded < len(gzip.compress(CSS, compresslevel=9, mtime=0))
    assert fetch(client, "/static/app.css", "gzip, br;q=0").headers["content-encoding"] == "gzip"
    monkeypatch.setattr(assets, "BROTLI", None)
    assert fetch(client, "/static/app.css", "br, gzip").headers["content-encoding"] == "gzip"
    assert "content-encoding" not in fetch(client, "/static/app.css", "br").headers


def test_without_an_accepted_coding_the_file_is_sent_as_it_is(client):
    answer = fetch(client, f"/static/app.css?v={CSS_VERSION}", "identity")
    assert "content-encoding" not in answer.headers and answer.num_bytes_downloaded == len(CSS)
    assert answer.headers["etag"] == f'"{CSS_VERSION}"'


def test_an_unversioned_or_stale_url_gets_the_current_bytes_but_must_revalidate(client):
    for path in ("/static/app.css", "/static/app.css?v=000000000000"):
        answer = fetch(client, path, "gzip")
        assert answer.status_code == 200 and answer.content == CSS
        assert answer.headers["cache-control"] == "no-cache"


def test_a_cached_copy_with_the_current_etag_is_answered_304_without_a_body(client):
    etag = fetch(client, "/static/app.css", "gzip").headers["etag"]
    again = fetch(client, "/static/app.css", "gzip", **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = fetch(client, "/static/app.css", "identity", **{"If-None-Match": etag})  # gzip's tag names no plain copy
    assert other.status_code == 200 and other.content == CSS


def test_head_answers_the_headers_and_the_length_of_what_get_would_send(client):
    answer = client.head(f"/static/app.css?v={CSS_VERSION}", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-length"] == str(len(CSS)) and answer.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize("path", ["/static/nothing.css", "/static/../pages.py", "/static/%2e%2e/pages.py",
                                  "/static/", "/static/templates/base.html"])
def test_only_files_present_at_start_up_are_served_and_no_path_reaches_the_file_system(client, path):
    answer = fetch(client, path, "gzip")
    assert answer.status_code == 404 and b"from __future__" not in answer.content


def test_pages_are_never_cached_they_carry_a_persons_figures(client):
    page = client.get("/signin")
    assert page.headers["cache-control"] == "no-store" and "content-encoding" not in page.headers


@pytest.mark.parametrize("header, admitted", [
    ("gzip, deflate, br, zstd", {"gzip", "br"}), ("gzip;q=0, br", {"br"}), ("*", {"gzip", "br"}),
    ("*;q=0", set()), ("gzip;q=0, *", {"br"}), ("", set()), ("identity", set()), ("GZIP;Q=0.5", {"gzip"}),
    ("gzip;q=oops", set()),
])
def test_accept_encoding_is_read_with_its_q_values(header, admitted):
    assert accepted_encodings(header) == admitted
