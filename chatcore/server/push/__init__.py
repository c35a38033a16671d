"""Pushes to members with no live session: who gets one (`routing`), what each user's settings
allow (`rules`, the core's `chatcore_notify` plugin), the durable queue's dispatcher
(`dispatch`), and what adapters share (`endpoint`: provider answers as results, a safe client;
`ssrf`: which endpoint addresses may be called; `off`: the "pushes are off" log line)."""
