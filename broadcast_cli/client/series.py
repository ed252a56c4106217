"""A series of messages published one batch at a time, each made as it goes: ``broadcast publish --count N``.

::

    messages = TemplatedMessages.read("orders", "tick", '{"n": {{count}}, "at": {{iso}}}')
    series = Series(200_000, messages, rate=500.0)
    async with HttpPublisher(url) as publisher:
        await series.run(publisher, stop=stop)
    print(series.published, "of", series.total)

Messages are made just before their batch is sent (so ``{{timestamp}}`` is the
time it went, not the time the run started), in batches of whatever the pacing
(:mod:`.pacing`) says is due, at most the publisher's ``max_batch``. Setting
*stop* ends the run between two batches: the batch in flight is answered first,
so :attr:`Series.published` counts exactly the messages the server acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from ..message import PublishRequest
from .http import Publisher, Receipt
from .pacing import AsFastAsPossible, Pacing, Pause, Rate
from .publish import make_request, parse_json
from .templates import Template, Values

__all__ = ["Series", "TemplatedMessages"]


class TemplatedMessages:
    """Message *index* of a run, its channel, event and payload templates filled (see :mod:`.templates`).

    Make it with :meth:`read`, which reads the templates and raises
    :class:`~broadcast_cli.exceptions.InvalidRequest` for a wrong placeholder
    before anything is sent. Calling it validates the message it makes, as
    :func:`~.publish.make_request` does.
    """

    def __init__(
        self,
        channel: Template,
        event: Template,
        payload: Template | None,
        *,
        origin: str | None = None,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.channel = channel
        self.event = event
        self.payload = payload
        self.origin = origin
        self._rng = rng if rng is not None else random.Random()
        self._clock_ns = clock_ns
        self._fixed_payload: Any = None
        if payload is not None and payload.fixed:
            self._fixed_payload = parse_json(payload.source)

    @classmethod
    def read(
        cls,
        channel: str,
        event: str,
        payload: str | None,
        *,
        origin: str | None = None,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> TemplatedMessages:
        """The messages of *channel*, *event* and *payload* (JSON text, or ``None`` for null) as templates."""
        return cls(
            Template.text(channel, "the channel"),
            Template.text(event, "the event"),
            None if payload is None else Template.json(payload, "the payload"),
            origin=origin,
            rng=rng,
            clock_ns=clock_ns,
        )

    def __call__(self, index: int) -> PublishRequest:
        """Message number *index* (from 0)."""
        values = Values(index, self._clock_ns(), self._rng)
        payload = self._fixed_payload
        if self.payload is not None and not self.payload.fixed:
            payload = parse_json(self.payload.render(values), f"the payload with {{{{count}}}} = {index + 1}")
        return make_request(self.channel.render(values), self.event.render(values), payload, origin=self.origin)


class Series:
    """*total* messages, message *i* being ``make(i)``, published in order at a pace.

    *rate* (messages per second, on an absolute schedule) or *pause* (seconds
    after each answer, one message at a time) paces them; neither: as fast as
    the server answers. *clock* is ``time.monotonic``, for the pacing.
    """

    def __init__(
        self,
        total: int,
        make: Callable[[int], PublishRequest],
        *,
        rate: float | None = None,
        pause: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total < 1:
            raise ValueError(f"a series has at least one message, not {total}")
        if rate is not None and pause is not None:
            raise ValueError("give a rate or a pause, not both")
        self.total = total
        """How many messages the series has."""
        self.published = 0
        """How many the server has acknowledged so far."""
        self.stopped = False
        """Whether *stop* ended the run before every message was published."""
        self.in_flight = 0
        """Messages sent and not answered yet (if the run is cancelled now, they may or may not be published)."""
        self._make = make
        self._rate = rate
        self._pause = pause
        self._clock = clock

    def _pacing(self) -> Pacing:
        now = self._clock()
        if self._rate is not None:
            return Rate(self._rate, now)
        if self._pause is not None:
            return Pause(self._pause, now)
        return AsFastAsPossible()

    async def run(
        self,
        publisher: Publisher,
        *,
        stop: asyncio.Event | None = None,
        on_batch: Callable[[list[Receipt]], object] | None = None,
    ) -> int:
        """Publish the series through *publisher*; return how many messages were acknowledged.

        *on_batch(receipts)* is called after each answer. Setting *stop* ends
        the run after the batch in flight (:attr:`stopped` then says so). The
        publisher's errors are raised as they come; :attr:`published` still
        says how many went before.
        """
        pacing = self._pacing()
        sent = 0
        while sent < self.total:
            if stop is not None and stop.is_set():
                self.stopped = True
                break
            now = self._clock()
            count = min(pacing.due(now, sent), self.total - sent, publisher.max_batch)
            if count <= 0:
                await _wait(stop, pacing.next_at(sent) - now)
                continue
            requests = [self._make(index) for index in range(sent, sent + count)]
            self.in_flight = count
            receipts = await publisher.publish_many(requests)
            self.in_flight = 0
            sent += count
            self.published += len(receipts)
            pacing.answered(self._clock(), sent)
            if on_batch is not None:
                on_batch(receipts)
        return self.published


async def _wait(stop: asyncio.Event | None, seconds: float) -> None:
    """Wait *seconds*, or until *stop* is set."""
    if stop is None:
        await asyncio.sleep(max(0.0, seconds))
        return
    try:
        async with asyncio.timeout(max(0.0, seconds)):
            await stop.wait()
    except TimeoutError:
        pass
