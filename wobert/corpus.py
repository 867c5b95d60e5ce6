"""Reading corpora line by line, and spreading work on them over processes.

A corpus is any mix of files and directories (expanded to their files, sorted):

- plain text, one document or paragraph per line;
- JSON lines (``.jsonl`` / ``.json``) whose ``text`` field holds the text;
- either of them gzipped (``.gz``).

Lines are read as bytes and decoded one by one (never ``str.splitlines``: U+2028 occurs
inside real documents). A line that is not UTF-8 or not a JSON object with the text field
is logged with its file and line, counted in a :class:`SkipLog` and skipped, or raises a
``ValueError`` with ``strict=True``. Blank lines are counted as ``empty`` and skipped.
"""
from __future__ import annotations

import gzip
import itertools
import json
import logging
import multiprocessing
import multiprocessing.connection
import queue
import signal
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from wobert.errors import UserError
from wobert.jsonfile import JSON_SUFFIXES

log = logging.getLogger(__name__)

EMPTY = "empty"
NOT_UTF8 = "not UTF-8"
BAD_JSON = "bad JSON"
NO_TEXT = "no text field"

PathLike = str | Path
T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
POLL_SECONDS = 1.0


class Line(NamedTuple):
    """One non-empty text of a corpus and where it comes from (1-based line number)."""

    path: str
    lineno: int
    text: str


class SkipLog:
    """Skipped lines counted by reason, with the first few ``file:line`` of each reason."""

    def __init__(self, max_examples: int = 5) -> None:
        self.max_examples = max_examples
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, reason: str, path: str, lineno: int, detail: str = "") -> None:
        """Count one skipped line; the first ``max_examples`` of a reason are kept and logged."""
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            where = f"{path}:{lineno}"
            examples.append(where)
            if reason != EMPTY:
                log.warning("skipped %s: %s%s", where, reason, f" ({detail})" if detail else "")

    def merge(self, other: SkipLog) -> SkipLog:
        """Add another log's counts and examples (e.g. from a worker process) to this one."""
        self.counts.update(other.counts)
        for reason, examples in other.examples.items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(examples[: self.max_examples - len(mine)])
        return self

    @property
    def total(self) -> int:
        """Number of skipped lines."""
        return sum(self.counts.values())

    @property
    def errors(self) -> int:
        """Number of skipped lines that were not merely empty."""
        return self.total - self.counts[EMPTY]

    def to_dict(self) -> dict[str, Any]:
        """Counts and examples by reason, sorted, for JSON reports."""
        return {r: {"lines": self.counts[r], "examples": self.examples.get(r, [])}
                for r in sorted(self.counts)}

    def summary(self) -> str:
        """One line such as ``skipped 3 lines: 2 empty, 1 not UTF-8 (a.txt:7)``."""
        if not self.total:
            return "skipped no lines"
        parts = []
        for reason in sorted(self.counts):
            where = "" if reason == EMPTY else f" ({', '.join(self.examples.get(reason, []))})"
            parts.append(f"{self.counts[reason]} {reason}{where}")
        return f"skipped {self.total} lines: " + ", ".join(parts)


