"""Web pages over the same ledger and simulator functions as the JSON API (docs/web.md).

`pages.install(app)` serves them; `auth` reads the bearer token from the header or an
HttpOnly cookie; `texts` holds the words (Vietnamese first); `charts` draws inline SVG.
"""
