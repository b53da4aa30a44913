"""Subjects and settings of the stream consumer (no NATS needed)."""
from __future__ import annotations

import pytest

from api.stream import StreamSettings, StreamSetupError, platform_of, stream_problems, subject_covers


@pytest.mark.parametrize(("pattern", "subject", "covered"), [
    ("events.>", "events.grab", True),
    ("events.>", "events.grab.vn", True),
    ("events.>", "events.*", True),
    ("events.>", "events.>", True),
    ("events.>", "events", False),
    ("events.>", "outcomes.grab", False),
    ("events.>", ">", False),
    ("events.*", "events.grab", True),
    ("events.*", "events.grab.vn", False),
    ("events.*", "events.>", False),
    ("events.grab", "events.*", False),
    (">", "anything.at.all", True),
])
def test_a_subject_is_covered_only_when_every_subject_it_matches_is_matched(pattern, subject, covered):
    assert subject_covers(pattern, subject) is covered


def test_the_platform_is_the_rest_of_the_subject_after_the_prefix():
    settings = StreamSettings(subject="events.>")
    assert platform_of(settings, "events.grab") == "grab"
    assert platform_of(settings, "events.xanh-sm") == "xanh-sm"
    assert platform_of(settings, "other.grab") is None


def test_settings_that_cannot_work_are_refused_with_every_reason():
    with pytest.raises(StreamSetupError) as refused:
        StreamSettings(subject="events.*", batch_size_max=20_000, retention="forever",
                       dead_letter_subject="events.dead")
    message = str(refused.value)
    assert "subject 'events.*' must be a prefix ending in '.>'" in message
    assert "batch size must be 1 to 10,000, got 20000" in message
    assert "retention must be one of limits, interest, workqueue, got 'forever'" in message


def test_a_stream_capturing_the_outcome_subjects_is_a_problem():
    settings = StreamSettings(subject="events.>")
    assert stream_problems(settings, [">"]) == [
        "it captures '>', outside 'events.>'",
        "its subject '>' would capture the outcomes ('outcomes.<platform>')",
        "its subject '>' would capture the dead letters ('deadletter.events')",
    ]
    assert stream_problems(settings, ["events.>"]) == []
    assert stream_problems(settings, ["events.grab", "events.be"]) == []
