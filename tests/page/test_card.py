"""The customer's stamp page over HTTP: every wrong address is the same plain
404, the token is random, the page shows the card (its state, its mark) and
hides personal fields, every answer carries the security headers and safe
cookies, the QR codes encode the page's URL, and the language follows the
browser or the switch."""

from __future__ import annotations

import itertools
import re
import secrets
from datetime import timedelta
from typing import Any

import httpx
import segno

from stampbook.config import Settings
from stampbook.page.service import web_url
from stampbook.page.text import TEXT
from tests.conftest import Api
from tests.page.conftest import (
    VisitorFactory,
    page_of,
    page_path,
    shown_state,
    stamp_url,
)

CSP = (
    "default-src 'none'; img-src 'self' data: https:; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
TOKEN = re.compile(r"/s/([A-Za-z0-9_-]{32})")


def assert_html_404(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    assert '"code"' not in response.text
    assert response.headers["content-security-policy"] == CSP


# --- addresses ------------------------------------------------------------------------


async def test_unknown_tokens_and_guessed_indexes_are_plain_404_pages(
    api: Api, client: httpx.AsyncClient
) -> None:
    stamp_idx = await api.stamp(userNm="Kim Minji")
    real = await page_of(api, stamp_idx)
    for path in (
        f"/s/{secrets.token_urlsafe(24)}",
        f"/s/{stamp_idx}",
        "/s/1",
        f"{real}x",
        f"{real[:-1]}",
        "/s/",
        "/s/a/b/c",
        f"/s/{secrets.token_urlsafe(24)}/staff",
        f"/s/{secrets.token_urlsafe(24)}/qr.svg",
        f"/s/{secrets.token_urlsafe(24)}/qr.png",
        "/s/%00%27%22",
    ):
        response = await client.get(path)
        assert_html_404(response)
        assert "Kim Minji" not in response.text
    for suffix in ("/pin", "/staff", "/hide"):
        assert_html_404(await client.post(f"/s/{secrets.token_urlsafe(24)}{suffix}", data={}))
    assert_html_404(await client.put(real))
    assert (await client.head(real)).status_code == 200
    assert (await client.head(f"/s/{stamp_idx}")).status_code == 404
    # HTML pages are not part of the API's description.
    openapi = (await client.get("/openapi.json")).json()
    assert not [path for path in openapi["paths"] if path.startswith("/s/")]


async def test_tokens_are_192_random_bits_unrelated_to_the_index(api: Api) -> None:
    card_idx = await api.card()
    for _ in range(24):
        await api.stamp(card_idx)
    listed = (await api.ok("GET", "list", params={"limit": 100}))["items"]
    tokens = []
    for item in listed:
        found = TOKEN.fullmatch(page_path(item["stampUrl"]))
        # 32 URL-safe characters: secrets.token_urlsafe(24), 192 random bits.
        assert found, item["stampUrl"]
        tokens.append(found.group(1))
    assert len(tokens) == 24 and len(set(tokens)) == 24
    # Consecutive stamps share nothing: no common prefix beyond chance, and
    # the characters spread over the whole alphabet.
    assert max(len(_common_prefix(a, b)) for a, b in itertools.pairwise(tokens)) < 4
    assert len(set("".join(tokens))) > 50


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


# --- what the page shows ---------------------------------------------------------------


async def test_page_shows_the_card_and_hides_personal_fields(
    api: Api, client: httpx.AsyncClient
) -> None:
    card_idx = await api.card(
        cardNm="Bean There",
        cardTtl="Ten coffees, one free",
        maxStamps=10,
        url="https://shop.example.com/menu",
        stampImgUrl="https://cdn.example.com/mark.png",
    )
    stamp_idx = await api.stamp(card_idx, userNm="Kim Minji", userPhnno="010-1234-5678")
    for _ in range(7):
        assert await api.add(stamp_idx) == 0
    response = await client.get(await page_of(api, stamp_idx))
    assert response.status_code == 200
    html = response.text
    assert "Bean There" in html and "Ten coffees, one free" in html
    assert '<strong class="count-now">7</strong><span class="count-of"> / 10</span>' in html
    assert html.count('src="https://cdn.example.com/mark.png"') == 7
    assert html.count('<li class="slot">') == 3
    assert (api.today - timedelta(days=1)).isoformat() in html
    assert (api.today + timedelta(days=365)).isoformat() in html
    assert shown_state(response) == "active"
    assert 'href="https://shop.example.com/menu" rel="noopener noreferrer"' in html
    assert "<svg" in html and "qr-svg" in html
    assert "Kim Minji" not in html and "010-1234-5678" not in html
    assert 'name="pin2"' in html  # first visit: choose a PIN
    assert "/staff" not in html  # the card is not on-site enabled


async def test_built_in_mark_is_served_when_the_card_has_none(
    api: Api, client: httpx.AsyncClient
) -> None:
    stamp_idx = await api.stamp()
    assert await api.add(stamp_idx) == 0
    view = (await api.validate(stamp_idx)).json()["result"]
    assert view["stampImgUrl"] == "https://stamps.example.test/static/stamp/default.svg"
    page = await client.get(page_path(view["stampUrl"]))
    assert 'src="/static/stamp/default.svg"' in page.text
    mark = await client.get("/static/stamp/default.svg")
    assert mark.status_code == 200
    assert mark.headers["content-type"].startswith("image/svg+xml")
    css = await client.get("/static/page.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_every_state_is_named(api: Api, client: httpx.AsyncClient) -> None:
    today = api.today
    card_idx = await api.card(maxStamps=2)
    inactive = await api.stamp(card_idx, activeYn="N")
    later = await api.stamp(
        card_idx,
        strtYmd=(today + timedelta(days=3)).isoformat(),
        endYmd=(today + timedelta(days=30)).isoformat(),
    )
    expired = await api.stamp(
        card_idx,
        strtYmd=(today - timedelta(days=30)).isoformat(),
        endYmd=(today - timedelta(days=1)).isoformat(),
    )
    complete = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": complete, "stamps": 2})
    used = await api.stamp(card_idx)
    await api.ok("PUT", "update", json={"stampIdx": used, "stamps": 2})
    await api.ok("PUT", "redeem", json={"stampIdx": used})
    active = await api.stamp(card_idx)
    expected = {
        inactive: ("inactive", "Inactive"),
        later: ("not_started", "Not started yet"),
        expired: ("expired", "Expired"),
        complete: ("complete", "Complete"),
        used: ("used", "Reward used"),
        active: ("active", "Active"),
    }
    for stamp_idx, (state, label) in expected.items():
        response = await client.get(await page_of(api, stamp_idx))
        assert response.status_code == 200
        assert shown_state(response) == state
        assert label in response.text


def test_only_absolute_web_urls_are_linked() -> None:
    assert web_url("https://shop.example.com/") == "https://shop.example.com/"
    assert web_url("http://shop.example.com") == "http://shop.example.com"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example", "/s/x", "", None):
        assert web_url(bad) is None


def test_every_phrase_exists_in_both_languages() -> None:
    assert set(TEXT["en"]) == set(TEXT["ko"])
    for key, phrase in TEXT["en"].items():
        assert set(re.findall(r"{(\w+)}", phrase)) == set(re.findall(r"{(\w+)}", TEXT["ko"][key]))


# --- headers ------------------------------------------------------------------------------


async def test_pages_send_security_headers_and_safe_cookies(
    api: Api, client: httpx.AsyncClient
) -> None:
    card_idx = await api.card(stampImgUrl="http://img.example.com:8080/m.png")
    path = await page_of(api, await api.stamp(card_idx))
    response = await client.get(path)
    headers = response.headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"] == CSP.replace(
        "https:;", "https: http://img.example.com:8080;"
    )
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert "noindex" in headers["x-robots-tag"]
    cookie = headers["set-cookie"]
    assert cookie.startswith("sb_csrf=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/s/" in cookie
    assert "<script" not in response.text
    assert "http://" not in re.sub(r'src="http://img\.example\.com:8080/m\.png"', "", response.text)
    for suffix in ("/staff", "/qr.svg", "/qr.png"):
        other = await client.get(path + suffix)
        assert other.headers["cache-control"] == "no-store"
        assert other.headers["referrer-policy"] == "no-referrer"
        assert other.headers["content-security-policy"].startswith("default-src 'none'")


async def test_https_pages_set_secure_cookies(api: Api, app: Any) -> None:
    path = await page_of(api, await api.stamp())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as https:
        response = await https.get(path)
        assert "Secure" in response.headers["set-cookie"]


async def test_cookies_are_secure_when_the_public_url_is_https_though_the_request_is_http(
    api: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    # A TLS proxy on another host speaks plain http to the server (and is not
    # trusted to say X-Forwarded-Proto): the public URL alone decides.
    assert settings.public_url.startswith("https://")
    path = await page_of(api, await api.stamp())
    response = await client.get(path)
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("; secure" in cookie.lower() for cookie in cookies)


# --- QR codes and languages -------------------------------------------------------------------


async def test_qr_codes_encode_the_page_url(api: Api, client: httpx.AsyncClient) -> None:
    url = await stamp_url(api, await api.stamp())
    path = page_path(url)
    svg = await client.get(path + "/qr.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content
    png = await client.get(path + "/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    expected = segno.make(url, error="m", micro=False)
    page = await client.get(path)
    path_data = re.search(r'<path class="qrline" stroke="#1c1917" d="([^"]+)"', page.text)
    assert path_data, page.text
    assert path_data.group(1) in expected.svg_inline(dark="#1c1917")


async def test_language_from_accept_language_with_a_switch(
    api: Api, visitor: VisitorFactory
) -> None:
    path = await page_of(api, await api.stamp())
    async with visitor(path) as phone:
        korean = await phone.get(headers={"Accept-Language": "ko-KR,ko;q=0.9,en;q=0.5"})
        assert '<html lang="ko">' in korean.text
        assert "적립 중" in korean.text and 'href="?lang=en"' in korean.text
        english = await phone.get("?lang=en", headers={"Accept-Language": "ko"})
        assert '<html lang="en">' in english.text and "Active" in english.text
        assert "sb_lang=en" in english.headers["set-cookie"]
        remembered = await phone.get(headers={"Accept-Language": "ko"})
        assert '<html lang="en">' in remembered.text
        staff_ko = await phone.get("/staff?lang=ko")
        assert "현장 적립을 사용하지 않습니다" in staff_ko.text
    async with visitor("/s/" + "x" * 32) as stranger:
        missing = await stranger.get(headers={"Accept-Language": "ko"})
        assert missing.status_code == 404 and "페이지를 찾을 수 없습니다" in missing.text
