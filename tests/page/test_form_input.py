"""Whatever a form field holds, the stamp page answers with a page: a number
field that is not plain ASCII digits is a 400 page naming it, and no field or
value ever makes a 500."""

from __future__ import annotations

from urllib.parse import quote_plus

import httpx
import pytest

from tests.conftest import Api
from tests.page.conftest import CSRF_FIELD, VisitorFactory, page_path, stamp_url

# Values that have broken parsers: digits int() reads but isdigit() mis-judges
# (or the reverse), numbers too long or too large, separators, signs, bytes
# that are not UTF-8 at all, a NUL, lone surrogates, markup.
HOSTILE = {
    "superscript two": "²".encode(),
    "arabic-indic digits": "١٢".encode(),
    "5000 digits": b"9" * 5000,
    "2^63": str(2**63).encode(),
    "underscore": b"1_0",
    "plus": b"+1",
    "spaces": b" 1 ",
    "decimal point": b"1.0",
    "minus zero": b"-0",
    "hexadecimal": b"0x1",
    "nul": b"\x00",
    "lone surrogate": "\ud800".encode("utf-8", "surrogatepass"),
    "not utf-8": b"\xff\xfe",
    "right-to-left override": "\u202e1".encode(),
    "markup": b"<script>alert(1)</script>",
}
FIELDS = {
    "/staff": ("csrf", "action", "expect", "password"),
    "/pin": ("csrf", "pin", "pin2"),
    "/hide": ("csrf",),
}


async def _form(http: httpx.AsyncClient, path: str, suffix: str) -> dict[str, bytes]:
    """The fields a browser would send to ``suffix``, as the page shows them."""
    page = await http.get(path + ("/staff" if suffix == "/staff" else ""))
    token = CSRF_FIELD.search(page.text)
    assert token, page.text
    fields = {"csrf": token.group(1).encode()}
    if suffix == "/staff":
        fields.update(action=b"add", expect=b"0", password=b"0000")
    if suffix == "/pin":
        fields.update(pin=b"1234", pin2=b"1234")
    return fields


def _encoded(fields: dict[str, bytes]) -> bytes:
    return "&".join(f"{name}={quote_plus(value)}" for name, value in fields.items()).encode()


def _assert_a_page(response: httpx.Response, where: str) -> None:
    assert response.status_code < 500, where
    assert response.headers["content-type"].startswith("text/html"), where
    assert "Traceback" not in response.text and '"code"' not in response.text, where


@pytest.mark.parametrize("value", list(HOSTILE), ids=list(HOSTILE))
async def test_no_form_field_value_makes_a_500(
    api: Api, visitor: VisitorFactory, value: str
) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = page_path(await stamp_url(api, stamp_idx))
    async with visitor(path) as phone:
        for suffix, names in FIELDS.items():
            for name in names:
                fields = await _form(phone.http, path, suffix)
                fields[name] = HOSTILE[value]
                response = await phone.http.post(
                    path + suffix,
                    content=_encoded(fields),
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
                _assert_a_page(response, f"{suffix} {name}")
                if name == "expect":
                    assert response.status_code == 400, response.text
                    assert "expect" in response.text
    assert await api.count(stamp_idx) == 0


async def test_a_file_in_any_form_field_makes_no_500(api: Api, visitor: VisitorFactory) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    path = page_path(await stamp_url(api, await api.stamp(card_idx)))
    async with visitor(path) as phone:
        for suffix, names in FIELDS.items():
            for name in names:
                fields = await _form(phone.http, path, suffix)
                del fields[name]
                response = await phone.http.post(
                    path + suffix,
                    data={key: value.decode() for key, value in fields.items()},
                    files={name: ("x.txt", b"12", "text/plain")},
                )
                _assert_a_page(response, f"{suffix} {name}")


async def test_the_count_the_staff_saw_is_read_as_plain_digits(
    api: Api, visitor: VisitorFactory
) -> None:
    card_idx = await api.card(onsiteYn="Y", onsitePwd="4321")
    stamp_idx = await api.stamp(card_idx)
    path = page_path(await stamp_url(api, stamp_idx))
    async with visitor(path) as counter:
        fields = await _form(counter.http, path, "/staff")
        fields.update(password=b"4321", expect=b"0")
        sent = await counter.http.post(
            path + "/staff",
            content=_encoded(fields),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert sent.status_code == 303
    assert await api.count(stamp_idx) == 1
