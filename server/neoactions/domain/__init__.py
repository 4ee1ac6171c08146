"""The domain both the server and the clients speak: the model (tenants, events, actions,
executions, updates), the one error tree with its gRPC status codec, resource names, and the
conversions between the domain and the protobuf contract. It imports nothing of the server."""
