"""The service's end of a worker's socket, on the event loop."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import cast


class Channel(asyncio.Protocol):
    """Messages framed as multiprocessing.Connection frames them (so the worker uses a plain blocking
    Connection), read and written by an asyncio transport, so that neither a big chunk nor a slow
    reader ever blocks the event loop."""

    def __init__(self, on_message: Callable[[memoryview], None], on_lost: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it: no isinstance check.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while not self.closed and len(buffer) >= 4:
            (size,) = struct.unpack_from("!i", buffer)
            start = 4
            if size == -1:  # a frame over 2 GiB: an 8-byte size follows
                if len(buffer) < 12:
                    return
                (size,) = struct.unpack_from("!Q", buffer, 4)
                start = 12
            end = start + size
            if len(buffer) < end:
                return
            with memoryview(buffer) as view, view[start:end] as message:
                self._on_message(message)  # pickle reads the view: no copy of the message
            del buffer[:end]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._on_lost()

    def send(self, payload: bytes) -> None:
        if self.closed or self.transport is None:
            return  # the worker is gone: connection_lost settles its chunks
        size = len(payload)
        header = struct.pack("!i", size) if size <= 0x7FFFFFFF else struct.pack("!iQ", -1, size)
        self.transport.writelines((header, payload))

    def close(self) -> None:
        """Stop delivering messages and drop the socket, unsent data included."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
