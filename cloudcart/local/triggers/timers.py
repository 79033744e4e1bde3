"""Timer triggers: six-field NCRONTAB schedules (or a TimeSpan interval), in UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from azure.functions.timer import TimerRequest

from cloudcart.core.clock import utcnow
from cloudcart.local.triggers import logger
from cloudcart.local.triggers.bindings import FunctionPlan, TriggerBinding
from cloudcart.local.triggers.config import TriggerHostError, parse_timespan
from cloudcart.local.triggers.runtime import Runner

PAST_DUE_TOLERANCE = timedelta(seconds=1)
"""A timer invocation that starts later than this after its schedule is marked past due."""


# --- NCRONTAB ---------------------------------------------------------------------------------


def check_ncrontab(schedule: str, function_name: str) -> None:
    """Raise TriggerHostError unless `schedule` is a valid six-field NCRONTAB expression."""
    from croniter import croniter  # type: ignore[import-untyped]

    if len(schedule.split()) != 6 or not croniter.is_valid(schedule, second_at_beginning=True):
        raise TriggerHostError(
            f"function {function_name!r}: schedule {schedule!r} is not a six-field NCRONTAB "
            "expression ({second} {minute} {hour} {day} {month} {day-of-week})"
        )


def ncrontab_next_occurrence(schedule: str, after: datetime) -> datetime:
    """The first occurrence of a six-field NCRONTAB schedule strictly after `after` (UTC).

    croniter reads a sixth field as seconds *last* by default; `second_at_beginning` makes
    it read NCRONTAB's seconds-first order. `day_or=False`: like NCrontab, a schedule that
    restricts both day of month and day of week needs both to match.
    """
    from croniter import croniter

    result = croniter(
        schedule, after.astimezone(UTC), second_at_beginning=True, day_or=False
    ).get_next(datetime)
    assert isinstance(result, datetime)
    return result


# --- scheduling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerPlan:
    """A timer trigger: its NCRONTAB schedule, or the interval of a TimeSpan schedule."""

    function: FunctionPlan
    schedule: str
    interval: timedelta | None = None
    run_on_startup: bool = False

    @classmethod
    def from_binding(cls, binding: TriggerBinding) -> TimerPlan:
        """Read a `timerTrigger`. Raises TriggerHostError for an invalid schedule."""
        name = binding.function.name
        schedule = binding.text("schedule") or ""
        interval: timedelta | None = None
        if ":" in schedule:
            # The TimeSpan form (`00:05:00`) Functions accepts on App Service plans.
            interval = parse_timespan(schedule)
            if interval <= timedelta(0):
                raise TriggerHostError(f"function {name!r}: the interval must be positive")
        else:
            check_ncrontab(schedule, name)
        return cls(
            binding.function,
            schedule=schedule,
            interval=interval,
            run_on_startup=bool(binding.values.get("runOnStartup", False)),
        )

    def next_occurrence(self, after: datetime) -> datetime:
        """The first scheduled time after `after`."""
        if self.interval is not None:
            return after + self.interval
        return ncrontab_next_occurrence(self.schedule, after)


class TimerRunner(Runner[TimerPlan]):
    """Runs timer trigger functions on their schedules, one thread per function.

    - `run_on_startup` runs the function once when the host starts.
    - An invocation that starts more than `PAST_DUE_TOLERANCE` after its scheduled time is
      flagged `past_due`; occurrences missed while the function was still running (or the
      machine slept) collapse into one such invocation.
    - An exception is logged and never stops the next occurrence; there is no retry.
    - `schedule_status` carries the last and next occurrences, as the Functions host
      reports them.
    """

    def start(self) -> None:
        """Start one scheduler per function."""
        for plan in self.plans:
            self._spawn(partial(self._run, plan), plan.function.name)

    def _run(self, plan: TimerPlan) -> None:
        last: datetime | None = None
        if plan.run_on_startup:
            now = utcnow()
            self._fire(plan, now, last, plan.next_occurrence(now))
            last = now
        due = plan.next_occurrence(utcnow())
        while not self.stopping.wait(max(0.0, (due - utcnow()).total_seconds())):
            # Missed occurrences (a long run, a sleeping laptop) collapse into this one,
            # flagged past due, as the Functions timer does.
            following = plan.next_occurrence(max(utcnow(), due))
            self._fire(plan, due, last, following)
            last = due
            due = plan.next_occurrence(max(utcnow(), due))

    def _fire(
        self, plan: TimerPlan, scheduled: datetime, last: datetime | None, following: datetime
    ) -> None:
        now = utcnow()
        request = TimerRequest(
            past_due=now - scheduled > PAST_DUE_TOLERANCE,
            schedule_status={
                "Last": None if last is None else last.isoformat(),
                "Next": following.isoformat(),
                "LastUpdated": now.isoformat(),
            },
            schedule={"AdjustForDST": True},
        )
        try:
            self.invoker.invoke(
                plan.function, request, None, {"scheduledAt": scheduled.isoformat()}
            )
        except Exception:
            # The next occurrence still runs.
            logger.error(
                "timer function failed",
                exc_info=True,
                extra={"function": plan.function.name, "scheduledAt": scheduled.isoformat()},
            )
