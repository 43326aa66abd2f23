"""Crash isolation: an implementation run in a worker process, so an abort, a segfault, a failed
CHECK or a hang ends that one call, not the run.

``IsolatedImplementation(spec, **options)`` starts ``python -c ...`` in a subprocess, which rebuilds
the implementation there with ``load_implementation(spec, **options)`` (options must be picklable
keyword values) and serves calls: the case and NumPy arrays go in, the output or the exception comes
back. In the parent it stands in for the :class:`~conformance.running.implementations.Implementation`:
``forward``/``backward`` and any other method or attribute of the real one are answered by the worker.

When the worker dies (a signal, an exit status) or does not answer within ``timeout`` seconds, the
call raises :class:`conformance.judging.outcomes.ImplementationCrashed` with the signal or status and the
last lines the worker wrote to stderr; the next call starts a fresh worker, so the run goes on.

Exceptions come back as themselves where they can (pickled, and their module already imported
here, as user-named refusal types are); otherwise as a class with the same name and module derived
from the nearest builtin base (an ONNX Runtime ``Fail`` comes back as a plain-``Exception``
subclass named ``Fail``, so it is still judged a crash, and a ``ValueError`` subclass still a refusal).
The worker's traceback is attached as a note.

>>> from conformance.running.isolation import IsolatedImplementation
>>> with IsolatedImplementation("reference_impl:conv2d") as implementation:  # doctest: +SKIP
...     output = implementation.forward(case, x, weight, bias)
"""

from __future__ import annotations

import builtins
import collections
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from conformance.judging.outcomes import ImplementationCrashed

DEFAULT_TIMEOUT = 300.0  # seconds one call may take; the slowest built-in (onnx-reference on a network layer) fits
LOAD_TIMEOUT = 300.0  # importing a framework (TensorFlow: ~5 s alone, minutes on a loaded machine)
STDERR_LINES = 12  # how many of the worker's last stderr lines a crash report keeps

_WORKER_CODE = "import sys; from conformance.running.isolation import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
# A worker in a column's own venv (conformance.frameworks.venv_python): that Python has numpy, PyYAML
# and the framework, not torch nor this project installed. The package is made importable without
# running conformance/__init__.py (which imports torch), so only the light modules load: the worker
# loop, the loader, the case model and the adapter.
_FOREIGN_WORKER_CODE = (
    "import sys, types; package = types.ModuleType('conformance'); package.__path__ = [sys.argv[3]]; "
    "sys.modules['conformance'] = package; "
    "from conformance.running.isolation import serve; serve(int(sys.argv[1]), int(sys.argv[2]))"
)


