"""The dashboard: every button, clicked as a learner would, changes the control item as labelled."""

from __future__ import annotations

import pytest

from jobcontroller import Drill, Status
from jobcontroller.course.core import setup
from jobcontroller.course.dashboard import Dashboard

pytest.importorskip("ipywidgets")


@pytest.fixture
def course(fresh_aws):
    """A fresh course with the clock five seconds into the 09:00 slot."""
    course = setup()
    course.at("09:00:05")
    return course


@pytest.fixture
def dash(course):
    """A dashboard on that course."""
    return Dashboard(course)


def test_initial_view_shows_the_idle_item(dash):
    """Before any press the dashboard shows an IDLE job with no runs."""
    text = dash.render_text()
    assert "status            IDLE (holder -)" in text
    assert "(none yet)" in text
    assert dash.view.value == dash.render_html()


def test_trigger_once_runs_the_current_slot(dash, course):
    """'trigger once' delivers the current slot: run_count goes to 1 and the view says so."""
    dash.trigger_button.click()
    assert course.state().run_count == 1
    assert dash.message == "trigger for slot 09:00 -> SUCCEEDED (run-0001)"
    assert "runs 1, failures 0" in dash.view.value


def test_trigger_twice_is_gated(dash, course):
    """A second press for the same slot skips with SLOT_DONE and writes nothing."""
    dash.trigger_button.click()
    version = course.state().version
    dash.trigger_button.click()
    assert dash.message.endswith("SKIPPED SLOT_DONE")
    assert course.state().version == version


def test_fire_concurrent_runs_once(dash, course):
    """'fire N at once' with N=5: the workload runs once, four lose the race."""
    dash.contenders.value = 5
    dash.fire_button.click()
    assert course.state().run_count == 1
    assert dash.message.endswith("ran 1 time(s): SKIPPED LOST_RACE x4, SUCCEEDED x1")


def test_advance_moves_the_clock_by_the_chosen_step(dash, course):
    """'advance clock' by 15 minutes moves the course clock 900 s."""
    before = course.clock.now()
    dash.step.value = 900
    dash.advance_button.click()
    assert (course.clock.now() - before).total_seconds() == 900
    assert dash.message == "clock advanced by 15 minutes to 2026-01-05T09:15:05Z"


def test_pause_and_resume(dash, course):
    """'pause' makes triggers skip with PAUSED; pressing it again ('resume') undoes it."""
    dash.pause_button.click()
    assert course.state().paused is True
    assert dash.pause_button.description == "resume"
    dash.trigger_button.click()
    assert dash.message.endswith("SKIPPED PAUSED")
    dash.pause_button.click()
    assert course.state().paused is False
    assert dash.pause_button.description == "pause"


def test_next_run_fails(dash, course):
    """'next run fails' then 'trigger once': FAILED, last_error set, status back at IDLE."""
    dash.fail_button.click()
    assert course.state().drill is Drill.FAIL
    dash.trigger_button.click()
    state = course.state()
    assert state.status is Status.IDLE
    assert state.last_error.startswith("PlaceholderFailure")
    assert state.drill is None
    assert "FAILED (run-0001)" in dash.message


def test_next_run_crashes_and_the_lease_recovers(dash, course):
    """'next run crashes': the lock stays held; after the lease, the next slot takes over."""
    dash.crash_button.click()
    dash.trigger_button.click()
    state = course.state()
    assert state.status is Status.RUNNING
    assert "crashed" in dash.message
    assert "lease remaining   15m00s" in dash.render_text()
    dash.step.value = 3600
    dash.advance_button.click()
    dash.trigger_button.click()
    assert "took over from run-0001" in dash.message
    assert course.state().takeover_count == 1


def test_the_text_is_the_same_on_every_run(course):
    """The same presses after a reset give the same text, so stored notebook output is stable."""

    def drive():
        dash = Dashboard(course)
        dash.trigger_button.click()
        dash.advance_button.click()
        dash.fire_button.click()
        return dash.render_text()

    first = drive()
    course.reset()
    course.at("09:00:05")
    assert drive() == first


