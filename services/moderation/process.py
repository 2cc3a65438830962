"""A Scanner in a child process that its caller (the Router) owns: a check without a Ray hop and
without the caller's GIL.

Why a process (docs/benchmark.md, experiments C and D): the Router -> InputModeration hop costs
~40 ms of each check on a busy 2-core host; the scanner inside the Router's own process saved that
but its Python work (normalising, windows, tokenising) held the GIL of the process that relays every
token. Here the child does that work; a conversation crosses a pipe in microseconds.

Calls that arrive while the child works go to it together as its next batch (no batching timer);
the child answers each item as soon as it is scored, so the first caller of a batch does not wait
for the last (a burst of windows that end at the same engine step queues here: session 28).
An item that raises fails its own caller only.
A child that dies or hangs fails the calls in flight (the guard then fails them closed) and is
started again, at most once per `restart_backoff_s`; one that died while idle is started again by
the next call, which waits for the load.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("chatgate.moderation")

DEFAULT_FACTORY = "services.moderation.process:scanner_from_settings"
_METHODS = ("scan_inputs", "scan_answers")
PROCESS_TITLE = "chatgate::ScannerProcess"


class ScannerUnavailable(RuntimeError):
    """The scanner process could not answer (failed to load, died, hung, or is restarting)."""


class ScanFailed(RuntimeError):
    """The scanner raised on one batch; the process lives on."""


def scanner_from_settings(settings_json: str) -> Any:
    """The child's scanner: the built artefact named by ModerationSettings (as JSON: picklable)."""
    from services.config import ModerationSettings
    from services.moderation.scan import load_scanner

    return load_scanner(ModerationSettings.model_validate_json(settings_json))


def _serve(conn, factory: str, settings_json: str) -> None:
    """Child main loop: load once, then answer (method, items) with (ok, value) until the pipe closes."""
    import importlib

    try:
        import setproctitle  # ships with Ray; names the child in ps/top and the bench's CPU table

        setproctitle.setproctitle(PROCESS_TITLE)
    except ImportError:
        pass
    try:
        module, name = factory.split(":")
        scanner = getattr(importlib.import_module(module), name)(settings_json)
        conn.send((True, os.getpid()))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails closed
        conn.send((False, f"scanner failed to load: {exc!r}"))
        return
    while True:
        try:
            method, items = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        score = getattr(scanner, method)
        for item in items:  # one reply per item, sent as soon as it is scored
            try:
                reply = (True, score([item])[0])
            except Exception as exc:  # noqa: BLE001 - one bad item must not end the process
                reply = (False, f"{method} failed: {exc!r}")
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):  # the parent is gone
                return


class _Child:
    """One started process and its pipe; every call blocks (run it in a thread)."""

    def __init__(self, factory: str, settings_json: str):
        ctx = multiprocessing.get_context("spawn")  # never fork a process that runs threads (Ray, asyncio)
        self.conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child_conn, factory, settings_json), daemon=True,
                                name="chatgate-scanner")
        self.proc.start()
        child_conn.close()
        self.loaded = False

    def call(self, method: str, items: list, timeout_s: float, deliver: Callable[[int, bool, Any], None]) -> None:
        """Sends a batch; `deliver(i, ok, value)` gets item i's reply as soon as the child sends it."""
        if not self.loaded:  # the first call waits for the load (the child's first message)
            ok, value = self._reply(timeout_s)
            if not ok:
                raise ScannerUnavailable(value)
            self.loaded = True
        try:
            self.conn.send((method, items))
        except (BrokenPipeError, OSError) as exc:
            raise ScannerUnavailable(f"scanner process died (exit code {self.proc.exitcode})") from exc
        for i in range(len(items)):
            deliver(i, *self._reply(timeout_s))

    def _reply(self, timeout_s: float) -> tuple[bool, Any]:
        try:
            if not self.conn.poll(timeout_s):
                raise ScannerUnavailable(f"scanner process gave no answer in {timeout_s:.0f} s")
            return self.conn.recv()
        except (EOFError, OSError) as exc:
            raise ScannerUnavailable(f"scanner process died (exit code {self.proc.exitcode})") from exc

    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class ScannerProcess:
    """`await scan_input(messages)` / `await scan_answer(request, window)`: one item each, scored in
    the child with whatever else is waiting (at most `max_batch` items a call)."""

    def __init__(self, settings_json: str, factory: str = DEFAULT_FACTORY, max_batch: int = 32,
                 call_timeout_s: float = 60.0, restart_backoff_s: float = 5.0):
        self.settings_json, self.factory = settings_json, factory
        self.max_batch, self.call_timeout_s, self.restart_backoff_s = max_batch, call_timeout_s, restart_backoff_s
        self._pending: dict[str, list[tuple[Any, asyncio.Future]]] = {m: [] for m in _METHODS}
        self._drainer: asyncio.Task | None = None
        self._started_at = time.monotonic()
        self._child: _Child | None = _Child(factory, settings_json)  # loads while the caller starts up
        self.restarts = 0

    async def scan_input(self, messages: Sequence[str]) -> dict[str, float]:
        return await self._submit("scan_inputs", list(messages))

    async def scan_answer(self, request: str, window: str) -> dict[str, float]:
        return await self._submit("scan_answers", (request, window))

    def alive(self) -> bool:
        return self._child is not None and self._child.alive()

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child = None

    async def _submit(self, method: str, item: Any) -> dict[str, float]:
        future = asyncio.get_running_loop().create_future()
        self._pending[method].append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        while any(self._pending.values()):
            for method in _METHODS:
                queue = self._pending[method]
                batch, self._pending[method] = queue[:self.max_batch], queue[self.max_batch:]
                batch = [(item, fut) for item, fut in batch if not fut.done()]  # a caller that timed out
                if batch:
                    await self._run(method, batch)

    async def _run(self, method: str, batch: list[tuple[Any, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()

        def deliver(i: int, ok: bool, value: Any) -> None:  # from the call's thread, per item
            loop.call_soon_threadsafe(_settle, batch[i][1], ok, value)

        try:
            child = self._ready_child()
            await asyncio.to_thread(child.call, method, [item for item, _ in batch], self.call_timeout_s, deliver)
        except Exception as exc:  # noqa: BLE001 - every caller in the batch not yet answered gets it
            if isinstance(exc, ScannerUnavailable) and self._child is not None:
                log.warning("scanner process failed (%s); it is started again", exc)
                self._child.kill()
                self._child = None
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)

    def _ready_child(self) -> _Child:
        if self._child is not None and not self._child.alive():
            # Died between calls (killed, out of memory): nothing was in flight, so start it again
            # now and let this batch wait for the load instead of failing it.
            log.warning("scanner process exited (code %s) while idle; it is started again", self._child.proc.exitcode)
            self._child.kill()
            self._child = None
        if self._child is None:
            if time.monotonic() - self._started_at < self.restart_backoff_s:
                raise ScannerUnavailable("scanner process is restarting")
            self._started_at = time.monotonic()
            self._child = _Child(self.factory, self.settings_json)
            self.restarts += 1
        return self._child


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    """One item's reply to its caller (unless the caller gave up meanwhile)."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(ScanFailed(value))
