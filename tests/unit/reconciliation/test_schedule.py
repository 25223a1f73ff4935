"""The schedule: cut-offs in Kuala Lumpur time, due dates across midnight, weekends and
Malaysian public holidays, catch-up within the lookback, the retry schedule and give-up, and
each rail's dates in date order (a later one held while an earlier one has no run)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.reconciliation.schedule import (
    KL,
    Action,
    Attempts,
    BusinessCalendar,
    RailSchedule,
    RetryPlan,
    load_schedules,
    plan,
)


def kl(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """A Kuala Lumpur wall-clock moment, as the UTC instant the hub works with."""
    return datetime(y, mo, d, h, mi, tzinfo=KL).astimezone(UTC)


DAILY = RailSchedule("merchantrade", time(23, 30), "daily")
BUSINESS = RailSchedule("iso20022", time(18, 0), "business")


def test_the_cutoff_is_kuala_lumpur_time_whatever_the_servers_zone() -> None:
    assert DAILY.due_at(date(2026, 12, 1)) == datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert BUSINESS.due_at(date(2026, 12, 1)) == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_date_is_due_only_after_its_cutoff() -> None:
    assert DAILY.due_days(kl(2026, 12, 1, 23, 29), 0) == []
    assert DAILY.due_days(kl(2026, 12, 1, 23, 30), 0) == [date(2026, 12, 1)]


def test_across_midnight_yesterday_is_due_and_today_is_not() -> None:
    # 00:15 in KL is still 16:15 UTC of the day before: the UTC date would be the wrong one.
    now = kl(2026, 12, 2, 0, 15)
    assert now.date() == date(2026, 12, 1)
    assert DAILY.due_days(now, 1) == [date(2026, 12, 1)]
    assert DAILY.due_days(kl(2026, 12, 1, 23, 45), 1) == [date(2026, 11, 30), date(2026, 12, 1)]


def test_a_cutoff_just_after_midnight_closes_the_day_it_names() -> None:
    early = RailSchedule("r", time(0, 30), "daily")
    assert early.due_days(kl(2026, 12, 2, 0, 20), 0) == []
    assert early.due_days(kl(2026, 12, 2, 0, 40), 0) == [date(2026, 12, 2)]


def test_a_business_day_rail_has_no_statement_on_weekends() -> None:
    # Fri 4, Sat 5, Sun 6, Mon 7 December 2026, seen on Monday evening.
    due = BUSINESS.due_days(kl(2026, 12, 7, 19), 3)
    assert due == [date(2026, 12, 4), date(2026, 12, 7)]
    assert DAILY.due_days(kl(2026, 12, 7, 23, 45), 3) == [
        date(2026, 12, 4), date(2026, 12, 5), date(2026, 12, 6), date(2026, 12, 7)]


def test_a_states_weekend_is_its_own() -> None:
    kedah = RailSchedule("r", time(18), "business", BusinessCalendar("KDH"))  # Fri-Sat
    assert kedah.due_days(kl(2026, 12, 7, 19), 3) == [date(2026, 12, 6), date(2026, 12, 7)]


@pytest.mark.parametrize(("day", "holiday"), [
    (date(2026, 8, 31), "National Day (Monday)"),
    (date(2026, 9, 16), "Malaysia Day (Wednesday)"),
    (date(2026, 12, 25), "Christmas Day (Friday)"),
    (date(2026, 2, 2), "Federal Territory Day observed (Monday)"),
])
def test_a_public_holiday_has_no_business_statement(day: date, holiday: str) -> None:
    assert day.weekday() < 5
    assert day not in BUSINESS.due_days(kl(day.year, day.month, day.day, 19), 0), holiday
    assert BUSINESS.due_days(kl(day.year, day.month, day.day, 19) + timedelta(days=1), 1) \
        in ([day + timedelta(days=1)], []), holiday
    assert DAILY.due_days(kl(day.year, day.month, day.day, 23, 45), 0) == [day]


def test_a_state_holiday_is_the_subdivisions_own() -> None:
    # The Sultan of Selangor's birthday (Friday 11 December 2026) is Selangor's holiday only.
    selangor = RailSchedule("r", time(18), "business", BusinessCalendar("SGR"))
    assert selangor.due_days(kl(2026, 12, 11, 19), 0) == []
    assert BUSINESS.due_days(kl(2026, 12, 11, 19), 0) == [date(2026, 12, 11)]


def test_an_unknown_subdivision_is_refused_with_the_codes() -> None:
    with pytest.raises(ValueError, match="holiday_subdivision: 'XX' is not a Malaysian state"):
        BusinessCalendar("XX")


RETRY = RetryPlan(initial=timedelta(minutes=5), ceiling=timedelta(hours=1),
                  give_up_after=timedelta(hours=24))


def recorded_before(day: date, rail: str = "merchantrade") -> set[tuple[str, date]]:
    """Runs recorded for the 10 days before ``day`` (more than any lookback here)."""
    return {(rail, day - timedelta(days=n)) for n in range(1, 11)}


def test_missed_days_are_caught_up_oldest_first_within_the_lookback() -> None:
    # The scheduler was down from 25 November to 2 December: 7 days back and today are due,
    # 24 November is outside the lookback and left to ops.
    now = kl(2026, 12, 2, 23, 40)
    steps = plan(now, {"merchantrade": DAILY}, RETRY, 7, {}, set())
    assert [s.day for s in steps] == [date(2026, 11, 25) + timedelta(days=n) for n in range(8)]
    # One at a time, in date order: each is held until the one before it is recorded.
    assert [s.action for s in steps] == [Action.FINAL] + [Action.HELD] * 7
    done: set[tuple[str, date]] = set()
    ran = []
    for _ in range(8):
        step, *rest = plan(now, {"merchantrade": DAILY}, RETRY, 7, {}, done)
        assert {s.action for s in rest} <= {Action.HELD}
        ran.append((step.day, step.action))
        done.add(("merchantrade", step.day))
    # Past their give-up deadline (a day after the cut-off), the old days get their final run
    # at once; today's is an ordinary run.
    assert ran == [(date(2026, 11, 25) + timedelta(days=n), Action.FINAL) for n in range(7)] \
        + [(date(2026, 12, 2), Action.RUN)]
    assert plan(now, {"merchantrade": DAILY}, RETRY, 7, {}, done) == []


def test_dates_of_several_rails_interleave_by_date_and_done_ones_are_skipped() -> None:
    now = kl(2026, 12, 8, 23, 45)  # Tuesday
    schedules = {"merchantrade": DAILY, "iso20022": BUSINESS}
    done = {("merchantrade", date(2026, 12, 7))}
    steps = plan(now, schedules, RETRY, 1, {}, done)
    assert [(s.day, s.rail) for s in steps] == [
        (date(2026, 12, 7), "iso20022"), (date(2026, 12, 8), "iso20022"),
        (date(2026, 12, 8), "merchantrade")]


def test_the_retry_waits_double_up_to_the_ceiling() -> None:
    assert [RETRY.wait(n) for n in range(1, 8)] == [timedelta(minutes=m) for m in
                                                    (5, 10, 20, 40, 60, 60, 60)]


def test_a_late_statement_is_retried_on_the_schedule_then_given_up_at_the_deadline() -> None:
    day = date(2026, 12, 1)
    due = DAILY.due_at(day)
    attempts: dict[tuple[str, date], Attempts] = {}
    now = due
    seen: list[tuple[timedelta, Action]] = []
    for _ in range(100):  # bounded: the final run ends it
        (step,) = [s for s in plan(now, {"merchantrade": DAILY}, RETRY, 7, attempts,
                                   recorded_before(day)) if s.day == day]
        if step.action is Action.WAIT:
            assert step.at > now
            now = step.at
            continue
        seen.append((now - due, step.action))
        if step.action is Action.FINAL:
            break
        before = attempts.get(("merchantrade", day), Attempts())
        attempts[("merchantrade", day)] = Attempts(before.count + 1, now)
    offsets = [o for o, _ in seen]
    assert offsets[:6] == [timedelta(minutes=m) for m in (0, 5, 15, 35, 75, 135)]
    assert all(b - a == timedelta(hours=1) for a, b in zip(offsets[5:-2], offsets[6:-1],
                                                           strict=True))
    assert seen[-1] == (timedelta(hours=24), Action.FINAL)  # capped at the deadline
    assert {a for _, a in seen[:-1]} == {Action.RUN}


def test_a_failed_final_run_backs_off_instead_of_running_every_tick() -> None:
    day = date(2026, 12, 1)
    deadline = RETRY.deadline(DAILY.due_at(day))
    tried = {("merchantrade", day): Attempts(30, deadline)}

    def step_at(now: datetime) -> Action:
        (step,) = [s for s in plan(now, {"merchantrade": DAILY}, RETRY, 7, tried,
                                   recorded_before(day)) if s.day == day]
        return step.action

    assert step_at(deadline + timedelta(minutes=1)) is Action.WAIT
    assert step_at(deadline + timedelta(minutes=59)) is Action.WAIT
    assert step_at(deadline + timedelta(hours=1)) is Action.FINAL


def test_a_restarted_scheduler_tries_a_late_date_at_once() -> None:
    now = DAILY.due_at(date(2026, 12, 1)) + timedelta(hours=3)
    (step,) = plan(now, {"merchantrade": DAILY}, RETRY, 1, {}, set())
    assert (step.day, step.action) == (date(2026, 12, 1), Action.RUN)


D1, D2, D3 = date(2026, 12, 1), date(2026, 12, 2), date(2026, 12, 3)


def test_a_later_date_is_held_while_an_earlier_one_of_its_rail_has_no_run() -> None:
    # 1 December's statement is late (tried once, waiting); 2 December's cut-off has passed.
    now = DAILY.due_at(D2) + timedelta(minutes=1)
    late = {("merchantrade", D1): Attempts(3, now - timedelta(minutes=1))}
    d1, d2 = plan(now, {"merchantrade": DAILY}, RETRY, 7, late, recorded_before(D1))
    assert (d1.day, d1.action) == (D1, Action.WAIT)
    assert (d2.day, d2.action, d2.waits_for) == (D2, Action.HELD, D1)
    assert d2.at == DAILY.due_at(D2)  # when it was due: it has not been tried
    # Once 1 December is recorded, 2 December is due at once.
    (d2,) = plan(now, {"merchantrade": DAILY}, RETRY, 7, late,
                 recorded_before(D1) | {("merchantrade", D1)})
    assert (d2.day, d2.action, d2.waits_for) == (D2, Action.RUN, None)


def test_a_held_date_waits_for_the_nearest_earlier_date_without_a_run() -> None:
    now = DAILY.due_at(D3) + timedelta(minutes=1)
    steps = plan(now, {"merchantrade": DAILY}, RETRY, 7, {}, recorded_before(D1))
    assert [(s.day, s.action, s.waits_for) for s in steps] == [
        (D1, Action.FINAL, None), (D2, Action.HELD, D1), (D3, Action.HELD, D2)]
    # 2 December recorded out of order (by ops, or before this rule): 3 December still waits,
    # for 1 December now.
    steps = plan(now, {"merchantrade": DAILY}, RETRY, 7, {},
                 recorded_before(D1) | {("merchantrade", D2)})
    assert [(s.day, s.action, s.waits_for) for s in steps] == [
        (D1, Action.FINAL, None), (D3, Action.HELD, D1)]


def test_the_first_date_of_the_lookback_waits_for_nothing() -> None:
    # A rail with no run at all (its first day, or a scheduler down longer than the lookback):
    # the day before the lookback is never run by the scheduler, so it holds nothing.
    now = DAILY.due_at(D3) + timedelta(minutes=1)
    steps = plan(now, {"merchantrade": DAILY}, RETRY, 2, {}, set())
    assert [(s.day, s.action) for s in steps] == [
        (D1, Action.FINAL), (D2, Action.HELD), (D3, Action.HELD)]


def test_days_without_a_statement_hold_nothing() -> None:
    # Friday 4 December is late; Monday the 7th waits for it, not for the weekend.
    now = BUSINESS.due_at(date(2026, 12, 7)) + timedelta(minutes=1)
    friday = date(2026, 12, 4)
    steps = plan(now, {"iso20022": BUSINESS}, RETRY, 3, {}, set())
    assert [(s.day, s.action, s.waits_for) for s in steps] == [
        (friday, Action.FINAL, None), (date(2026, 12, 7), Action.HELD, friday)]


def test_a_rail_waits_for_its_own_dates_only() -> None:
    now = kl(2026, 12, 2, 23, 45)
    schedules = {"merchantrade": DAILY, "ewallet": RailSchedule("ewallet", time(23, 30))}
    late = {("merchantrade", D1): Attempts(1, now)}
    done = recorded_before(D1) | recorded_before(D1, "ewallet")
    steps = plan(now, schedules, RETRY, 7, late, done)
    assert [(s.day, s.rail, s.action) for s in steps] == [
        (D1, "ewallet", Action.FINAL), (D1, "merchantrade", Action.WAIT),
        (D2, "ewallet", Action.HELD), (D2, "merchantrade", Action.HELD)]
    steps = plan(now, schedules, RETRY, 7, late, done | {("ewallet", D1)})
    assert [(s.day, s.rail, s.action) for s in steps] == [
        (D1, "merchantrade", Action.WAIT), (D2, "ewallet", Action.RUN),
        (D2, "merchantrade", Action.HELD)]


def test_a_date_held_past_its_own_deadline_gets_its_final_run_once_released() -> None:
    # 1 December's final run kept failing (the database away) until after 2 December's own
    # deadline: 2 December was held all along, and once 1 December is recorded it is not
    # retried from its first wait but given its final run at once.
    now = RETRY.deadline(DAILY.due_at(D2)) + timedelta(minutes=1)
    tried = {("merchantrade", D1): Attempts(30, now - timedelta(minutes=2))}
    d1, d2, d3 = [s for s in plan(now, {"merchantrade": DAILY}, RETRY, 7, tried,
                                  recorded_before(D1)) if s.day <= D3]
    assert (d1.action, d2.action, d3.action) == (Action.WAIT, Action.HELD, Action.HELD)
    given_up = recorded_before(D1) | {("merchantrade", D1)}
    d2, d3 = [s for s in plan(now, {"merchantrade": DAILY}, RETRY, 7, tried, given_up)
              if s.day <= D3]
    assert (d2.day, d2.action, d3.day, d3.action) == (D2, Action.FINAL, D3, Action.HELD)


def test_retry_plan_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPlan(initial=timedelta(0))
    with pytest.raises(ValueError):
        RetryPlan(initial=timedelta(hours=2), ceiling=timedelta(hours=1))


def _rails(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "rails.toml"
    path.write_text(body)
    return path


def test_the_rails_file_gives_each_rail_its_schedule(tmp_path: Path) -> None:
    path = _rails(tmp_path, """