def test_display_bundle_pairs_the_widget_with_stable_text(dash):
    """The notebook display carries the live widget and render_text() as its plain text."""
    bundle = dash._repr_mimebundle_()
    assert bundle["text/plain"] == dash.render_text()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_snapshot_has_text_and_html(dash):
    """snapshot() freezes the current text and HTML."""
    snap = dash.snapshot()
    assert repr(snap) == dash.render_text()
    assert snap._repr_html_() == dash.render_html()


def test_fire_concurrent_with_a_crash_drill_reports_the_crash(dash, course):
    """With a CRASH drill, 'fire N at once' says the winner crashed and the lock stays held."""
    dash.crash_button.click()
    dash.fire_button.click()
    assert "the winner crashed" in dash.message
    assert course.state().status is Status.RUNNING


def test_each_press_shows_a_counter_and_the_clock(dash):
    """Every press numbers the last action and gives the clock after it, so a no-op press shows."""
    dash.trigger_button.click()
    dash.trigger_button.click()
    text = dash.render_text()
    assert "last action: press 2 (clock 2026-01-05T09:00:06Z): trigger for slot 09:00" in text
    assert "press 2 (clock" in dash.view.value


def test_buttons_sit_above_the_panel(dash):
    """The state panel is the widget's last child, so the buttons above it never move."""
    assert dash.widget.children[-1] is dash.view
    assert all(child is not dash.view for child in dash.widget.children[:-1])


def test_panel_cells_are_left_aligned(dash):
    """Every cell of the panel's table is left-aligned like the course's other tables."""
    markup = dash.render_html()
    assert markup.count("<td style='text-align:left") == markup.count("<td")


def test_a_drill_says_it_wrote_the_item(dash, course):
    """Setting a drill reports the version bump it caused, so the next run's version adds up."""
    dash.crash_button.click()
    assert course.state().version == 1
    assert dash.message.endswith("(setting it wrote the item: version 0 -> 1)")


def test_fresh_dashboard_has_its_own_job_and_clock(course):
    """fresh_dashboard starts IDLE at 09:00:05 on its own job, whatever the course did before."""
    from jobcontroller.course.dashboard import DASHBOARD_JOB, fresh_dashboard

    course.invoke("09:00")
    course.at("12:00")
    dash = fresh_dashboard(course)
    assert dash.course.job == DASHBOARD_JOB
    assert dash.course.clock.now().isoformat() == "2026-01-05T09:00:05+00:00"
    dash.crash_button.click()
    dash.trigger_button.click()
    assert dash.course.state().status is Status.RUNNING
    assert course.state().status is Status.IDLE
    assert course.state().run_count == 1
    course.at("13:00")
    assert dash.course.clock.now().isoformat() == "2026-01-05T09:00:05+00:00"
    again = fresh_dashboard(course)
    assert again.course.state().status is Status.IDLE


def test_notebook_04_walk_through_works_on_a_fresh_dashboard(course):
    """The presses notebook 04 suggests give crash, RUNNING, takeover, FAILED, then PAUSED."""
    from jobcontroller.course.dashboard import fresh_dashboard

    course.at("12:00")  # cells run before the dashboard must not matter
    dash = fresh_dashboard(course)
    said = []
    for press in ("crash", "trigger", "trigger", "15m", "trigger", "fail", "1h", "trigger"):
        if press == "trigger":
            dash.trigger_button.click()
            said.append(dash.message)
        elif press in ("15m", "1h"):
            dash.step.value = 900 if press == "15m" else 3600
            dash.advance_button.click()
        else:
            (dash.crash_button if press == "crash" else dash.fail_button).click()
    assert "crashed" in said[0]
    assert said[1].endswith("SKIPPED RUNNING")
    assert "took over from run-0001" in said[2]
    assert "FAILED (run-0003)" in said[3]
    dash.pause_button.click()
    dash.trigger_button.click()
    assert dash.message.endswith("SKIPPED PAUSED")
