"""A client that sees a streamed answer as SageMaker's InvokeEndpointWithResponseStream does: each
HTTP/1.1 chunk on its own, when it arrives, and whether the stream ended with its last (empty)
chunk or was cut off.

    answer = stream(port, "/invocations", b"go", {"Content-Type": "text/plain"})
    assert answer.complete and [data for _, data in answer.chunks] == [b"piece 0", ...]
"""

import socket
import time
from dataclasses import dataclass, field


@dataclass
class Streamed:
    status: int
    headers: dict  # lower-case names
    chunks: list = field(default_factory=list)  # (seconds after the request was sent, bytes)
    complete: bool = False  # ended with the last chunk; False: cut off, or the client left

    @property
    def body(self):
        return b"".join(data for _, data in self.chunks)


def stream(port, path, body, headers, keep=None, timeout_s=60):
    """POST `body` and read the answer chunk by chunk; with `keep`, leave (close the connection)
    after that many chunks, as a client that goes away."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    try:
        head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Content-Length": len(body)}.items())
        started = time.monotonic()
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\n{head}\r\n".encode() + body)
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        answer = Streamed(status, _headers(reader))
        if answer.headers.get("transfer-encoding") != "chunked":
            answer.chunks.append((time.monotonic() - started, reader.read(int(answer.headers.get("content-length", 0)))))
            answer.complete = True
            return answer
        while keep is None or len(answer.chunks) < keep:
            size_line = reader.readline()
            if not size_line.strip():
                return answer  # closed before the last chunk: cut off
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                answer.complete = reader.readline() == b"\r\n"
                return answer
            data = reader.read(size)
            reader.read(2)
            answer.chunks.append((time.monotonic() - started, data))
        return answer
    finally:
        sock.close()


def _headers(reader):
    found = {}
    while (line := reader.readline().decode("latin-1").strip()):
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return found