[rails.merchantrade]
base_url = "http://127.0.0.1:8701"
cutoff = "22:00"
[rails.iso20022]
statement_days = "business"
holiday_subdivision = "SGR"
""")
    schedules = load_schedules(path)
    assert schedules["merchantrade"] == RailSchedule("merchantrade", time(22, 0), "daily")
    assert schedules["iso20022"] == RailSchedule("iso20022", time(23, 30), "business",
                                                 BusinessCalendar("SGR"))
    assert load_schedules(None) == {}


@pytest.mark.parametrize(("line", "message"), [
    ('cutoff = "24:00"', "rails.r.cutoff: '24:00' is not a time HH:MM"),
    ('cutoff = "7:30"', "rails.r.cutoff: '7:30' is not a time HH:MM"),
    ("cutoff = 2330", "rails.r.cutoff: 2330 is not a time HH:MM"),
    ('statement_days = "weekdays"', "rails.r.statement_days: 'weekdays' is not one of"),
    ('holiday_subdivision = "Gotham"', "rails.r.holiday_subdivision: 'Gotham' is not"),
])
def test_a_bad_schedule_key_names_the_file_rail_and_key(tmp_path: Path, line: str,
                                                        message: str) -> None:
    path = _rails(tmp_path, f"[rails.r]\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_schedules(path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_the_rails_loader_leaves_the_schedule_keys_to_the_scheduler(tmp_path: Path) -> None:
    from gateway.composition import RAIL_KINDS
    from gateway.payments.rails import load_rails

    path = _rails(tmp_path, """
[rails.merchantrade]
base_url = "http://127.0.0.1:8701"
api_key_id = "k"
hmac_secret = "s"
callback_secret = "c"
cutoff = "22:00"
statement_days = "daily"
holiday_subdivision = "KUL"
""")
    assert set(load_rails(path, RAIL_KINDS).rails) == {"merchantrade"}
    assert load_schedules(path)["merchantrade"].cutoff == time(22, 0)
