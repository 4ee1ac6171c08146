"""A bare grpc.aio ``EventService`` that stores nothing: ``PublishEvents`` answers each
event with itself. The gRPC + protobuf ceiling of the publish path, served on uvloop
like the real server and driven by the same ``bench._publisher`` client.

``python -m bench._echo`` prints ``listening on 127.0.0.1:PORT`` and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import uvloop

from neoactions.v1 import events_pb2, events_pb2_grpc


class Echo(events_pb2_grpc.EventServiceServicer):
    async def PublishEvents(
        self, request: events_pb2.PublishEventsRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.PublishEventsResponse:
        return events_pb2.PublishEventsResponse(
            results=[events_pb2.PublishEventResponse(event=event) for event in request.events]
        )


async def serve() -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    events_pb2_grpc.add_EventServiceServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    uvloop.run(serve())
