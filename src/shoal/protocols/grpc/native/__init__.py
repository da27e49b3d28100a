"""The native framing: the gRPC port's services on a plain framed TCP stream.

`frames` is the codec, shared with the SDK's channel; `server` serves the listener's servicers.
Nothing is imported here, so that a client importing the codec loads no server code.
"""
