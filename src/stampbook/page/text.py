"""The stamp page's words in English and Korean.

The API's refusals (2009 wrong password, 2006 card full, …) keep their
messages in ``kit/errors.py``; this catalogue holds only what the page itself
says. Every key must exist in both languages (a test checks it).
"""

from __future__ import annotations

from typing import Any

from stampbook.kit.i18n import DEFAULT, SUPPORTED

LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "page_title": "{card} · stamp card",
        "staff_title": "Staff · {card}",
        "skip": "Skip to the card",
        "language": "Language",
        "stamps_count": "{stamps} / {max}",
        "stamps_label": "stamps",
        "count_sr": "{stamps} of {max} stamps collected",
        "to_go": "{n} more to your reward",
        "to_go_one": "One more to your reward",
        "valid": "Valid",
        "valid_from": "From",
        "valid_until": "Until",
        "visit": "Visit the shop",
        "wallet_title": "Keep this card in your phone's wallet",
        "wallet_apple": "Add to Apple Wallet",
        "wallet_google": "Save to Google Wallet",
        "state_active": "Active",
        "state_complete": "Complete",
        "reward_ready": "Your reward is ready: show this page to staff.",
        "reward_used": "Thank you! The reward on this card was used.",
        "state_used": "Reward used",
        "state_expired": "Expired",
        "state_not_started": "Not started yet",
        "state_inactive": "Inactive",
        "qr_title": "Show this code to staff",
        "qr_caption": "Staff can scan it to open this card.",
        "qr_alt": "QR code of this stamp card's page",
        "qr_png": "Download the code (PNG)",
        "me_title": "Your details",
        "pin_choose_title": "Protect your card with a PIN",
        "pin_choose_help": "Choose 4 to 6 digits. You will need them to see your details here.",
        "pin_label": "PIN (4–6 digits)",
        "pin_again": "PIN again",
        "pin_save": "Save PIN",
        "pin_enter_title": "Enter your PIN",
        "pin_enter_help": "Your details are hidden until you enter the PIN you chose.",
        "pin_unlock": "Show my details",
        "pin_hide": "Hide my details",
        "pin_saved": "Your PIN is saved.",
        "pin_format": "The PIN must be 4 to 6 digits.",
        "pin_mismatch": "The two PINs are not the same.",
        "pin_taken": "A PIN was just set for this card. Enter it to see your details.",
        "pin_wrong_left": "The PIN is wrong. {n} tries left.",
        "pin_locked": "Too many wrong PINs. Try again in {minutes} min.",
        "pin_forgot": "Forgot it? The shop can reset your PIN.",
        "field_user_nm": "Name",
        "field_user_phnno": "Phone",
        "field_user_eml": "Email",
        "field_user_id": "Member ID",
        "field_user_etc1": "Note",
        "field_user_etc2": "Note",
        "no_details": "The shop has no details on file.",
        "staff_button": "Staff",
        "staff_help": "For shop staff: enter the on-site password.",
        "staff_password": "On-site password",
        "staff_add": "Add one stamp",
        "staff_redeem": "Hand over the reward",
        "staff_redeem_help": "The card is complete. Redeeming marks the reward as used.",
        "staff_nothing": "Nothing to do on this card: {state}.",
        "staff_locked": "On-site actions are locked. Try again in {minutes} min.",
        "staff_back": "Back to the card",
        "staff_stale": "The card changed meanwhile; nothing was done. Check it and try again.",
        "done_added": "Stamp added.",
        "done_redeemed": "Reward handed over.",
        "form_expired": "The form expired. Please try again.",
        "not_found_title": "Page not found",
        "not_found_text": "There is no stamp card at this address. Check the link you were given.",
        "error_title": "Something went wrong",
        "error_text": "The page could not be shown. Please try again in a moment.",
        "powered": "Stamp card by Stampbook",
    },
    "ko": {
        "page_title": "{card} · 스탬프 카드",
        "staff_title": "직원 · {card}",
        "skip": "카드로 건너뛰기",
        "language": "언어",
        "stamps_count": "{stamps} / {max}",
        "stamps_label": "스탬프",
        "count_sr": "스탬프 {max}개 중 {stamps}개 적립",
        "to_go": "보상까지 {n}개 남았습니다",
        "to_go_one": "보상까지 1개 남았습니다",
        "valid": "유효 기간",
        "valid_from": "시작",
        "valid_until": "종료",
        "visit": "매장 페이지로 이동",
        "wallet_title": "이 카드를 휴대폰 지갑에 보관하기",
        "wallet_apple": "Apple 지갑에 추가",
        "wallet_google": "Google 월렛에 저장",
        "state_active": "적립 중",
        "state_complete": "완성",
        "reward_ready": "보상을 받을 수 있습니다. 이 화면을 직원에게 보여 주세요.",
        "reward_used": "감사합니다! 이 카드의 보상을 사용했습니다.",
        "state_used": "보상 사용 완료",
        "state_expired": "기간 만료",
        "state_not_started": "아직 시작 전",
        "state_inactive": "비활성",
        "qr_title": "직원에게 이 코드를 보여 주세요",
        "qr_caption": "직원이 스캔하면 이 카드가 열립니다.",
        "qr_alt": "이 스탬프 카드 페이지의 QR 코드",
        "qr_png": "코드 내려받기 (PNG)",
        "me_title": "내 정보",
        "pin_choose_title": "PIN으로 카드를 보호하세요",
        "pin_choose_help": "숫자 4~6자리를 정하세요. 이곳에서 내 정보를 볼 때 필요합니다.",
        "pin_label": "PIN (숫자 4~6자리)",
        "pin_again": "PIN 확인",
        "pin_save": "PIN 저장",
        "pin_enter_title": "PIN을 입력하세요",
        "pin_enter_help": "정한 PIN을 입력할 때까지 내 정보는 숨겨집니다.",
        "pin_unlock": "내 정보 보기",
        "pin_hide": "내 정보 숨기기",
        "pin_saved": "PIN이 저장되었습니다.",
        "pin_format": "PIN은 숫자 4~6자리여야 합니다.",
        "pin_mismatch": "두 PIN이 서로 다릅니다.",
        "pin_taken": "방금 이 카드에 PIN이 설정되었습니다. 내 정보를 보려면 PIN을 입력하세요.",
        "pin_wrong_left": "PIN이 올바르지 않습니다. {n}번 남았습니다.",
        "pin_locked": "PIN을 너무 많이 틀렸습니다. {minutes}분 후에 다시 시도하세요.",
        "pin_forgot": "PIN을 잊으셨나요? 매장에서 초기화할 수 있습니다.",
        "field_user_nm": "이름",
        "field_user_phnno": "전화번호",
        "field_user_eml": "이메일",
        "field_user_id": "회원 ID",
        "field_user_etc1": "메모",
        "field_user_etc2": "메모",
        "no_details": "매장에 등록된 정보가 없습니다.",
        "staff_button": "직원용",
        "staff_help": "매장 직원용: 현장 적립 비밀번호를 입력하세요.",
        "staff_password": "현장 적립 비밀번호",
        "staff_add": "스탬프 1개 적립",
        "staff_redeem": "보상 지급",
        "staff_redeem_help": "카드가 완성되었습니다. 지급하면 보상이 사용 처리됩니다.",
        "staff_nothing": "이 카드에서 할 수 있는 작업이 없습니다: {state}.",
        "staff_locked": "현장 적립이 잠겼습니다. {minutes}분 후에 다시 시도하세요.",
        "staff_back": "카드로 돌아가기",
        "staff_stale": "그 사이에 카드가 바뀌어 아무것도 하지 않았습니다. 확인 후 다시 시도하세요.",
        "done_added": "스탬프가 적립되었습니다.",
        "done_redeemed": "보상이 지급되었습니다.",
        "form_expired": "입력 양식이 만료되었습니다. 다시 시도하세요.",
        "not_found_title": "페이지를 찾을 수 없습니다",
        "not_found_text": "이 주소에는 스탬프 카드가 없습니다. 받은 링크를 확인하세요.",
        "error_title": "문제가 발생했습니다",
        "error_text": "페이지를 표시할 수 없습니다. 잠시 후 다시 시도하세요.",
        "powered": "Stampbook 스탬프 카드",
    },
}


def text(lang: str, key: str, **values: Any) -> str:
    """The phrase ``key`` in ``lang`` (English when unknown), with ``{values}`` filled in."""
    catalogue = TEXT.get(lang) or TEXT[DEFAULT]
    phrase = catalogue.get(key) or TEXT[DEFAULT][key]
    return phrase.format(**values) if values else phrase


def pick_language(query: str | None, cookie: str | None, negotiated: str) -> str:
    """The page's language: an explicit ``?lang=``, then the remembered choice, then
    what ``Accept-Language`` asks for."""
    for choice in (query, cookie):
        if choice is not None and choice in SUPPORTED:
            return choice
    return negotiated
