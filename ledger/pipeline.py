"""Prepare chunk n+1 of an input while the caller books chunk n: in a forked process, a thread, or inline.

`prepared_chunks(items, chunk_size, prepare, ahead)` cuts an iterable of items into chunks
and yields `prepare(chunk)` for each, in order. Where `prepare` runs:

- `"process"`: a forked child process reads the items (the iterator is inherited by the
  fork) and runs `prepare`, one chunk ahead of the caller. `prepare`'s result crosses a pipe
  pickled, so it should be compact (numpy arrays, joined text; `ledger.ingest.CheckedBatch`
  packs itself). Reading, parsing and checking then use the second core instead of sharing
  the booking process's GIL, which a thread does (it gains nothing on a busy machine).
- `"auto"`: the first chunk is read and prepared here; a child is forked only when the input
  holds more than that chunk (forking costs ~10–30 ms, more than a small file's whole work).
  Without `os.fork` (not POSIX) it is `"thread"`.
- `"thread"`: a worker thread, one chunk ahead (what the ingest did before the process).
- `"none"`: in the caller's thread.

Every mode yields the same results in the same order. Memory stays bounded: at most one
prepared chunk waits (in the thread's queue, or in the child blocked on the pipe). An
exception while reading or preparing (an unreadable line, a disk error) reaches the caller
after the chunks before it, as the same exception type; a caller that stops early (an error
while booking, `close()`) stops the thread or ends the child, which reads no further.

Why `os.fork` and not `multiprocessing`: a `multiprocessing.Process` closes `sys.stdin` in
the child before running its target, and `ansinh ingest -` reads its events from stdin.
The child here runs only the reading and `prepare` and leaves with `os._exit` (no `atexit`
handlers, no buffered output flushed twice, no database connection of the parent's touched:
it never uses them, and never closes them).
"""
from __future__ import annotations

import gc
import os
import pickle
import queue
import signal
import threading
import traceback
from itertools import chain, islice
from typing import Callable, Iterable, Iterator, Literal, TypeVar

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")
Ahead = Literal["auto", "process", "thread", "none"]
AHEAD_MODES = ("auto", "process", "thread", "none")
CHUNKS_AHEAD = 1  # prepared chunks waiting for the caller (memory: at most three chunks at once)
_LENGTH_BYTES = 8
_PIPE_BYTES = 1 << 20  # the pipe's buffer (Linux F_SETPIPE_SZ; the default limit): the child writes ahead of the reader
_F_SETPIPE_SZ = 1031


class ReaderEnded(RuntimeError):
    """The child process that prepared chunks ended without a result or an error (killed, out of memory)."""


def can_fork() -> bool:
    return hasattr(os, "fork")


def prepared_chunks(items: Iterable[Item], chunk_size: int, prepare: Callable[[list[Item]], Prepared],
                    ahead: Ahead = "auto") -> Iterator[Prepared]:
    """`prepare(chunk)` for each chunk of `chunk_size` items, in order (see the module's docstring)."""
    assert chunk_size >= 1, "a chunk holds at least one item"
    assert ahead in AHEAD_MODES, f"ahead is one of {AHEAD_MODES}, not {ahead!r}"
    if ahead in ("auto", "process") and not can_fork():
        ahead = "thread"
    if ahead == "none":
        return (prepare(chunk) for chunk in chunks(items, chunk_size))
    if ahead == "thread":
        return _in_thread(items, chunk_size, prepare)
    if ahead == "process":
        return _in_process(iter(items), chunk_size, prepare)
    return _auto(items, chunk_size, prepare)


def chunks(items: Iterable[Item], chunk_size: int) -> Iterator[list[Item]]:
    reading = iter(items)
    while chunk := list(islice(reading, chunk_size)):
        yield chunk


def _auto(items: Iterable[Item], chunk_size: int, prepare: Callable[[list[Item]], Prepared]) -> Iterator[Prepared]:
    """The first chunk here; the rest in a forked child only if there is a rest (forked before the
    first chunk is prepared, so the child reads the second while this process works on the first)."""
    reading = iter(items)
    first = list(islice(reading, chunk_size))
    if not first:
        return
    try:
        after = next(reading)  # one item past the first chunk says whether a child is worth forking
    except StopIteration:
        yield prepare(first)
        return
    except Exception:  # the input failed just past the first chunk: that chunk first, then the error
        yield prepare(first)
        raise
    child = _Child(chain((after,), reading), chunk_size, prepare)
    try:
        yield prepare(first)
        del first
        yield from child
    finally:
        child.close()


def _in_process(reading: Iterator[Item], chunk_size: int,
                prepare: Callable[[list[Item]], Prepared]) -> Iterator[Prepared]:
    child = _Child(reading, chunk_size, prepare)
    try:
        yield from child
    finally:
        child.close()


