"""The client role (a chat app's engine, device storage and media cache): not built yet.

It will import the kernel and `chatcore.protocol`, never `chatcore.server`.
"""