class IsolatedImplementation:
    """An implementation run in a worker process (see the module docstring). Use as a context
    manager, or call :meth:`close`, to end the worker."""

    def __init__(
        self,
        spec: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        load_timeout: float = LOAD_TIMEOUT,
        python: str | None = None,
        **options: Any,
    ) -> None:
        self.spec, self.load_options = spec, options  # `options` (resolved) comes from the worker
        # The worker's interpreter: given, else the built-in's own venv, else this one.
        self.python = python or _own_venv_python(spec)
        self.timeout, self.load_timeout = timeout, load_timeout
        self.restarts = 0  # workers started after the first (one per crash or hang)
        self._process: subprocess.Popen | None = None
        self._requests: Connection | None = None
        self._answers: Connection | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=200)
        self._attributes: dict[str, Any] = {}
        self._callables: set[str] = set()
        self._start()

    # -- what the runner calls --------------------------------------------------------------------
    def forward(self, case: Any, x: Any, weight: Any, bias: Any) -> Any:
        return self._call("method", "forward", (case, x, weight, bias), {})

    def backward(self, case: Any, grad_output: Any, x: Any, weight: Any, bias: Any) -> Any:
        return self._call("method", "backward", (case, grad_output, x, weight, bias), {})

    def call_function(self, module: str, function: str, *args: Any, **kwargs: Any) -> Any:
        """``module.function(*args, **kwargs)`` called in the worker (e.g. an adapter's ``version()``)."""
        return self._call("function", (module, function), args, kwargs)

    def judge_exception(self, error: BaseException) -> str:
        """The worker's verdict (it judged the exception with the plug-in's own classes, so a refusal
        type defined in the plug-in counts); for an exception without one, judged here by the
        loader's rule on the rebuilt exception."""
        verdict = getattr(error, "conformance_verdict", None)
        if verdict is not None:  # judged in the worker, with the plug-in's own refusal types
            return verdict
        from conformance.running.implementations import Implementation

        local = Implementation(
            self._attributes.get("name", str(self.spec)), refusal_types=tuple(self._attributes.get("refusal_types", ()))
        )
        return local.judge_exception(error)

    def __getattr__(self, name: str) -> Any:
        # only reached for names not set on self: the real implementation's attributes and methods
        attributes = self.__dict__.get("_attributes", {})
        if name in attributes:
            return attributes[name]
        if name in self.__dict__.get("_callables", ()):
            return _RemoteCallable(self, name)
        raise AttributeError(f"{type(self).__name__} ({self.spec}) has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"IsolatedImplementation({self.spec!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def close(self) -> None:
        """End the worker (politely, then by force)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            assert self._requests is not None
            self._requests.send(("exit",))
            process.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            self._close_pipes()

    def __enter__(self) -> IsolatedImplementation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    # -- the worker -------------------------------------------------------------------------------
    def _start(self) -> None:
        parent_requests, child_requests = os.pipe()
        child_answers, parent_answers = os.pipe()
        env = dict(os.environ)
        if self.python is None:
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the parent's imports, plug-ins included
            command = [sys.executable, "-c", _WORKER_CODE, str(parent_requests), str(parent_answers)]
        else:  # none of this venv's packages may leak into the other one: only the project's own folder
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = os.path.dirname(package)
            command = [self.python, "-c", _FOREIGN_WORKER_CODE, str(parent_requests), str(parent_answers), package]
        self._process = subprocess.Popen(
            command,
            pass_fds=(parent_requests, parent_answers),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=os.getcwd(),
        )
        os.close(parent_requests)
        os.close(parent_answers)
        self._requests, self._answers = (
            Connection(child_requests, readable=False),
            Connection(child_answers, writable=False),
        )
        self._stderr.clear()
        threading.Thread(target=_drain, args=(self._process.stderr, self._stderr), daemon=True).start()
        snapshot = self._call("load", self.spec, (), self.load_options, timeout=self.load_timeout)
        self._attributes, self._callables = _unpickle_attributes(snapshot["attributes"]), set(snapshot["callables"])

    def _call(self, what: str, name: Any, args: tuple, kwargs: dict, timeout: float | None = None) -> Any:
        if self._process is None:
            self.restarts += 1
            self._start()
        assert self._requests is not None and self._answers is not None
        self._stderr.clear()
        timeout = self.timeout if timeout is None else timeout
        try:
            self._requests.send((what, name, args, kwargs))
            ready = self._answers.poll(timeout)
            answer = self._answers.recv() if ready else None
        except (EOFError, OSError):
            answer = "died"
        if answer is None or answer == "died":
            raise self._crashed(hung=answer is None, timeout=timeout)
        status, value = answer
        if status == "ok":
            return value
        if status == "callable":
            return _RemoteCallable(self, name, args, kwargs, returned=True)
        raise rebuild_exception(value)

    def _crashed(self, *, hung: bool, timeout: float) -> ImplementationCrashed:
        process, self._process = self._process, None
        assert process is not None
        if hung:
            process.kill()
        try:
            status = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        self._close_pipes()
        threading.Event().wait(0.05)  # let the reader thread take the last stderr lines
        lines = crash_lines([line for line in self._stderr if line.strip()])
        what = f"hung: no answer within {timeout:g} s (worker killed)" if hung else describe_exit(status)
        message = f"{self.spec or 'reference'}: worker process {what}"
        if lines:
            message += "; last stderr lines:\n" + "\n".join(f"    {line}" for line in lines)
        return ImplementationCrashed(message)

    def _close_pipes(self) -> None:
        for connection in (self._requests, self._answers):
            if connection is not None:
                try:
                    connection.close()
                except OSError:
                    pass
        self._requests = self._answers = None


class _RemoteCallable:
    """A callable the worker holds (a method, a function attribute, or what a method returned):
    calling it calls it there."""

    def __init__(
        self,
        owner: IsolatedImplementation,
        name: str,
        args: tuple = (),
        kwargs: dict | None = None,
        returned: bool = False,
    ) -> None:
        self.owner, self.name, self.args, self.kwargs, self.returned = owner, name, args, kwargs or {}, returned

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.returned:  # what a method returned: ask the worker to make it again and call it
            return self.owner._call("returned", self.name, (self.args, self.kwargs, args), kwargs)
        return self.owner._call("method", self.name, args, kwargs)

    def __repr__(self) -> str:
        return f"<{self.name} in worker {self.owner.pid}>"


_TELLING = re.compile(r"Check failed|Fatal|Assertion|Segmentation|Aborted|double free|corrupted|terminate called")


def crash_lines(lines: list[str], keep: int = STDERR_LINES) -> list[str]:
    """The last ``keep`` stderr lines; when a line that names the failure (a failed CHECK, a fatal
    error) is older than those — a native stack trace follows it — it is put first.

    >>> crash_lines(["F tensor_format.h:428] Check failed: index >= 0"] + [f"    @ 0x{i}" for i in range(20)], 3)
    ['F tensor_format.h:428] Check failed: index >= 0', '    @ 0x17', '    @ 0x18', '    @ 0x19']
    """
    tail = lines[-keep:]
    telling = [line for line in lines[:-keep] if _TELLING.search(line)]
    return telling[-1:] + tail


def describe_exit(status: int) -> str:
    """How a process ended, from Popen's returncode (negative: the signal).

    >>> describe_exit(-6)
    'killed by signal SIGABRT (6)'
    >>> describe_exit(3)
    'exited with status 3'
    """
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "signal"
        return f"killed by signal {name} ({-status})"
    return f"exited with status {status}"


def _drain(stream: Any, lines: collections.deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode(errors="replace").rstrip())
    stream.close()


# -- exceptions across the process boundary ---------------------------------------------------------
def describe_exception(exc: BaseException) -> dict[str, Any]:
    """What the parent needs to rebuild ``exc``: the pickle when it round-trips, else its type's
    name, module and builtin bases, its message, and the traceback."""
    pickled: bytes | None
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # many extension types' exceptions do not pickle
        pickled = None
    bases = [cls.__name__ for cls in type(exc).__mro__ if cls.__module__ == "builtins"]
    return {
        "pickled": pickled,
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc),
        "bases": bases,
        "traceback": "".join(traceback.format_exception(exc)[-12:]),
    }


def rebuild_exception(description: dict[str, Any]) -> BaseException:
    """The exception the worker raised, as near to the original as this process allows.

    >>> error = rebuild_exception({"pickled": None, "type": "Fail", "module": "ort.state", "message": "boom",
    ...                            "bases": ["Exception", "BaseException", "object"], "traceback": ""})
    >>> type(error).__name__, isinstance(error, ValueError), str(error)
    ('Fail', False, 'boom')
    >>> isinstance(rebuild_exception({"pickled": None, "type": "InvalidArgumentError", "module": "tf", "message": "",
    ...     "bases": ["ValueError", "Exception", "BaseException", "object"], "traceback": ""}), ValueError)
    True
    """
    module = description["module"]
    error: BaseException | None = None
    if description["pickled"] is not None and (module == "builtins" or module.split(".")[0] in sys.modules):
        try:
            error = pickle.loads(description["pickled"])
        except Exception:
            error = None
    if error is None:
        base = next(
            (
                getattr(builtins, name)
                for name in description["bases"]
                if isinstance(getattr(builtins, name, None), type) and issubclass(getattr(builtins, name), Exception)
            ),
            Exception,
        )
        cls = (
            base
            if (description["type"] == base.__name__ and module == "builtins")
            else type(description["type"], (base,), {"__module__": module})
        )
        try:
            error = cls(description["message"])
        except Exception:  # a base whose constructor wants other arguments
            error = type(description["type"], (Exception,), {"__module__": module})(description["message"])
    if description.get("traceback"):
        error.add_note("in the worker process:\n" + description["traceback"].rstrip())
    if description.get("verdict"):
        error.conformance_verdict = description["verdict"]  # type: ignore[union-attr]
    return error


# -- the worker's side ----------------------------------------------------------------------------
def serve(requests_fd: int, answers_fd: int) -> None:
    """The worker's loop: load the implementation, then answer calls until told to exit."""
    import faulthandler

    faulthandler.enable()  # a segfault or abort prints the Python stack to stderr: the crash report's last lines
    os.dup2(2, 1)  # what the framework prints goes to stderr, never into the answers
    requests, answers = Connection(requests_fd, writable=False), Connection(answers_fd, readable=False)
    implementation: Any = None
    while True:
        try:
            request = requests.recv()
        except EOFError:
            return
        if request[0] == "exit":
            return
        what, name, args, kwargs = request
        try:
            if what == "load":
                implementation = _load(name, kwargs)
                answers.send(("ok", _snapshot(implementation)))
                continue
            if what == "function":
                import importlib

                module_name, function_name = name
                answers.send(_answer(getattr(importlib.import_module(module_name), function_name)(*args, **kwargs)))
                continue
            if what == "returned":
                made_with_args, made_with_kwargs, call_args = args
                result = getattr(implementation, name)(*made_with_args, **made_with_kwargs)(*call_args, **kwargs)
            else:
                result = getattr(implementation, name)(*args, **kwargs)
            answers.send(_answer(result))
        except Exception as exc:  # every exception is the implementation's verdict
            description = describe_exception(exc)
            # Judged here, where the plug-in's own refusal types are the real classes: rebuilt in the
            # parent, a user-named refusal type may not even be importable there.
            judge = getattr(implementation, "judge_exception", None)
            if callable(judge):
                try:
                    description["verdict"] = judge(exc)
                except Exception:  # then the parent judges the rebuilt exception
                    pass
            answers.send(("error", description))


def _load(spec: str | None, options: dict[str, Any]) -> Any:
    from conformance.running.implementations import load_implementation

    return load_implementation(spec, **options)


def _answer(result: Any) -> tuple[str, Any]:
    if callable(result) and not isinstance(result, type):
        return ("callable", None)
    try:
        pickle.dumps(result)
    except Exception as exc:
        return ("error", describe_exception(TypeError(f"the worker cannot send back a {type(result).__name__}: {exc}")))
    return ("ok", result)


def _snapshot(implementation: Any) -> dict[str, Any]:
    """The implementation's plain attributes and the names of its callables. Attributes holding
    functions (a mapping of ops) stay in the worker: the parent must call them there, never here."""
    attributes, callables = {}, []
    for name in dir(implementation):
        if name.startswith("_"):
            continue
        try:
            value = getattr(implementation, name)
        except Exception:  # a property that needs a case
            continue
        if callable(value) and not isinstance(value, type):
            callables.append(name)
            continue
        if _holds_callables(value):
            continue
        try:
            attributes[name] = pickle.dumps(value)
        except Exception:
            continue
    return {"attributes": attributes, "callables": callables}


def _holds_callables(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_callables(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_holds_callables(v) for v in value if not isinstance(v, type))
    return callable(value) and not isinstance(value, type)


def _unpickle_attributes(pickled: dict[str, bytes]) -> dict[str, Any]:
    """Each attribute on its own: one whose class this process cannot import is left out."""
    attributes = {}
    for name, data in pickled.items():
        try:
            attributes[name] = pickle.loads(data)
        except Exception:
            continue
    return attributes


def _own_venv_python(spec: Any) -> str | None:
    """The Python of the built-in ``spec``'s own venv, where it has one (conformance.frameworks)."""
    if not isinstance(spec, str):
        return None
    try:
        from conformance.frameworks import venv_python
    except ImportError:
        return None
    python = venv_python(spec)
    return None if python is None else str(python)


def isolated_factory(timeout: float = DEFAULT_TIMEOUT) -> Callable[..., IsolatedImplementation]:
    """``load_implementation``'s shape, isolated: ``isolated_factory()(spec, **options)``."""
    return lambda spec, **options: IsolatedImplementation(spec, timeout=timeout, **options)
