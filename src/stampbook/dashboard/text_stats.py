"""The Overview and Export pages' words in English and Korean (``text.py``
adds them to the dashboard's catalogue; a test checks both have every key)."""

EN: dict[str, str] = {
    "ov_from": "From",
    "ov_to": "To",
    "ov_show": "Show",
    "ov_range_hint": "Whole days in the shop's time zone, both included (at most 366).",
    "ov_totals": "{first} to {last}",
    "ov_stamps_added": "Stamps added",
    "ov_stamps_removed": "Stamps taken back",
    "ov_cards_issued": "New cards",
    "ov_active_customers": "Active customers",
    "ov_cards_completed": "Cards completed",
    "ov_rewards_redeemed": "Rewards redeemed",
    "ov_completion_rate": "Completion rate",
    "ov_redemption_rate": "Redemption rate",
    "ov_median_days": "Median days to complete",
    "ov_days": "{n} days",
    "ov_rates_hint": (
        "Completion rate: cards completed ÷ new cards. Redemption rate: rewards redeemed ÷ "
        "cards completed. Stamps taken back are worth a look when they rise: a mistake, or a "
        "stamp given that should not have been."
    ),
    "ov_chart_added": "Stamps added per day",
    "ov_chart_issued": "New cards per day",
    "ov_chart_removed": "Stamps taken back per day",
    "ov_per_day": "Per day",
    "ov_date": "Date",
    "ov_progress": "How far current cards are from their reward",
    "ov_progress_hint": (
        "Today's usable cards (active, within their dates, not redeemed) by the stamps they hold."
    ),
    "ov_chart_progress": "Cards by stamps held",
    "ov_stamps_n": "{n} stamps",
    "ov_stamps_one": "1 stamp",
    "ov_stamps_held": "Stamps held",
    "ov_cards": "Cards",
    "ov_no_progress": "No card can be stamped today.",
    "ex_intro": (
        "Download a spreadsheet (CSV, UTF-8: Excel opens Korean correctly) for a range of days "
        "in the shop's time zone."
    ),
    "ex_stamps": "Customers' cards",
    "ex_stamps_hint": "Every card issued in the range, with its customer's details.",
    "ex_events": "History (ledger)",
    "ex_events_hint": "Every change in the range: issued, added, taken back, edited, redeemed.",
    "ex_download": "Download CSV",
    "ex_safety": (
        "Cells that a spreadsheet would run as a formula (starting with = + - @) begin with an "
        "apostrophe."
    ),
}

KO: dict[str, str] = {
    "ov_from": "시작일",
    "ov_to": "종료일",
    "ov_show": "보기",
    "ov_range_hint": "매장 시간대 기준 날짜이며 시작일과 종료일을 포함합니다 (최대 366일).",
    "ov_totals": "{first} ~ {last}",
    "ov_stamps_added": "적립한 스탬프",
    "ov_stamps_removed": "취소한 스탬프",
    "ov_cards_issued": "새 카드",
    "ov_active_customers": "활동 고객",
    "ov_cards_completed": "완성된 카드",
    "ov_rewards_redeemed": "사용한 보상",
    "ov_completion_rate": "완성률",
    "ov_redemption_rate": "보상 사용률",
    "ov_median_days": "완성까지 걸린 일수(중앙값)",
    "ov_days": "{n}일",
    "ov_rates_hint": (
        "완성률: 완성된 카드 ÷ 새 카드. 보상 사용률: 사용한 보상 ÷ 완성된 카드. 취소한 스탬프가 "
        "늘면 살펴보세요. 실수이거나 주지 말아야 할 스탬프일 수 있습니다."
    ),
    "ov_chart_added": "날짜별 적립한 스탬프",
    "ov_chart_issued": "날짜별 새 카드",
    "ov_chart_removed": "날짜별 취소한 스탬프",
    "ov_per_day": "날짜별",
    "ov_date": "날짜",
    "ov_progress": "현재 카드의 보상까지 남은 정도",
    "ov_progress_hint": (
        "오늘 사용할 수 있는 카드(활성, 기간 내, 보상 미사용)를 스탬프 수별로 셉니다."
    ),
    "ov_chart_progress": "스탬프 수별 카드",
    "ov_stamps_n": "스탬프 {n}개",
    "ov_stamps_one": "스탬프 1개",
    "ov_stamps_held": "스탬프 수",
    "ov_cards": "카드 수",
    "ov_no_progress": "오늘 스탬프를 적립할 수 있는 카드가 없습니다.",
    "ex_intro": (
        "매장 시간대 기준 기간의 스프레드시트(CSV, UTF-8: 엑셀에서 한글이 올바르게 열립니다)를 "
        "내려받습니다."
    ),
    "ex_stamps": "고객 카드",
    "ex_stamps_hint": "기간 안에 발급한 모든 카드와 고객 정보.",
    "ex_events": "이력(원장)",
    "ex_events_hint": "기간 안의 모든 변경: 발급, 적립, 취소, 수정, 보상 사용.",
    "ex_download": "CSV 내려받기",
    "ex_safety": (
        "스프레드시트가 수식으로 실행할 수 있는 셀(= + - @ 로 시작)은 앞에 작은따옴표를 붙입니다."
    ),
}
