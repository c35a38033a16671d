"""Typed per-app state: `app.state[KEY]` by `StateKey`."""

from __future__ import annotations

import pytest

from chatcore.server.app import App
from chatcore.state import State, StateKey

COUNT = StateKey[int]("test.count")
NAMES = StateKey[list[str]]("test.names")


def test_a_value_is_kept_and_read_back_by_its_key():
    """What is set under a key is what reading that key gives."""
    state = State()
    state[COUNT] = 3
    assert state[COUNT] == 3
    assert COUNT in state and NAMES not in state


def test_reading_a_missing_key_raises_key_error_naming_it():
    """A missing key is a KeyError whose message names the key."""
    with pytest.raises(KeyError, match=r"test\.count"):
        State()[COUNT]


def test_get_answers_none_or_the_default_when_nothing_is_kept():
    """`get` never raises: None, or the given default, for a key not set."""
    state = State()
    assert state.get(COUNT) is None
    assert state.get(COUNT, 0) == 0
    state[COUNT] = 5
    assert state.get(COUNT, 0) == 5


def test_setdefault_keeps_the_first_value():
    """`setdefault` stores the default once, then returns the kept value."""
    state = State()
    state.setdefault(NAMES, []).append("a")
    state.setdefault(NAMES, []).append("b")
    assert state[NAMES] == ["a", "b"]


def test_keys_with_the_same_name_do_not_share_a_value():
    """Keys compare by identity: two plugins choosing the same name never collide."""
    mine, theirs = StateKey[int]("plugin.count"), StateKey[int]("plugin.count")
    state = State()
    state[mine] = 1
    assert theirs not in state
    assert state.get(theirs) is None


def test_each_app_has_a_state_of_its_own():
    """Two apps in one process keep separate values under the same key."""
    first = App.from_config(entry_points=False)
    second = App.from_config(entry_points=False)
    first.state[COUNT] = 1
    assert COUNT not in second.state
