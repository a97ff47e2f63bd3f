"""The grading protocol, unit by unit: what each side of the pipe encodes and decodes, on honest and
on malformed data, the trusted side's `Channel` over a fake process, and `StudentValues` over a fake
student process (hidden cases keep nothing whose text the student chose).

No subprocess, no notebook, no IPython shell: everything here runs in this process in well under a
second, apart from the deadline test (0.3 s) and the over-long message (20 MB through a pipe).
"""

import collections
import json
import math
import os
import re
import threading
import time
from typing import Any, Callable, Optional

import numpy as np
import pytest

from backprop_hw.autograder import harness, trusted
from backprop_hw.autograder.trusted import (LARGEST_MESSAGE, SAFE_ERROR_TYPES, Channel, HarnessStopped, StudentError,
                                            StudentValues, Unreadable, decode_answer, encode_argument, write_back)

# The names `decode_answer` itself gives what it cannot read: none of them is the student's.
OUR_NAMES = {"object", "malformed_answer", "malformed_array"}


def across(plain: Any) -> Any:
    """`plain` as the other side of the pipe reads it: through one JSON line."""
    return json.loads(json.dumps(plain))


def unreadable_name(value: Any) -> str:
    assert isinstance(value, Unreadable), f"expected an Unreadable, got {value!r}"
    return type(value).__name__


# ---------------------------------------------------------------------------------------------
# The harness encodes the student's values (harness.encode_value)


@pytest.mark.parametrize("value, plain", [
    (None, {"kind": "none"}),
    (Ellipsis, {"kind": "ellipsis"}),
    (3, {"kind": "number", "value": 3.0}),
    (np.float32(0.5), {"kind": "number", "value": 0.5}),
    (np.int64(-2), {"kind": "number", "value": -2.0}),
    (np.array([[1, 2], [3, 4]]), {"kind": "array", "shape": [2, 2], "data": [1.0, 2.0, 3.0, 4.0]}),
    (np.array(5.0), {"kind": "array", "shape": [], "data": [5.0]}),
    ([1.0, (2.0,)], {"kind": "list", "items": [{"kind": "number", "value": 1.0},
                                              {"kind": "tuple", "items": [{"kind": "number", "value": 2.0}]}]}),
    (len, {"kind": "function"}),
])
def test_encode_value_gives_plain_data(value: Any, plain: dict) -> None:
    assert harness.encode_value(value) == plain


@pytest.mark.parametrize("value, type_name", [
    (True, "bool"), (np.bool_(False), type(np.bool_(False)).__name__), ("1.0", "str"), ({"a": 1}, "dict"),
    (np.array([1j]), "array of complex128"), (np.array([True]), "array of bool"),
    (np.array(["a"]), "array of <U1"), (np.array([None]), "array of object"),
])
def test_encode_value_names_what_is_not_a_real_number(value: Any, type_name: str) -> None:
    assert harness.encode_value(value) == {"kind": "other", "type": type_name}


def test_encode_value_refuses_an_array_over_the_size_limit() -> None:
    big = np.zeros(harness.MAX_ARRAY_SIZE + 1)
    assert harness.encode_value(big) == {"kind": "other", "type": "array of float64"}


def test_encode_value_stops_lists_at_max_depth() -> None:
    nested: Any = 1.0
    for _ in range(harness.MAX_DEPTH + 1):
        nested = [nested]
    plain = harness.encode_value(nested)
    for _ in range(harness.MAX_DEPTH):
        assert plain["kind"] == "list"
        [plain] = plain["items"]
    assert plain == {"kind": "other", "type": "list"}


def test_encode_value_refuses_a_list_longer_than_max_items() -> None:
    assert harness.encode_value([0.0] * harness.MAX_ITEMS)["kind"] == "list"
    assert harness.encode_value([0.0] * (harness.MAX_ITEMS + 1)) == {"kind": "other", "type": "list"}


class FloatThatRaises(float):
    def __float__(self) -> float:
        raise ValueError("no float for you")


