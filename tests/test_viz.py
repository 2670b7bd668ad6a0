"""The race timeline: drawn from a race report, with PNG bytes that are the same every run."""

from __future__ import annotations

import pytest

from jobcontroller.course.core import setup
from jobcontroller.course.timeline import Timeline, draw_race


@pytest.fixture
def reports(fresh_aws):
    """A naive and a conditional race of four contenders, each on a fresh job."""
    course = setup()
    naive = course.race(4, design="naive")
    course.reset()
    return naive, course.race(4)


def test_draw_race_draws_one_panel_per_report(reports):
    """Two reports give two panels, each titled with how often the workload ran."""
    timeline = draw_race(*reports)
    assert isinstance(timeline, Timeline)
    titles = [ax.get_title() for ax in timeline.figure.axes]
    assert titles == ["naive lock: ran 4 time(s)", "conditional lock: ran 1 time(s)"]


def test_png_is_a_png_without_a_version_stamp(reports):
    """The PNG has the PNG signature and no 'Software' text chunk."""
    png = draw_race(*reports).png()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in png


def test_png_bytes_are_stable_across_races(fresh_aws):
    """Two separate races drawn separately give byte-identical PNGs."""

    def picture():
        course = setup()
        return draw_race(course.race(3, design="naive"), (course.reset(), course.race(3))[1])

    assert picture().png() == picture().png()


def test_text_tells_the_same_story(reports):
    """The text form lists each contender's steps, for readers who cannot see the picture."""
    text = draw_race(*reports).text()
    assert "naive lock: the workload ran 4 time(s)" in text
    assert "#2 run-0002: 0: read v0 IDLE; 2: conditional write v0: refused" in text
    assert repr(draw_race(*reports)) == text


def test_draw_race_needs_a_report():
    """Calling it with nothing says what to pass."""
    with pytest.raises(ValueError, match="RaceReport"):
        draw_race()


def test_every_label_is_at_least_10_points(reports):
    """Titles, tick labels, outcome notes and the legend are all 10 pt or larger."""
    from matplotlib.text import Text

    figure = draw_race(*reports).figure
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_text()]
    assert sizes
    assert min(sizes) >= 10


def test_in_a_notebook_the_picture_and_its_words_are_two_outputs(reports, monkeypatch):
    """Displayed, a timeline publishes the PNG and then its text as a separate output."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw: shown.append(obj))
    timeline = draw_race(*reports)
    timeline._ipython_display_()
    assert [sorted(bundle) for bundle in shown] == [["image/png", "text/plain"], ["text/plain"]]
    assert shown[0]["text/plain"] == timeline.caption()
    assert shown[1]["text/plain"] == timeline.text()
