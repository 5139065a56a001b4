"""Serve the fake upstream until interrupted, for trying a provider by hand or from a benchmark:

    .venv/bin/python -m turnstop_local.fake_upstream --port 8099 \\
        --model 'slow={"output_tokens": 2000, "tokens_per_second": 50, "prefill_s": 10}'

Each ``--model NAME=JSON`` gives a model's ``Behaviour`` fields (``fail`` as an object of
``Fail``'s fields); other model names get the default behaviour. OpenAI clients take
``http://127.0.0.1:PORT/v1`` as their base URL, boto3 ``http://127.0.0.1:PORT`` as its
``endpoint_url``.
"""

from __future__ import annotations

import argparse
import json
import threading

from turnstop_local.fake_upstream.behaviour import Behaviour, Fail
from turnstop_local.fake_upstream.server import FakeUpstream


def behaviour_from(spec: str) -> tuple[str, Behaviour]:
    name, _, raw = spec.partition("=")
    fields = json.loads(raw or "{}")
    if isinstance(fields.get("fail"), dict):
        fields["fail"] = Fail(**fields["fail"])
    return name, Behaviour(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m turnstop_local.fake_upstream", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=JSON", help="a model's Behaviour")
    args = parser.parse_args()
    with FakeUpstream(host=args.host, port=args.port) as upstream:
        for spec in args.model:
            upstream.add_model(*behaviour_from(spec))
        print(f"fake upstream ready on {upstream.base_url} (OpenAI base URL {upstream.openai_base_url})", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