class ArrayThatRaises(np.ndarray):
    def astype(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no conversion")


class ListThatRaises(list):
    def __len__(self) -> int:
        raise TypeError("no length")


@pytest.mark.parametrize("value", [FloatThatRaises(1.0), ListThatRaises([1.0]), 10 ** 400],
                         ids=["float", "list", "huge int"])
def test_encode_value_turns_a_conversion_that_raises_into_an_object(value: Any) -> None:
    assert harness.encode_value(value) == {"kind": "other", "type": "object"}


def test_encode_value_reads_array_subclasses_and_tuple_subclasses_as_plain_data() -> None:
    """Their own methods are never called (a subclass's may raise), and np.matrix stays 2-D otherwise."""
    assert harness.encode_value(np.zeros(2).view(ArrayThatRaises)) == {"kind": "array", "shape": [2], "data": [0.0, 0.0]}
    assert harness.encode_value(np.asmatrix([[1.0, 2.0]])) == {"kind": "array", "shape": [1, 2], "data": [1.0, 2.0]}
    pair = collections.namedtuple("Pair", "a b")(1.0, None)
    assert harness.encode_value(pair) == {"kind": "tuple", "items": [{"kind": "number", "value": 1.0}, {"kind": "none"}]}


# ---------------------------------------------------------------------------------------------
# The harness decodes the grader's arguments (harness.decode_argument), from trusted.encode_argument


def test_arguments_cross_the_pipe_as_fresh_float_arrays() -> None:
    weights = [np.arange(6).reshape(2, 3), np.ones((1, 2))]
    argument = harness.decode_argument(across(encode_argument((weights, 2, np.array(0.5)))))
    assert isinstance(argument, tuple) and isinstance(argument[0], list)
    [first, second], number, scalar = argument
    assert first.dtype == float and first.shape == (2, 3) and first.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert second.tolist() == [[1.0, 1.0]]
    assert number == 2 and type(number) is int  # a depth or a size stays whole
    assert scalar.shape == () and float(scalar) == 0.5


def test_encode_argument_makes_a_copy_in_plain_floats() -> None:
    original = np.array([1, 2, 3], dtype=np.int32)
    plain = encode_argument(original)
    original[0] = 99
    assert plain == {"kind": "array", "shape": [3], "data": [1.0, 2.0, 3.0]}
    assert all(type(v) is float for v in plain["data"])


# ---------------------------------------------------------------------------------------------
# The grader decodes the student's answers (trusted.decode_answer): only well-formed plain data


@pytest.mark.parametrize("value", [
    None, Ellipsis, 2.5, -0.0, np.array([[1.5, -2.0]]), np.zeros((0, 3)), np.array(7.0),
    [1.0, (2.0, [np.ones(2)])]])
def test_plain_values_survive_the_round_trip(value: Any) -> None:
    decoded = decode_answer(across(harness.encode_value(value)))
    if isinstance(value, np.ndarray):
        assert isinstance(decoded, np.ndarray) and decoded.dtype == float
        assert decoded.shape == value.shape and np.array_equal(decoded, value)
    elif isinstance(value, list):
        assert isinstance(decoded, list) and decoded[0] == 1.0
        assert isinstance(decoded[1], tuple) and decoded[1][0] == 2.0
        assert isinstance(decoded[1][1], list) and np.array_equal(decoded[1][1][0], np.ones(2))
    else:
        assert decoded is value or decoded == value


@pytest.mark.parametrize("plain", [[1.0], "1.0", 1.0, None, True, ["kind", "number"]])
def test_decode_answer_refuses_what_is_not_a_dict(plain: Any) -> None:
    assert unreadable_name(decode_answer(plain)) == "malformed_answer"


@pytest.mark.parametrize("plain", [
    {}, {"value": 1.0}, {"kind": "number"}, {"kind": "number", "value": "1.0"}, {"kind": "number", "value": None},
    {"kind": "number", "value": [1.0]}, {"kind": "list"}, {"kind": "tuple", "items": {"0": 1}},
    {"kind": "function"}, {"kind": "banana", "value": 1.0}, {"kind": ["number"], "value": 1.0},
    {"kind": "NUMBER", "value": 1.0},
])
def test_decode_answer_refuses_wrong_kinds_and_missing_keys(plain: dict) -> None:
    assert unreadable_name(decode_answer(plain)) == "malformed_answer"


@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_not_a_number(value: bool) -> None:
    assert unreadable_name(decode_answer({"kind": "number", "value": value})) == "malformed_answer"
    assert unreadable_name(decode_answer({"kind": "array", "shape": [1], "data": [value]})) == "malformed_array"


@pytest.mark.parametrize("shape, data", [
    ([2, 2], [1.0, 2.0, 3.0]),  # shape and data disagree
    ([3], [1.0, 2.0, 3.0, 4.0]),
    ([], []),
    ([-1], [1.0]),  # negative extent
    ([-2, -1], [1.0, 2.0]),
    ([trusted.MAX_EXTENT + 1], [0.0] * (trusted.MAX_EXTENT + 1)),  # too large
    ([1] * (trusted.MAX_DIMENSIONS + 1), [1.0]),  # too many dimensions
    ([True], [1.0]),  # a bool as an extent
    ([2.0], [1.0, 2.0]),  # a float as an extent
    ("2", [1.0, 2.0]),
    (2, [1.0, 2.0]),
    (None, [1.0]),
    ([2], None),
    ([2], "12"),
    ([2], [1.0, "2"]),
    ([2], [1.0, None]),
    ([2], [[1.0], [2.0]]),
    ([2], {"0": 1.0, "1": 2.0}),
])
def test_decode_answer_refuses_malformed_arrays(shape: Any, data: Any) -> None:
    assert unreadable_name(decode_answer({"kind": "array", "shape": shape, "data": data})) == "malformed_array"


def test_decode_answer_accepts_arrays_at_the_limits() -> None:
    assert decode_answer({"kind": "array", "shape": [trusted.MAX_EXTENT], "data": [1] * trusted.MAX_EXTENT}).shape \
        == (trusted.MAX_EXTENT,)
    assert decode_answer({"kind": "array", "shape": [1] * trusted.MAX_DIMENSIONS, "data": [2]}).shape \
        == (1,) * trusted.MAX_DIMENSIONS
    assert decode_answer({"kind": "array", "shape": [0, 5], "data": []}).shape == (0, 5)


def test_a_huge_extent_with_no_data_is_refused_without_allocating() -> None:
    huge = [trusted.MAX_EXTENT] * trusted.MAX_DIMENSIONS  # 10^16 entries claimed
    assert unreadable_name(decode_answer({"kind": "array", "shape": huge, "data": [1.0]})) == "malformed_array"


def test_nan_and_inf_cross_as_non_finite_floats_for_the_checks_to_name() -> None:
    """The harness's JSON carries NaN and Infinity; they arrive as floats (never as another number),
    and the checks reject them as not finite."""
    number = decode_answer(across(harness.encode_value(float("nan"))))
    assert isinstance(number, float) and math.isnan(number)
    assert decode_answer(across(harness.encode_value(-np.inf))) == -math.inf
    array = decode_answer(across(harness.encode_value(np.array([1.0, np.inf, np.nan]))))
    assert array[0] == 1.0 and array[1] == math.inf and math.isnan(array[2])


def test_a_number_too_large_for_a_float_is_unreadable_not_an_error() -> None:
    """JSON allows integers of any length; one beyond a float's range is malformed data, which
    `decode_answer` must turn into an Unreadable like any other (not raise OverflowError)."""
    line = '{"kind": "number", "value": 1' + "0" * 400 + "}"
    assert unreadable_name(decode_answer(json.loads(line))) in OUR_NAMES
    array_line = '{"kind": "array", "shape": [1], "data": [1' + "0" * 400 + "]}"
    assert unreadable_name(decode_answer(json.loads(array_line))) in OUR_NAMES


def test_decode_answer_refuses_lists_deeper_than_max_depth() -> None:
    plain: dict = {"kind": "number", "value": 1.0}
    for _ in range(trusted.MAX_DEPTH):
        plain = {"kind": "list", "items": [plain]}
    assert decode_answer(plain) == [[[1.0]]]
    too_deep = decode_answer({"kind": "list", "items": [plain]})
    assert unreadable_name(too_deep[0][0][0]) == "malformed_answer"


def test_decode_answer_refuses_lists_longer_than_max_items() -> None:
    item = {"kind": "number", "value": 0.0}
    assert decode_answer({"kind": "tuple", "items": [item] * trusted.MAX_ITEMS}) == (0.0,) * trusted.MAX_ITEMS
    assert unreadable_name(decode_answer({"kind": "list", "items": [item] * (trusted.MAX_ITEMS + 1)})) \
        == "malformed_answer"


def test_decode_answer_keeps_a_sanitised_type_name_for_public_messages() -> None:
    assert unreadable_name(decode_answer({"kind": "other", "type": "str"})) == "str"
    assert unreadable_name(decode_answer({"kind": "other", "type": "array of complex128"})) == "array_of_complex128"
    assert unreadable_name(decode_answer({"kind": "other", "type": "9 lives"})) == "_9_lives"
    assert unreadable_name(decode_answer({"kind": "other", "type": "x" * 500})) == "x" * 40
    assert unreadable_name(decode_answer({"kind": "other", "type": ""})) == "object"
    assert unreadable_name(decode_answer({"kind": "other"})) == "object"
    assert re.fullmatch(r"\w+", unreadable_name(decode_answer({"kind": "other", "type": {"a": "<b>"}})))


@pytest.mark.parametrize("plain", [
    {"kind": "other", "type": "Leak_0_123456"},
    {"kind": "list", "items": [{"kind": "other", "type": "Leak_0_123456"}]},
    {"kind": "tuple", "items": [{"kind": "number", "value": 1.0}, {"kind": "other", "type": "Leak_0_123456"}]},
])
def test_hidden_decoding_keeps_no_type_name(plain: dict) -> None:
    decoded = decode_answer(plain, hidden=True)
    found = decoded if isinstance(decoded, Unreadable) else [v for v in decoded if isinstance(v, Unreadable)][0]
    assert unreadable_name(found) == "object"


# ---------------------------------------------------------------------------------------------
# In-place changes come back (trusted.write_back)


def test_write_back_mirrors_an_array_changed_in_place() -> None:
    original = np.zeros((2, 2))
    write_back(original, across(harness.encode_value(np.array([[1.0, 2.0], [3.0, 4.0]]))))
    assert original.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_write_back_mirrors_a_list_changed_in_place() -> None:
    original = [np.zeros(2), np.ones(2)]
    same_list = original
    write_back(original, across(harness.encode_value([np.full(2, 5.0)])))  # the student popped and changed
    assert same_list is original and len(original) == 1 and original[0].tolist() == [5.0, 5.0]


@pytest.mark.parametrize("after", [harness.encode_value(np.zeros(4)), {"kind": "array", "shape": [3], "data": [1.0]},
                                   {"kind": "other", "type": "str"}], ids=["reshaped", "malformed", "other"])
def test_write_back_marks_an_array_whose_answer_has_another_shape_or_is_malformed_as_changed(after: dict) -> None:
    original = np.arange(3.0)
    write_back(original, across(after))
    assert np.isnan(original).all()


def test_write_back_leaves_a_list_whose_answer_is_not_a_list() -> None:
    original = [1.0, 2.0]
    write_back(original, {"kind": "other", "type": "list"})
    write_back(original, {"kind": "tuple", "items": []})
    write_back(original, "garbage")
    assert original == [1.0, 2.0]


def test_write_back_keeps_an_unchanged_argument_equal() -> None:
    original = [np.array([[0.5, -1.5]]), np.array([2.0])]
    before = [a.copy() for a in original]
    write_back(original, across(harness.encode_value(original)))
    assert all(np.array_equal(a, b) for a, b in zip(original, before))


# ---------------------------------------------------------------------------------------------
# Channel: JSON lines from the student's process, with a deadline


class FakeProcess:
    """A launched student process as `Channel` sees it: stdout is the read end of a real pipe."""

    def __init__(self, code: int = 0, end: Optional[str] = None):
        read, self.write_end = os.pipe()
        self.stdout = os.fdopen(read, "rb")
        requests, sent = os.pipe()
        self.stdin, self.requests = os.fdopen(sent, "wb"), os.fdopen(requests, "rb")
        self.code, self.end = code, end
        self.killed = False
        self.writers: list[threading.Thread] = []

    def say(self, data: bytes) -> None:
        """Write `data` from a thread (a pipe holds only 64 KB), as the student's process would."""
        def write() -> None:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.write_end, view[:1 << 16]):]
            except OSError:  # the reader closed its end
                pass
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        self.writers.append(writer)

    def hang_up(self) -> None:
        for writer in self.writers:
            writer.join(5)
        os.close(self.write_end)
        self.write_end = -1

    def kill(self) -> None:
        self.killed = True

    def wait(self) -> int:
        return self.code

    def describe_end(self) -> Optional[str]:
        return self.end

    def sent(self) -> bytes:
        """What the channel has written to the process so far."""
        os.set_blocking(self.requests.fileno(), False)
        return self.requests.read() or b""

    def close(self) -> None:
        self.stdin.close()
        self.requests.close()
        self.stdout.close()  # unblocks any writer still writing
        for writer in self.writers:
            writer.join(5)
        if self.write_end >= 0:
            os.close(self.write_end)


