"""Free ports for servers the tests and tools start side by side (a local endpoint, moto, a
registry): SDK 2.x local mode would otherwise publish every endpoint on 8080."""

import socket


def free_port(host="127.0.0.1"):
    """A port nothing listens on now at `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
