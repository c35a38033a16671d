"""The wire protocol, without sockets: the frames clients send and the events they get
(`frames`: validation, encoding) and the AsyncAPI document that describes them (`asyncapi`).

Both roles use it. It may import the kernel (`chatcore.errors`, `chatcore.models`, ...), never
`chatcore.server` or `chatcore.client`.
"""