@pytest.fixture
def fake_process() -> Any:
    made: list[FakeProcess] = []

    def make(code: int = 0, end: Optional[str] = None) -> FakeProcess:
        made.append(FakeProcess(code, end))
        return made[-1]

    yield make
    for process in made:
        process.close()


def test_channel_receives_messages_one_line_at_a_time(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process()
    channel = Channel(process, 5)
    process.say(b'{"ready": true}\n{"value": {"kind": "none"}}\n{"kept"')
    assert channel.receive() == {"ready": True}
    assert channel.receive() == {"value": {"kind": "none"}}
    process.say(b': "q1.1"}\n')
    assert channel.receive() == {"kept": "q1.1"}


def test_channel_sends_one_json_line(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process()
    Channel(process, 5).send({"get": "f0", "at": "q1.1"})
    sent = process.sent()
    assert sent.endswith(b"\n") and json.loads(sent) == {"get": "f0", "at": "q1.1"}


def test_channel_stops_at_the_deadline_when_the_process_stops_reading(fake_process: Callable[..., FakeProcess]) -> None:
    """A process that answers nothing and reads nothing, while a cell larger than the pipe is sent,
    stops the grading of its notebook at the deadline, not the grader."""
    process = fake_process()
    channel = Channel(process, 0.5)
    started = time.monotonic()
    with pytest.raises(HarnessStopped, match=r"wall-clock limit \(0.5 s\)"):
        channel.send({"run": "x = 1\n" * 1_000_000})
    assert 0.5 <= time.monotonic() - started < 2
    assert 0 < len(process.sent()) < 7_000_000  # what the pipe took before it was full


@pytest.mark.parametrize("line", [
    b"[" * 100_000 + b"]" * 100_000,  # nested 100,000 levels deep
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"not json at all",
    b"\xff\xfe\x00garbage",
    b'["ready", true]',
    b'"ready"',
    b"42",
    b"null",
    b"",
], ids=["deep list", "deep dict", "text", "bytes", "list", "string", "number", "null", "empty"])
def test_channel_refuses_a_line_that_is_not_a_json_object(fake_process: Callable[..., FakeProcess],
                                                          line: bytes) -> None:
    process = fake_process()
    channel = Channel(process, 5)
    process.say(line + b"\n")
    with pytest.raises(HarnessStopped, match="broke the grading protocol"):
        channel.receive()


def test_channel_refuses_a_message_over_the_largest_size(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process()
    channel = Channel(process, 20)
    process.say(b'{"value": "' + b"x" * (LARGEST_MESSAGE + (2 << 20)) + b'"}\n')
    with pytest.raises(HarnessStopped, match="too large"):
        channel.receive()
    assert len(channel.buffer) <= LARGEST_MESSAGE + (1 << 20)  # it stopped reading soon after the limit


def test_channel_stops_at_the_deadline(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process()
    channel = Channel(process, 0.3)
    started = time.monotonic()
    with pytest.raises(HarnessStopped, match=r"wall-clock limit \(0.3 s\)"):
        channel.receive()
    assert 0.3 <= time.monotonic() - started < 2


def test_channel_stops_at_the_deadline_while_bytes_trickle_in(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process()
    channel = Channel(process, 0.4)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.02):
            os.write(process.write_end, b" ")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(HarnessStopped, match="wall-clock limit"):
            channel.receive()
    finally:
        stop.set()
        thread.join(2)
    assert time.monotonic() - started < 2


def test_channel_restart_clock_gives_new_time(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process()
    channel = Channel(process, 0.01)
    time.sleep(0.05)
    channel.restart_clock(5)
    process.say(b'{"ok": 1}\n')
    assert channel.receive() == {"ok": 1}


@pytest.mark.parametrize("code, end, says", [
    (3, None, "ended early (exit code 3)"),
    (0, None, "ended early (exit code 0)"),
    (-9, None, "was killed by signal 9"),
    (137, None, "was killed by signal 9"),
    (-9, "the notebook ran out of memory (1024 MB)", "the notebook ran out of memory (1024 MB)"),
])
def test_channel_says_how_the_process_ended(fake_process: Callable[..., FakeProcess], code: int,
                                            end: Optional[str], says: str) -> None:
    process = fake_process(code, end)
    channel = Channel(process, 5)
    process.say(b'{"partial": ')
    process.hang_up()
    with pytest.raises(HarnessStopped) as stopped:
        channel.receive()
    assert str(stopped.value) == (says if end else f"the notebook process {says}")
    assert process.killed


def test_channel_send_to_a_closed_pipe_says_how_it_ended(fake_process: Callable[..., FakeProcess]) -> None:
    process = fake_process(-9)
    process.requests.close()  # the process's end of the requests' pipe: it is gone
    with pytest.raises(HarnessStopped, match="killed by signal 9"):
        Channel(process, 5).send({"run": "x = 1"})
    assert process.killed


# ---------------------------------------------------------------------------------------------
# StudentValues: what the tests read, fetched from the student's process


class FakeStudent:
    """The student's process as StudentValues uses it: canned answers, and the requests it got."""

    def __init__(self, values: Optional[dict[str, Any]] = None, call: Optional[dict] = None,
                 rerun: Optional[dict] = None):
        self.values, self.call, self.rerun = values or {}, call or {}, rerun or {}
        self.sources = ["a = 1", "b = 2", "c = 3", "d = 4"]
        self.requests: list[dict] = []
        self.budget = trusted.Budget(600, 60)
        self.limits: list[float] = []  # the time limit of each limited request

    def limited(self, message: dict, limit: float, kind: str) -> trusted.Answer:
        self.limits.append(limit)
        return trusted.Answer(self.request(message), False, limit, True)

    def request(self, message: dict) -> dict:
        self.requests.append(across(message))
        if "get" in message:
            return {"value": self.values.get(message["get"], {"kind": "none"})}
        if "call" in message:
            return self.call
        return self.rerun


LEAKY_TYPE = "secret_0_8675309"
LEAKY_MESSAGE = "the hidden weight was 0.8675309"


def all_type_names(value: Any) -> list[str]:
    """The type names of `value` and of everything in it."""
    names = [type(value).__name__]
    if isinstance(value, (list, tuple)):
        for item in value:
            names += all_type_names(item)
    return names


def test_student_values_fetch_each_name_once_as_it_was_at_the_check() -> None:
    student = FakeStudent({"f0": {"kind": "number", "value": 1.23}})
    values = StudentValues(student, "q1.1", 2, hidden=False)
    assert values["f0"] == 1.23 and values.get("f0") == 1.23
    assert student.requests == [{"get": "f0", "at": "q1.1"}]
    assert values.get("never_defined") is None


@pytest.mark.parametrize("plain", [
    {"kind": "other", "type": LEAKY_TYPE},
    {"kind": "list", "items": [{"kind": "number", "value": 1.0}, {"kind": "other", "type": LEAKY_TYPE}]},
    {"kind": "tuple", "items": [{"kind": "list", "items": [{"kind": "other", "type": LEAKY_TYPE}]}]},
])
def test_hidden_values_keep_no_student_type_name(plain: dict) -> None:
    hidden = StudentValues(FakeStudent({"f0": plain}), "q1.1", 2, hidden=True)["f0"]
    public = StudentValues(FakeStudent({"f0": plain}), "q1.1", 2, hidden=False)["f0"]
    assert not any("secret" in name for name in all_type_names(hidden))
    assert any(LEAKY_TYPE in name for name in all_type_names(public))  # public messages may name it


def test_hidden_call_result_keeps_no_student_type_name() -> None:
    student = FakeStudent({"backward_pass": {"kind": "function"}},
                          call={"result": {"kind": "other", "type": LEAKY_TYPE}, "args_after": []})
    result = StudentValues(student, "q2.2", 4, hidden=True)["backward_pass"](np.ones(2))
    assert unreadable_name(result) == "object"


def test_hidden_call_keeps_no_student_type_name_in_the_arguments_it_changed() -> None:
    """A hidden case's arguments, after the student's function changed them in place, are values the
    hidden case reads: like the result, they must carry no type name the student chose."""
    weights = [np.zeros(2), np.ones(2)]
    changed = {"kind": "list", "items": [{"kind": "other", "type": LEAKY_TYPE}, harness.encode_value(np.ones(2))]}
    student = FakeStudent({"backward_pass": {"kind": "function"}},
                          call={"result": {"kind": "none"}, "args_after": [changed]})
    StudentValues(student, "q2.2", 4, hidden=True)["backward_pass"](weights)
    assert weights[0] is not None and not isinstance(weights[0], np.ndarray)  # the change did come back
    assert not any("secret" in name for name in all_type_names(weights))


def test_a_call_sends_plain_arguments_and_mirrors_their_changes() -> None:
    student = FakeStudent({"compute": {"kind": "function"}},
                          call={"result": harness.encode_value((np.ones(2), [3.0])),
                                "args_after": [harness.encode_value(np.array([9.0, 9.0]))]})
    values = StudentValues(student, "q2.1", 3, hidden=True)
    argument = np.array([1.0, 2.0])
    result = values["compute"](argument, 0.5)
    assert student.requests[-1] == {"call": "compute", "at": "q2.1",
                                    "args": [encode_argument(np.array([1.0, 2.0])), encode_argument(0.5)]}
    assert isinstance(result, tuple) and np.array_equal(result[0], np.ones(2)) and result[1] == [3.0]
    assert argument.tolist() == [9.0, 9.0]


def raised_by(values: StudentValues, error: Any) -> StudentError:
    values.student.call = {"error": error}
    with pytest.raises(StudentError) as raised:
        values["f"]()
    return raised.value


@pytest.mark.parametrize("error_type", [LEAKY_TYPE, "MyError", "Error", "valueerror", "ValueError2", "os.error"])
def test_hidden_errors_allow_only_pythons_own_exception_names(error_type: str) -> None:
    values = StudentValues(FakeStudent({"f": {"kind": "function"}}), "q2.2", 4, hidden=True)
    error = raised_by(values, {"type": error_type, "message": LEAKY_MESSAGE})
    assert type(error).__name__ == "Exception"
    assert str(error) == ""


@pytest.mark.parametrize("error_type, shown", [
    ("ZeroDivisionError", "ZeroDivisionError"), ("ValueError", "ValueError"), ("SystemExit", "SystemExit"),
    ("RecursionError", "RecursionError"), ("MemoryError", "MemoryError"), ("CellTimeout", "CellTimeout"),
    ("KeyboardInterrupt", "Exception"), ("ConnectionRefusedError", "Exception")])
def test_hidden_errors_keep_common_exception_names_without_messages(error_type: str, shown: str) -> None:
    values = StudentValues(FakeStudent({"f": {"kind": "function"}}), "q2.2", 4, hidden=True)
    error = raised_by(values, {"type": error_type, "message": LEAKY_MESSAGE})
    assert type(error).__name__ == shown
    assert LEAKY_MESSAGE not in str(error) and str(error) == ""
    assert isinstance(error, StudentError)


@pytest.mark.parametrize("error", [None, "ValueError", ["ValueError"], {"type": None}, {"message": "m"},
                                   {"type": {"nested": "ValueError"}}])
def test_hidden_errors_of_any_shape_become_python_names(error: Any) -> None:
    values = StudentValues(FakeStudent({"f": {"kind": "function"}}), "q2.2", 4, hidden=True)
    raised = raised_by(values, error)
    assert type(raised).__name__ in SAFE_ERROR_TYPES | {"Exception"}
    assert str(raised) == ""


def test_public_errors_keep_the_students_name_and_message_within_limits() -> None:
    values = StudentValues(FakeStudent({"f": {"kind": "function"}}), "q2.2", 4, hidden=False)
    error = raised_by(values, {"type": "My Error<script>" + "x" * 100, "message": "m" * 1000})
    assert re.fullmatch(r"\w{1,40}", type(error).__name__) and type(error).__name__.startswith("MyErrorscript")
    assert str(error) == "m" * 300


def test_safe_error_types_are_few_of_pythons_own_exceptions() -> None:
    import builtins

    assert {"ValueError", "ZeroDivisionError", "IndexError", "TypeError", "CellTimeout"} <= SAFE_ERROR_TYPES
    for name in SAFE_ERROR_TYPES - {"CellTimeout"}:
        assert issubclass(getattr(builtins, name), BaseException)
    assert not {"Error", "StudentError", "HarnessStopped", "AssertionErrorX", "ConnectionRefusedError", "EOFError",
                "BaseException"} & SAFE_ERROR_TYPES
    assert len(SAFE_ERROR_TYPES) <= 20  # a choice among them carries little


def test_student_cells_are_those_run_up_to_the_check() -> None:
    values = StudentValues(FakeStudent(), "q1.2", 2, hidden=True)
    assert values.student_cells() == ["a = 1", "b = 2"]


def test_rerun_sends_only_cells_before_the_check_and_decodes_hidden() -> None:
    student = FakeStudent(rerun={"values": {"f0": {"kind": "number", "value": 0.5},
                                            "h1": {"kind": "other", "type": LEAKY_TYPE}},
                                 "error": {"type": LEAKY_TYPE, "message": LEAKY_MESSAGE}})
    values = StudentValues(student, "q1.1", 2, hidden=True)
    found, error = values.rerun_cells([5, 1, -2], [-1, 0, 1, 2, 3], ["f0"], {"x": 2.0, "w": np.ones(2)},
                                      ["f0", "h1", "missing"])
    [request] = student.requests
    assert request["at"] == "q1.1"
    assert request["rerun"] == {"helpers": [1], "cells": [0, 1], "clear": ["f0"], "names": ["f0", "h1", "missing"],
                                "inputs": {"x": encode_argument(2.0), "w": encode_argument(np.ones(2))}}
    assert found["f0"] == 0.5
    assert unreadable_name(found["h1"]) == "object"
    assert unreadable_name(found["missing"]) == "malformed_answer"
    assert type(error).__name__ == "Exception" and str(error) == ""


def test_a_rerun_may_take_what_its_cells_took_when_the_notebook_ran() -> None:
    student = FakeStudent(rerun={"values": {}, "error": None})
    runs = [trusted.CellRun(0, 40.0, None, None, 60), trusted.CellRun(1, 0.5, None, None, 60),
            trusted.CellRun(2, 60.0, "CellTimeout", None, 60)]
    StudentValues(student, "q1.3", 3, hidden=True, runs=runs).rerun_cells([0], [1], [], {}, [])
    StudentValues(student, "q1.3", 3, hidden=True, runs=runs).rerun_cells([], [2], [], {}, [])
    # Twice what each took and a second more, at least the floor; a cell that ran out of time, the floor.
    assert student.limits == [81.0 + trusted.FLOOR_SECONDS, trusted.FLOOR_SECONDS]


def test_rerun_without_error_returns_none() -> None:
    student = FakeStudent(rerun={"values": "not a dict", "error": None})
    found, error = StudentValues(student, "q1.1", 2, hidden=False).rerun_cells([], [0], [], {}, ["f0"])
    assert error is None and unreadable_name(found["f0"]) == "malformed_answer"


# ---------------------------------------------------------------------------------------------
# The harness's own helpers


def raise_in_cell(source: str, filename: str = "<cell 0>") -> BaseException:
    code = compile(source, filename, "exec")
    try:
        exec(code, {"np": np})
    except Exception as error:
        return error
    raise AssertionError("the cell did not raise")


def test_failing_line_is_the_last_line_of_the_cell_in_the_traceback() -> None:
    error = raise_in_cell("x = 1\n\ndef f():\n    return 1 / 0\n\ny = f()\n")
    assert harness.failing_line(error) == 4


def test_failing_line_stops_at_the_cell_when_the_error_is_raised_in_a_library() -> None:
    error = raise_in_cell("a = 1\nb = 2\nnp.reshape(np.ones(3), (2, 2))\n")
    assert harness.failing_line(error) == 3


def test_failing_line_is_none_without_a_cell_frame() -> None:
    try:
        raise ValueError("here")
    except ValueError as error:
        assert harness.failing_line(error) is None
    assert harness.failing_line(ValueError("never raised")) is None


def test_describe_error_bounds_the_message() -> None:
    described = harness.describe_error(ValueError("x" * 10_000))
    assert described == {"type": "ValueError", "message": "x" * harness.MAX_MESSAGE}


# ---------------------------------------------------------------------------------------------
# The trusted side's own account of the cells (trusted.quote, trusted.cell_problems)


def test_quote_names_the_failing_line_from_the_graders_copy() -> None:
    source = "x = 1\n\ny = x / 0\n" + "z = " + "1 + " * 40 + "1\n"
    assert trusted.quote(source, 3) == "line 3: y = x / 0"
    assert trusted.quote(source, 4) == "line 4: " + ("z = " + "1 + " * 40)[:60]
    assert trusted.quote(source, 2) == "the cell starting x = 1"  # a blank line: the cell's first line instead
    assert trusted.quote(source, 99) == "the cell starting x = 1"
    assert trusted.quote(source, 0) == trusted.quote(source, -1) == trusted.quote(source, None) \
        == "the cell starting x = 1"
    assert trusted.quote("\n\n", None) == "the cell starting "


def test_cell_problems_believe_this_processs_clock_not_the_harness() -> None:
    cells = [trusted.Cell("while True:\n    pass", ()), trusted.Cell("a = [0] * 10**12", ()), trusted.Cell("b = 1", ())]
    runs = [trusted.CellRun(0, 15.2, "CellTimeout", 2, 15), trusted.CellRun(1, 0.5, "MemoryError", 1, 15),
            trusted.CellRun(2, 0.1, "CellTimeout", None, 15),  # claims a timeout it did not take: not believed
            trusted.CellRun(0, 16.0, None, None, 15)]  # slow with no error reported: still too slow
    assert trusted.cell_problems(runs, cells) == [
        "a cell ran past 15 s and was stopped (line 2: pass)",
        "a cell ran out of memory (line 1: a = [0] * 10**12)",
        "a cell ran past 15 s and was stopped (the cell starting while True:)",
    ]


def test_cell_problems_say_each_problem_once() -> None:
    cells = [trusted.Cell("a = [0] * 10**12", ())]
    runs = [trusted.CellRun(0, 0.1, "MemoryError", 1)] * 3
    assert trusted.cell_problems(runs, cells) == ["a cell ran out of memory (line 1: a = [0] * 10**12)"]
    assert trusted.cell_problems([trusted.CellRun(0, 0.1, "ValueError", 1, 15)], cells) == []
