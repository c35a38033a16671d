"""The server's live side: a WebSocket session's state (`session`), what each frame does
(`live`), the hub that routes events to the sessions of this node and every other (`hub`,
`fanout`, `ordering`), cluster presence (`cluster`, `presence`) and the block sets typing and
receipts respect (`blocklist`)."""
