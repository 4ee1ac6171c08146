"""gRPC servicers: they translate between protobuf and the engine, nothing more.

Import what you need from the submodules (``convert``, ``status``, ``names`` are
free of the engine, so the client uses them too; ``servicers`` wires the server).
"""
