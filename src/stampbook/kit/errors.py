"""The one table of Stampbook's response codes, and the one error type.

Numbers are stable forever: new codes are appended, never renumbered.
``docs/errors.md`` mirrors this table; a test checks that they agree.
Messages may name a parameter with ``{param}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Code(IntEnum):
    """Every code a Stampbook response can carry."""

    OK = 0
    INVALID_PARAMETER = 1001
    MALFORMED_BODY = 1002
    NO_SUCH_ENDPOINT = 1003
    METHOD_NOT_ALLOWED = 1004
    BODY_TOO_LARGE = 1005
    UNAUTHORIZED = 1101
    FORBIDDEN = 1102
    RATE_LIMITED = 1201
    IDEMPOTENCY_KEY_REUSED = 1301
    IDEMPOTENCY_IN_FLIGHT = 1302
    IDEMPOTENCY_KEY_INVALID = 1303
    INTERNAL_ERROR = 1901
    SERVICE_UNAVAILABLE = 1902
    DATABASE_NOT_MIGRATED = 1903
    STAMP_NOT_FOUND = 2001
    STAMP_INACTIVE = 2002
    STAMP_NOT_STARTED = 2003
    STAMP_EXPIRED = 2004
    STAMP_REDEEMED = 2005
    STAMP_FULL = 2006
    STAMP_EMPTY = 2007
    STAMP_NOT_COMPLETE = 2008
    ONSITE_PASSWORD_WRONG = 2009
    ONSITE_LOCKED = 2010
    TOO_SOON = 2011
    INVALID_PERIOD = 2012
    DAILY_LIMIT = 2015
    CARD_NOT_FOUND = 2101
    CARD_IN_USE = 2102
    MAX_STAMPS_BELOW_COUNT = 2103
    ONSITE_NOT_ENABLED = 2104
    CARD_INACTIVE = 2105
    WEBHOOK_NOT_FOUND = 2201
    WEBHOOK_URL_REFUSED = 2202
    WEBHOOK_MESSAGE_NOT_FOUND = 2203
    WEBHOOK_HOST_UNRESOLVED = 2204
    PASSWORD_TOO_SHORT = 2301
    USER_EMAIL_TAKEN = 2302
    USER_NOT_FOUND = 2303
    USER_EMAIL_INVALID = 2304
    USER_ROLE_INVALID = 2305
    SIGN_IN_FAILED = 2306
    SIGN_IN_LOCKED = 2307
    LAST_OWNER = 2308
    CODE_UNKNOWN = 2401
    CODE_USED = 2402
    CODE_EXPIRED = 2403
    CODE_REVOKED = 2404
    CODE_WRONG_CARD = 2405
    CODE_NOT_FOUND = 2406


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """How a code is answered: its HTTP status and its message per language."""

    http_status: int
    en: str
    ko: str


CODES: dict[Code, CodeInfo] = {
    Code.OK: CodeInfo(200, "", ""),
    Code.INVALID_PARAMETER: CodeInfo(
        400,
        "Invalid parameter: {param}.",
        "잘못된 파라미터입니다: {param}.",
    ),
    Code.MALFORMED_BODY: CodeInfo(
        400,
        "The request body must be a JSON object.",
        "요청 본문은 JSON 객체여야 합니다.",
    ),
    Code.NO_SUCH_ENDPOINT: CodeInfo(404, "No such endpoint.", "존재하지 않는 API 경로입니다."),
    Code.METHOD_NOT_ALLOWED: CodeInfo(
        405, "Method not allowed for this path.", "이 경로에서 허용되지 않는 메서드입니다."
    ),
    Code.BODY_TOO_LARGE: CodeInfo(
        413,
        "The request body is too large for this endpoint.",
        "요청 본문이 이 API에 허용된 크기보다 큽니다.",
    ),
    Code.UNAUTHORIZED: CodeInfo(
        401,
        "The API key is missing, malformed, unknown or revoked.",
        "API 키가 없거나 형식이 잘못되었거나, 알 수 없거나 폐기된 키입니다.",
    ),
    Code.FORBIDDEN: CodeInfo(
        403, "This API key may not do this.", "이 API 키로는 수행할 수 없는 작업입니다."
    ),
    Code.RATE_LIMITED: CodeInfo(
        429,
        "Too many requests; retry after the time in Retry-After.",
        "요청이 너무 많습니다. Retry-After 시간 이후에 다시 시도하세요.",
    ),
    Code.IDEMPOTENCY_KEY_REUSED: CodeInfo(
        422,
        "This Idempotency-Key was already used with a different request.",
        "이 Idempotency-Key는 다른 요청에 이미 사용되었습니다.",
    ),
    Code.IDEMPOTENCY_IN_FLIGHT: CodeInfo(
        409,
        "The first request with this Idempotency-Key is still running.",
        "이 Idempotency-Key의 첫 요청이 아직 처리 중입니다.",
    ),
    Code.IDEMPOTENCY_KEY_INVALID: CodeInfo(
        400,
        "The Idempotency-Key header must be 1 to 255 printable characters.",
        "Idempotency-Key 헤더는 출력 가능한 문자 1~255자여야 합니다.",
    ),
    Code.INTERNAL_ERROR: CodeInfo(
        500,
        "An internal error occurred; nothing was changed.",
        "내부 오류가 발생했습니다. 변경된 내용은 없습니다.",
    ),
    Code.SERVICE_UNAVAILABLE: CodeInfo(
        503,
        "The database is unavailable; retry later.",
        "데이터베이스를 사용할 수 없습니다. 잠시 후 다시 시도하세요.",
    ),
    Code.DATABASE_NOT_MIGRATED: CodeInfo(
        503,
        "The database is not migrated; the operator must run 'stampbook db upgrade'.",
        "데이터베이스가 마이그레이션되지 않았습니다. "
        "운영자가 'stampbook db upgrade'를 실행해야 합니다.",
    ),
    Code.STAMP_NOT_FOUND: CodeInfo(200, "Stamp not found.", "스탬프를 찾을 수 없습니다."),
    Code.STAMP_INACTIVE: CodeInfo(200, "The stamp is inactive.", "비활성화된 스탬프입니다."),
    Code.STAMP_NOT_STARTED: CodeInfo(
        200,
        "The stamp's validity period has not started.",
        "스탬프 유효 기간이 아직 시작되지 않았습니다.",
    ),
    Code.STAMP_EXPIRED: CodeInfo(
        200, "The stamp has expired.", "스탬프 유효 기간이 만료되었습니다."
    ),
    Code.STAMP_REDEEMED: CodeInfo(
        200, "The reward has already been used.", "이미 보상을 사용한 스탬프입니다."
    ),
    Code.STAMP_FULL: CodeInfo(
        200,
        "The stamp card already has its maximum number of stamps.",
        "스탬프가 이미 최대 개수에 도달했습니다.",
    ),
    Code.STAMP_EMPTY: CodeInfo(
        200, "The stamp has no stamps to remove.", "차감할 스탬프가 없습니다."
    ),
    Code.STAMP_NOT_COMPLETE: CodeInfo(
        200,
        "The stamp card is not complete yet.",
        "스탬프가 아직 모두 모이지 않았습니다.",
    ),
    Code.ONSITE_PASSWORD_WRONG: CodeInfo(
        200,
        "The on-site password is missing or wrong.",
        "현장 적립 비밀번호가 없거나 올바르지 않습니다.",
    ),
    Code.ONSITE_LOCKED: CodeInfo(
        200,
        "Too many wrong on-site passwords; try again later.",
        "현장 적립 비밀번호를 너무 많이 틀렸습니다. 잠시 후 다시 시도하세요.",
    ),
    Code.TOO_SOON: CodeInfo(
        200,
        "The card's minimum interval between stamps has not passed.",
        "스탬프 적립 최소 간격이 아직 지나지 않았습니다.",
    ),
    Code.INVALID_PERIOD: CodeInfo(
        200,
        "endYmd must not be before strtYmd nor more than 5 years from today.",
        "종료일은 시작일보다 빠르거나 오늘부터 5년을 넘을 수 없습니다.",
    ),
    Code.DAILY_LIMIT: CodeInfo(
        200,
        "The card's limit of stamps per day has been reached for this stamp.",
        "이 스탬프는 카드의 하루 적립 한도에 도달했습니다.",
    ),
    Code.CARD_NOT_FOUND: CodeInfo(200, "Card not found.", "카드를 찾을 수 없습니다."),
    Code.CARD_IN_USE: CodeInfo(
        200,
        "The card still has stamps; delete them first.",
        "카드에 발급된 스탬프가 남아 있습니다. 먼저 스탬프를 삭제하세요.",
    ),
    Code.MAX_STAMPS_BELOW_COUNT: CodeInfo(
        200,
        "maxStamps cannot be below the count of a stamp issued on this card.",
        "maxStamps는 이 카드에 발급된 스탬프의 현재 개수보다 작을 수 없습니다.",
    ),
    Code.ONSITE_NOT_ENABLED: CodeInfo(
        200,
        "On-site stamping is not enabled for this card.",
        "이 카드는 현장 적립을 사용하지 않습니다.",
    ),
    Code.CARD_INACTIVE: CodeInfo(
        200,
        "The card is deactivated: it issues no new stamps.",
        "비활성화된 카드입니다. 새 스탬프를 발급하지 않습니다.",
    ),
    Code.WEBHOOK_NOT_FOUND: CodeInfo(
        200, "Webhook endpoint not found.", "웹훅 엔드포인트를 찾을 수 없습니다."
    ),
    Code.WEBHOOK_URL_REFUSED: CodeInfo(
        200,
        "The webhook URL is refused: it must be http(s) and not a private address.",
        "웹훅 URL이 거부되었습니다. http(s)이며 사설 주소가 아니어야 합니다.",
    ),
    Code.WEBHOOK_MESSAGE_NOT_FOUND: CodeInfo(
        200, "Webhook message not found.", "웹훅 메시지를 찾을 수 없습니다."
    ),
    Code.WEBHOOK_HOST_UNRESOLVED: CodeInfo(
        200,
        "The webhook URL's host name does not resolve to an address.",
        "웹훅 URL의 호스트 이름을 주소로 확인할 수 없습니다.",
    ),
    Code.PASSWORD_TOO_SHORT: CodeInfo(
        200,
        "The password must be at least 10 characters long.",
        "비밀번호는 10자 이상이어야 합니다.",
    ),
    Code.USER_EMAIL_TAKEN: CodeInfo(
        200,
        "A dashboard user with this email already exists.",
        "이 이메일을 쓰는 대시보드 사용자가 이미 있습니다.",
    ),
    Code.USER_NOT_FOUND: CodeInfo(
        200, "No such dashboard user.", "해당 대시보드 사용자가 없습니다."
    ),
    Code.USER_EMAIL_INVALID: CodeInfo(
        200, "The email address is not valid.", "이메일 주소가 올바르지 않습니다."
    ),
    Code.USER_ROLE_INVALID: CodeInfo(
        200, "The role must be owner or staff.", "역할은 owner 또는 staff여야 합니다."
    ),
    Code.SIGN_IN_FAILED: CodeInfo(
        200, "The email or password is wrong.", "이메일 또는 비밀번호가 올바르지 않습니다."
    ),
    Code.SIGN_IN_LOCKED: CodeInfo(
        200,
        "Too many failed sign-ins. Try again later.",
        "로그인 실패가 너무 많습니다. 나중에 다시 시도하세요.",
    ),
    Code.LAST_OWNER: CodeInfo(
        200,
        "The account's last owner cannot be disabled or made staff.",
        "계정의 마지막 소유자는 비활성화하거나 직원으로 바꿀 수 없습니다.",
    ),
    Code.CODE_UNKNOWN: CodeInfo(
        200, "This stamp code is unknown.", "알 수 없는 스탬프 코드입니다."
    ),
    Code.CODE_USED: CodeInfo(
        200, "This stamp code was already used.", "이미 사용된 스탬프 코드입니다."
    ),
    Code.CODE_EXPIRED: CodeInfo(
        200, "This stamp code has expired.", "유효 시간이 지난 스탬프 코드입니다."
    ),
    Code.CODE_REVOKED: CodeInfo(200, "This stamp code was revoked.", "취소된 스탬프 코드입니다."),
    Code.CODE_WRONG_CARD: CodeInfo(
        200,
        "This stamp code is for another card.",
        "이 스탬프 코드는 다른 카드용입니다.",
    ),
    Code.CODE_NOT_FOUND: CodeInfo(200, "Stamp code not found.", "스탬프 코드를 찾을 수 없습니다."),
}


# What a parameter refused with 1001 should have been, by kind: the message
# then says it ("stampIdx must be a positive integer") instead of the bare
# "Invalid parameter: stampIdx." ``kit/expectations.py`` chooses the kind and
# its values from the field's OpenAPI schema, the one statement of the
# constraint. Placeholders other than {param} are the schema's values.
EXPECTATIONS: dict[str, tuple[str, str]] = {
    "unknown": (
        "Unknown parameter: {param}. Remove it; see the API reference for the fields.",
        "알 수 없는 파라미터입니다: {param}. 이 필드를 빼고 보내세요.",
    ),
    "positive_integer": (
        "Invalid parameter: {param} must be a positive integer.",
        "잘못된 파라미터입니다: {param} 값은 양의 정수여야 합니다.",
    ),
    "integer_range": (
        "Invalid parameter: {param} must be an integer from {minimum} to {maximum}.",
        "잘못된 파라미터입니다: {param} 값은 {minimum}부터 {maximum}까지의 정수여야 합니다.",
    ),
    "date": (
        "Invalid parameter: {param} must be a date as YYYY-MM-DD.",
        "잘못된 파라미터입니다: {param} 값은 YYYY-MM-DD 형식의 날짜여야 합니다.",
    ),
    "choice": (
        "Invalid parameter: {param} must be one of {choices}.",
        "잘못된 파라미터입니다: {param} 값은 {choices} 중 하나여야 합니다.",
    ),
    "choices": (
        "Invalid parameter: {param} must be a list of {min_items} to {max_items} of {choices}.",
        "잘못된 파라미터입니다: {param} 값은 {choices} 중 {min_items}~{max_items}개의 목록이어야 "
        "합니다.",
    ),
    "text": (
        "Invalid parameter: {param} must be text of {min_length} to {max_length} characters.",
        "잘못된 파라미터입니다: {param} 값은 {min_length}~{max_length}자의 문자열이어야 합니다.",
    ),
    "url": (
        "Invalid parameter: {param} must be an http:// or https:// URL of at most "
        "{max_length} characters.",
        "잘못된 파라미터입니다: {param} 값은 {max_length}자 이하의 http:// 또는 https:// "
        "URL이어야 합니다.",
    ),
    "storable": (
        "Invalid parameter: {param} must not contain NUL characters or lone surrogates.",
        "잘못된 파라미터입니다: {param} 값에 NUL 문자나 짝 없는 서로게이트가 있으면 안 됩니다.",
    ),
}


class StampbookError(Exception):
    """The one error type: raised anywhere, answered as the envelope by one handler.

    ``expected`` (1001 only) names an entry of ``EXPECTATIONS`` and its values,
    so the message says what the parameter should have been.
    """

    def __init__(
        self,
        code: Code,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        expected: tuple[str, dict[str, object]] | None = None,
    ) -> None:
        super().__init__(f"{code.name}" + (f" ({param})" if param else ""))
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.expected = expected

    @property
    def http_status(self) -> int:
        """The HTTP status this code is answered with."""
        return CODES[self.code].http_status

    def message(self, lang: str) -> str:
        """The human message in ``lang`` (``en`` or ``ko``)."""
        return message_for(self.code, lang, param=self.param, expected=self.expected)


def message_for(
    code: Code,
    lang: str,
    *,
    param: str | None = None,
    expected: tuple[str, dict[str, object]] | None = None,
) -> str:
    """The message of ``code`` in ``lang``, with ``{param}`` filled in; for a
    1001 with ``expected``, the sentence that says what was expected."""
    if expected is not None and code is Code.INVALID_PARAMETER:
        kind, values = expected
        en, ko = EXPECTATIONS[kind]
        return (ko if lang == "ko" else en).format(param=param or "?", **values)
    info = CODES[code]
    template = info.ko if lang == "ko" else info.en
    return template.format(param=param or "?") if "{param}" in template else template


def markdown_table() -> str:
    """The code table as docs/errors.md shows it (``python -m stampbook.kit.errors``)."""
    lines = [
        "| code | HTTP | name | message (en) | message (ko) |",
        "|---:|---:|---|---|---|",
    ]
    for code, info in CODES.items():
        lines.append(f"| {int(code)} | {info.http_status} | {code.name} | {info.en} | {info.ko} |")
    lines += [
        "",
        "What a 1001 message says when the parameter's expected form is known:",
        "",
        "| kind | message (en) | message (ko) |",
        "|---|---|---|",
    ]
    for kind, (en, ko) in EXPECTATIONS.items():
        lines.append(f"| {kind} | {en} | {ko} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
