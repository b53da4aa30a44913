"""/docs (Swagger UI) and /redoc in Chromium, under the pages' own Content-Security-Policy: the whole
contract renders, and every request the page makes goes to the service itself — no CDN, no web font,
no validator badge (api/contract.py, docs/http.md)."""
from __future__ import annotations

from urllib.parse import urlsplit

OPERATIONS = 29  # every operation of /openapi.json (tests/api/test_contract.py counts them by scheme)


def _open(chromium_browser, url: str, ready: str, artifacts, name: str) -> dict:
    context = chromium_browser.new_context(viewport={"width": 1366, "height": 900})  # the page's CSP applies
    tab = context.new_page()
    seen: dict = {"requested": [], "refused": []}  # sent to a server; refused by the page's policy, never sent
    tab.on("requestfinished", lambda request: seen["requested"].append(request.url))
    tab.on("requestfailed", lambda request: seen["refused" if request.failure == "csp" else "requested"].append(
        request.url))
    tab.goto(url)
    tab.wait_for_selector(ready, timeout=30_000)
    tab.wait_for_load_state("networkidle")
    seen["rendered"] = tab.evaluate(f"new Set([...document.querySelectorAll({ready!r})].map(e => e.id || "
                                    "e.dataset.sectionId)).size")
    tab.screenshot(path=str(artifacts / f"api-{name}.png"))
    context.close()
    return seen


def test_swagger_ui_renders_every_operation_from_this_host_alone(served_readonly, chromium_browser, artifacts):
    seen = _open(chromium_browser, served_readonly.base + "/docs", ".opblock", artifacts, "swagger")
    own = urlsplit(served_readonly.base).netloc
    assert sorted({urlsplit(url).netloc for url in seen["requested"] if url.startswith("http")}) == [own]
    assert {urlsplit(url).path for url in seen["requested"]} >= {"/docs", "/openapi.json",
                                                               "/docs-assets/swagger-ui-bundle.js"}
    assert seen["refused"] == []
    assert seen["rendered"] == OPERATIONS


def test_redoc_renders_every_operation_from_this_host_alone(served_readonly, chromium_browser, artifacts):
    seen = _open(chromium_browser, served_readonly.base + "/redoc",
                 "[data-section-id^='tag/'][data-section-id*='/operation/']", artifacts, "redoc")
    own = urlsplit(served_readonly.base).netloc
    assert sorted({urlsplit(url).netloc for url in seen["requested"] if url.startswith("http")}) == [own]
    assert {urlsplit(url).path for url in seen["requested"]} >= {"/redoc", "/openapi.json",
                                                               "/docs-assets/redoc.standalone.js"}
    # The one thing the policy refuses: the Redocly logo its sidebar would fetch from the vendor's CDN.
    assert seen["refused"] == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]
    assert seen["rendered"] == OPERATIONS
