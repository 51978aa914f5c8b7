"""mxnet `serve` under load: 10,000 requests over 32 connections with no error and bounded memory
(the failure-mode suite's serving part; the 413 and crashed-worker cases are in test_mxnet_serving.py)."""

import concurrent.futures
import http.client
import threading

from smimages.testing.harness import ServingContainer

REQUESTS = 10_000
CONNECTIONS = 32
MEMORY_GROWTH_BOUND_MIB = 64  # what a server may grow by over 10,000 requests: no leak per request


def memory_mib(container):
    stats = container.stats(stream=False)["memory_stats"]
    cache = stats.get("stats", {}).get("cache", 0) or stats.get("stats", {}).get("inactive_file", 0)
    return (stats["usage"] - cache) / 2**20


def hammer(port, body, count):
    """`count` POSTs on one keep-alive-when-possible connection; returns the non-200 answers."""
    errors, conn = [], None
    for _ in range(count):
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/invocations", body, {"Content-Type": "text/csv", "Accept": "text/csv"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or data.count(b",") != 9:
                errors.append((resp.status, data[:200]))
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            errors.append(("exception", repr(e)))
            conn = None
    return errors


def test_10000_requests_over_32_connections_without_error_or_memory_growth(image, trained, mnist):
    _, images, _ = mnist
    body = (",".join(str(int(v)) for v in images[0]) + "\n").encode()
    with ServingContainer(image, trained[1], env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}) as server:
        server.wait_ready()
        assert not hammer(server.port, body, 200)  # warm up: imports, first allocations
        before = memory_mib(server.container)
        lock, done = threading.Lock(), []
        with concurrent.futures.ThreadPoolExecutor(CONNECTIONS) as pool:
            shares = [REQUESTS // CONNECTIONS + (i < REQUESTS % CONNECTIONS) for i in range(CONNECTIONS)]
            futures = [pool.submit(hammer, server.port, body, n) for n in shares]
            for f in concurrent.futures.as_completed(futures, timeout=600):
                with lock:
                    done.extend(f.result())
        assert done == [], done[:5]
        after = memory_mib(server.container)
        assert after - before < MEMORY_GROWTH_BOUND_MIB, (before, after)
        assert server.ping() == 200
