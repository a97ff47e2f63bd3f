"""A function run in a forked child, for what a test must not do to its own process (drop its
privileges, install a seccomp filter)."""

import json
import os
from collections.abc import Callable


def in_a_child(function: Callable[..., object], *arguments: object) -> object:
    """`function(*arguments)` in a forked child; what it returns must be JSON. An exception in it
    fails the test."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            answer = {"value": function(*arguments)}
        except BaseException as error:
            answer = {"error": f"{type(error).__name__}: {error}"}
        finally:
            os.write(writing, json.dumps(answer).encode())
            os._exit(0)
    os.close(writing)
    with os.fdopen(reading, "rb") as pipe:
        answer = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert "error" not in answer, answer["error"]
    return answer["value"]