def _as_list(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def expand_paths(paths: PathLike | Iterable[PathLike]) -> list[Path]:
    """Files of ``paths``: files as given, directories as their files (recursive, sorted,
    hidden ones left out). A path that does not exist raises ``FileNotFoundError``."""
    files = []
    for path in _as_list(paths):
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.is_file()
                     and not any(part.startswith(".") for part in p.relative_to(path).parts)]
            files.extend(sorted(found, key=lambda p: p.relative_to(path).as_posix()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"corpus file not found: {path}")
    return files


def is_json_lines(path: PathLike) -> bool:
    """Whether ``path`` names JSON lines (``.jsonl``/``.json``, optionally ``.gz``)."""
    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith(JSON_SUFFIXES)


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _read_file(path: Path, strict: bool, skips: SkipLog, text_field: str) -> Iterator[Line]:
    name, json_lines = str(path), is_json_lines(path)

    def skip(lineno: int, reason: str, detail: str) -> None:
        if strict:
            raise UserError(f"{name}:{lineno}: {reason} ({detail})")
        skips.add(reason, name, lineno, detail)

    with _open_bytes(path) as f:
        try:
            for lineno, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    skip(lineno, NOT_UTF8, f"{err.reason} at byte {err.start}")
                    continue
                if lineno == 1:
                    text = text.removeprefix("\ufeff")
                if not text.strip():
                    skips.add(EMPTY, name, lineno)
                    continue
                if json_lines:
                    try:
                        record = json.loads(text)
                    except json.JSONDecodeError as err:
                        skip(lineno, BAD_JSON, f"{err.msg} at column {err.colno}")
                        continue
                    text = record.get(text_field) if isinstance(record, dict) else None
                    if not isinstance(text, str):
                        skip(lineno, NO_TEXT, f"no string field {text_field!r}")
                        continue
                    if not text.strip():
                        skips.add(EMPTY, name, lineno)
                        continue
                yield Line(name, lineno, text.strip())
        except (gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise UserError(f"{name}: cannot read gzip data ({err})") from err


def iter_lines(
    paths: PathLike | Iterable[PathLike],
    *,
    strict: bool = False,
    skips: SkipLog | None = None,
    text_field: str = "text",
) -> Iterator[Line]:
    """The non-empty lines of the corpus files (stripped), in order.

    Missing files raise ``FileNotFoundError`` at once, before anything is read. Skipped
    lines are counted in ``skips`` (a fresh, discarded log when None).
    """
    files = expand_paths(paths)
    skips = SkipLog() if skips is None else skips

    def lines() -> Iterator[Line]:
        for path in files:
            yield from _read_file(path, strict, skips, text_field)

    return lines()


def chunked(items: Iterable[T], size: int, weight: Callable[[T], int] | None = None) -> Iterator[list[T]]:
    """Consecutive lists of ``items``; each closes once its total weight reaches ``size``
    (weight: 1 per item by default, e.g. ``len`` for texts)."""
    chunk: list[T] = []
    total = 0
    for item in items:
        chunk.append(item)
        total += 1 if weight is None else weight(item)
        if total >= size:
            yield chunk
            chunk, total = [], 0
    if chunk:
        yield chunk


class WorkerLost(UserError):
    """A worker process ended without a word, e.g. killed by the out-of-memory killer."""


def worker_context() -> Any:
    """How worker processes start: ``fork`` (cheap: they inherit what was loaded), but
    ``spawn`` once TensorFlow is loaded, whose threads a forked child would inherit half-way."""
    return multiprocessing.get_context("spawn" if "tensorflow" in sys.modules else "fork")


class _Failed(NamedTuple):
    """What a worker sends back when its work raised: the parent raises ``error``."""

    error: BaseException


def _worker_main(body: Callable[..., None], args: tuple, tasks: Any, send: Any) -> None:
    """A worker: Ctrl-C is the parent's to handle; an exception goes back to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        body(*args, tasks, send.send)
    except BaseException as err:  # the parent raises it
        try:
            send.send(_Failed(err))
        except Exception:  # an exception that does not pickle
            send.send(_Failed(RuntimeError(f"{type(err).__name__}: {err}")))
        raise SystemExit(1) from None


def _exit_reason(code: int) -> str:
    if code >= 0:
        return f"exited with status {code}"
    name = signal.Signals(-code).name
    return f"was killed by {name}" + (" (as the out-of-memory killer does)" if name == "SIGKILL" else "")


class _Workers:
    """``count`` processes running ``body(*args, tasks, send)``: one task queue for all, a pipe
    back from each. A worker that dies raises ``WorkerLost`` in :meth:`receive` (never a
    hang: the parent waits on the pipes and on the processes themselves)."""

    def __init__(self, count: int, body: Callable[..., None], args: tuple, queue_size: int) -> None:
        ctx = worker_context()
        self.tasks = ctx.Queue(queue_size)
        self.processes: list = []
        self.pipes: dict[Any, Any] = {}  # process sentinel -> its open pipe
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # until a worker ignores it
        try:
            for _ in range(count):
                receive, send = ctx.Pipe(duplex=False)
                process = ctx.Process(target=_worker_main, args=(body, args, self.tasks, send), daemon=True)
                process.start()
                send.close()
                self.processes.append(process)
                self.pipes[process.sentinel] = receive
        except BaseException:
            self.close(finished=False)
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.running = {p.sentinel: p for p in self.processes}

    def receive(self, timeout: float = POLL_SECONDS) -> list:
        """The messages that arrive within ``timeout`` seconds (0: those already there)."""
        messages = []
        waiting = list(self.pipes.values()) + list(self.running)
        for ready in multiprocessing.connection.wait(waiting, timeout):
            if ready in self.running:
                continue
            sentinel = next(k for k, v in self.pipes.items() if v is ready)
            try:
                message = ready.recv()  # type: ignore[call-arg]  # a Connection here
            except EOFError:  # the worker ended (or died half-way through a message)
                del self.pipes[sentinel]
                continue
            if isinstance(message, _Failed):
                raise message.error
            messages.append(message)
        for sentinel, process in list(self.running.items()):
            if process.exitcode is None or sentinel in self.pipes:
                continue  # still running, or its last words are still to be read
            del self.running[sentinel]
            if process.exitcode:
                raise WorkerLost(f"worker process {process.pid} {_exit_reason(process.exitcode)}; "
                                 "the work it held is lost")
        return messages

    def put(self, item: Any) -> None:
        """Queue ``item``, waiting for room; raises if a worker dies meanwhile."""
        while True:
            try:
                self.tasks.put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                self.receive(0)

    def close(self, finished: bool) -> None:
        """Wait for the workers to end (``finished``) or stop them, dropping queued tasks."""
        if not finished:
            self.tasks.cancel_join_thread()
            for process in self.processes:
                if process.is_alive():
                    process.terminate()
        for process in self.processes:
            process.join()
        for pipe in self.pipes.values():
            pipe.close()
        self.tasks.close()


def _map_worker(func: Callable, initializer: Callable | None, initargs: tuple, tasks: Any,
                send: Callable) -> None:
    if initializer is not None:
        initializer(*initargs)
    for index, chunk in iter(tasks.get, None):
        send((index, func(chunk)))


def map_ordered(
    func: Callable[[T], R],
    chunks: Iterable[T],
    *,
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> Iterator[R]:
    """``func`` over ``chunks``, results in input order (so reductions are deterministic).

    ``workers <= 1`` runs in this process; otherwise ``workers`` processes (see
    :func:`worker_context`), with at most two chunks per worker in flight so memory stays
    bounded. ``initializer`` runs once per process (its arguments are inherited with fork,
    pickled with spawn). A worker that dies raises :class:`WorkerLost`; an exception in
    ``func`` is raised here; either way, and when the caller stops early, the workers stop.
    """
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from map(func, chunks)
        return
    pool = _Workers(workers, _map_worker, (func, initializer, initargs), queue_size=2 * workers)
    finished = False
    try:
        results: dict[int, R] = {}
        todo = enumerate(chunks)
        sent = done = 0
        while True:
            for index, chunk in itertools.islice(todo, 2 * workers - (sent - done)):
                pool.put((index, chunk))
                sent = index + 1
            if done == sent:
                break
            while done not in results:
                results.update(pool.receive())
            yield results.pop(done)
            done += 1
        for _ in range(workers):
            pool.put(None)
        while pool.running:
            pool.receive()
        finished = True
    finally:
        pool.close(finished)


def _fold_worker(step: Callable, initial: Callable, initializer: Callable | None, initargs: tuple,
                 tasks: Any, send: Callable) -> None:
    if initializer is not None:
        initializer(*initargs)
    state = initial()
    for chunk in iter(tasks.get, None):
        state = step(state, chunk)
    send(state)


def fold_chunks(
    step: Callable[[S, T], S],
    chunks: Iterable[T],
    initial: Callable[[], S],
    *,
    workers: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> list[S]:
    """Fold ``chunks`` into one state per process (``state = step(state, chunk)`` from
    ``initial()``) and return the states, for the caller to merge.

    ``workers`` counts this process: it reads ``chunks``, keeps ``workers - 1`` worker
    processes fed (two chunks queued each), folds the chunks that find no room itself, and
    at the end takes back the chunks still queued.
    Only the final states come back, so merging costs nothing per chunk. Which process folds
    which chunk varies: merge with an operation that ignores order (adding counts) and the
    result does not depend on ``workers``. A chunk may not be None. A worker that dies
    raises :class:`WorkerLost` (its state is lost).
    """
    if initializer is not None:
        initializer(*initargs)
    state = initial()
    if workers <= 1:
        for chunk in chunks:
            state = step(state, chunk)
        return [state]
    pool = _Workers(workers - 1, _fold_worker, (step, initial, initializer, initargs),
                    queue_size=2 * (workers - 1))
    states: list[S] = [state]
    try:
        for chunk in chunks:
            try:
                pool.tasks.put_nowait(chunk)
            except queue.Full:
                states[0] = step(states[0], chunk)
                pool.receive(0)  # a worker that died stops the fold now, not at the end
        while True:  # take back chunks still queued rather than wait for the workers
            try:
                states[0] = step(states[0], pool.tasks.get_nowait())
            except queue.Empty:
                break
        for _ in range(workers - 1):
            pool.put(None)
        while len(states) < workers:
            states.extend(pool.receive())
        return states
    finally:
        pool.close(finished=len(states) == workers)