class _Child:
    """A forked child that reads `reading` and sends `prepare(chunk)` for each chunk down a pipe.

    Forked when made; the parent never touches `reading` again (the child has its own copy of
    it, and of any open file behind it). Iterate it for the prepared chunks; `close()` always
    (it ends a child still working and reaps it).
    """

    def __init__(self, reading: Iterator[Item], chunk_size: int, prepare: Callable[[list[Item]], Prepared]) -> None:
        read_end, write_end = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(write_end, _F_SETPIPE_SZ, _PIPE_BYTES)
        except (ImportError, OSError):  # not Linux, or over /proc/sys/fs/pipe-max-size: the default buffer
            pass
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:
            os.close(read_end)
            _child(reading, chunk_size, prepare, write_end)  # never returns
        os.close(write_end)
        self.pid: int | None = pid
        self.pipe = open(read_end, "rb")
        self.finished = False

    def __iter__(self) -> Iterator[Prepared]:
        while True:
            kind, value = self._receive()
            if kind == "end":
                self.finished = True
                return
            if kind == "error":
                self.finished = True
                raise value
            yield value

    def _receive(self) -> tuple:
        head = self.pipe.read(_LENGTH_BYTES)
        if len(head) == _LENGTH_BYTES:
            length = int.from_bytes(head, "little")
            data = self.pipe.read(length)
            if len(data) == length:
                return pickle.loads(data)
        status = self._reap()
        self.finished = True
        raise ReaderEnded(f"the process reading the input ended before the input did (wait status {status})")

    def close(self) -> None:
        if self.pid is None:
            return
        if not self.finished:  # the caller stopped early: the child reads no further
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.pipe.close()  # a child still writing gets a broken pipe and leaves
        self._reap()

    def _reap(self) -> int | None:
        if self.pid is None:
            return None
        _pid, status = os.waitpid(self.pid, 0)
        self.pid = None
        return status


def _child(reading: Iterator[Item], chunk_size: int, prepare: Callable[[list[Item]], Prepared],
           write_end: int) -> None:
    """The child's whole life: read, prepare, send; then `os._exit` (never return into the parent's code)."""
    status = 0
    try:
        gc.disable()  # the chunks' objects hold no cycles; the child's life is a few chunks' work
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends the child
        with open(write_end, "wb") as pipe:
            try:
                for chunk in chunks(reading, chunk_size):
                    _send(pipe, ("chunk", prepare(chunk)))
                    del chunk
                _send(pipe, ("end", None))
            except BrokenPipeError:  # the parent stopped reading
                return
            except BaseException as error:  # noqa: BLE001 - every failure is the parent's to raise
                error.add_note("(raised in the process reading the input:\n"
                               + "".join(traceback.format_exception(error)).rstrip() + ")")
                _send(pipe, ("error", portable(error)))
    except BaseException:  # noqa: BLE001 - nothing may escape into the parent's stack in the child
        status = 1
    finally:
        os._exit(status)


def portable(error: BaseException) -> BaseException:
    """`error` if it survives pickling, else one of the same broad kind with the same text.

    The caller tells errors apart by kind (an `OSError` or a `ValueError` is an unreadable
    input; anything else is a bug), so the kind is what must cross the pipe.
    """
    try:
        pickle.loads(pickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL))
        return error
    except Exception:  # noqa: BLE001 - any failure to pickle or unpickle means "not as it is"
        text = f"{type(error).__name__}: {error}"
        for kind in (OSError, ValueError, KeyboardInterrupt):
            if isinstance(error, kind):
                return kind(text)
        return RuntimeError(text)


def _send(pipe, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(len(data).to_bytes(_LENGTH_BYTES, "little"))
    pipe.write(data)
    pipe.flush()


# -- a thread --------------------------------------------------------------------------------------

_END = object()


def _in_thread(items: Iterable[Item], chunk_size: int,
               prepare: Callable[[list[Item]], Prepared]) -> Iterator[Prepared]:
    """`prepare(chunk)` in input order, read and prepared by a worker thread one chunk ahead."""
    ready: queue.Queue = queue.Queue(maxsize=CHUNKS_AHEAD)
    stop = threading.Event()

    def produce() -> None:
        try:
            reading = iter(items)
            while not stop.is_set():  # checked before each chunk is read: a stopped caller reads no more
                chunk = list(islice(reading, chunk_size))
                if not chunk:
                    ready.put(_END)
                    return
                ready.put(prepare(chunk))
        except BaseException as error:  # handed to the caller's side, which raises it
            ready.put(error)

    worker = threading.Thread(target=produce, name="ansinh-ingest-check", daemon=True)
    worker.start()
    try:
        while True:
            got = ready.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        stop.set()
        while worker.is_alive():  # let a blocked put finish, then the worker sees `stop`
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()
