"""Handoff: a write handed from a thread to the loop, answered once, waited for by a lock."""

from __future__ import annotations

import threading
import time

import pytest

from aiokv import KeyExistsError
from aiokv._core.handoff import Handoff


def test_an_answer_given_before_the_wait_is_found_at_once() -> None:
    done = Handoff()
    assert not done.done()
    done.set_result(None)
    assert done.done()
    assert not done.cancelled()
    assert done.wait(timeout=0)


def test_a_refusal_is_raised_in_the_waiting_thread() -> None:
    done = Handoff()
    error = KeyExistsError("key exists: 'k'")
    done.set_exception(error)
    with pytest.raises(KeyExistsError) as caught:
        done.wait(timeout=0)
    assert caught.value is error


def test_a_wait_with_no_answer_times_out() -> None:
    done = Handoff()
    start = time.monotonic()
    assert not done.wait(timeout=0.05)
    assert time.monotonic() - start >= 0.04
    assert not done.done()


def test_an_answer_from_another_thread_wakes_the_waiter() -> None:
    done = Handoff()
    answered = threading.Event()

    def answer() -> None:
        answered.wait()
        done.set_result(None)

    thread = threading.Thread(target=answer)
    thread.start()
    answered.set()
    assert done.wait(timeout=10)
    thread.join()


def test_a_second_answer_is_a_bug_and_says_so() -> None:
    done = Handoff()
    done.set_result(None)
    with pytest.raises(RuntimeError, match="answered twice"):
        done.set_exception(KeyExistsError("late"))
    assert done.wait(timeout=0)  # the first answer stands
