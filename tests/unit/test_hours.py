"""Opening hours: spans within a day and past midnight, days closed, holidays, time zones, and config errors."""

from datetime import UTC, date, datetime

import pytest

from bingobox.config import HoursConfig


def at(hours, text: str) -> bool:
    return hours.is_open(datetime.fromisoformat(text))


def test_no_hours_given_means_open_all_day():
    h = HoursConfig().build()
    assert at(h, "2026-11-26T03:00:00+00:00") and at(h, "2026-11-26T23:59:00+00:00")


def test_a_daily_span_in_the_store_time_zone():
    h = HoursConfig(timezone="Asia/Shanghai", daily="07:00-23:00").build()
    assert not at(h, "2026-11-26T06:59:00+08:00")
    assert at(h, "2026-11-26T07:00:00+08:00") and at(h, "2026-11-26T22:59:59+08:00")
    assert not at(h, "2026-11-26T23:00:00+08:00")
    assert at(h, "2026-11-26T01:30:00+00:00")  # 09:30 in Shanghai
    assert not at(h, "2026-11-26T15:30:00+00:00")  # 23:30 in Shanghai


def test_past_midnight_belongs_to_the_day_it_starts_and_holidays_close_the_day():
    # Thursday 2026-11-26 and Friday late, closed on Sunday, Christmas closed
    h = HoursConfig(daily="08:00-20:00", fri="18:00-02:00", sun="closed", closed_dates=[date(2026, 12, 25)]).build()
    assert at(h, "2026-11-26T12:00:00+00:00")  # Thursday
    assert not at(h, "2026-11-27T12:00:00+00:00")  # Friday noon: Friday's span starts at 18:00
    assert at(h, "2026-11-27T23:00:00+00:00") and at(h, "2026-11-28T01:59:00+00:00")  # Friday night into Saturday
    assert not at(h, "2026-11-28T02:00:00+00:00") and at(h, "2026-11-28T08:00:00+00:00")
    assert not at(h, "2026-11-29T12:00:00+00:00")  # Sunday closed
    assert not at(h, "2026-12-25T12:00:00+00:00")  # a Friday, but a holiday
    assert HoursConfig(daily="00:00-24:00").build().is_open(datetime(2026, 1, 1, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize("bad", [{"daily": "7-23"}, {"daily": "07:00-25:00"}, {"mon": "09:00-09:00"},
                                 {"timezone": "Mars/Olympus"}, {"daily": "24:30-01:00"}])
def test_bad_hours_are_refused_with_the_reason(bad):
    with pytest.raises(ValueError) as e:
        HoursConfig(**bad)
    assert next(iter(bad)) in str(e.value)
