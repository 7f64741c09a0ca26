"""The exchange state table: every listed move, refusal of the rest, a sentence for every reason."""

from __future__ import annotations

import pytest

from oots.errors import LocalProtocolError
from oots.requester import REASON_TEXT, TERMINAL, TRANSITIONS, Event, Reason, State, next_state


def test_terminal_states_take_no_event() -> None:
    for state in TERMINAL:
        for event in Event:
            with pytest.raises(LocalProtocolError):
                next_state(state, event)


def test_every_live_state_can_fail_be_cancelled_and_time_out() -> None:
    for state in set(State) - TERMINAL:
        assert next_state(state, Event.FAIL) is State.FAILED
        assert next_state(state, Event.CANCEL) is State.FAILED
        assert next_state(state, Event.TIMEOUT) is State.EXPIRED


def test_happy_paths() -> None:
    path = [Event.NEEDS_CHOICE, Event.CHOSEN, Event.DISCOVERED, Event.EXPLICIT_REQUEST, Event.PREVIEW_REQUIRED]
    state = State.DISCOVERING
    for event in path:
        state = next_state(state, event)
    assert state is State.AWAITING_PREVIEW
    assert next_state(state, Event.EVIDENCE_RECEIVED) is State.REQUESTING
    assert next_state(state, Event.ALL_RECEIVED) is State.COMPLETED


def test_no_request_before_the_explicit_request() -> None:
    for state in (State.DISCOVERING, State.AWAITING_USER_CHOICE):
        with pytest.raises(LocalProtocolError, match="explicit_request"):
            next_state(state, Event.EXPLICIT_REQUEST)
    assert (State.AWAITING_USER_CHOICE, Event.PREVIEW_REQUIRED) not in TRANSITIONS


def test_every_reason_has_a_sentence() -> None:
    assert set(REASON_TEXT) == set(Reason)
    assert all(text.endswith(".") for text in REASON_TEXT.values())
