"""Command line of the local runtime: ``python -m turnstop_local [serve|invoke|keys] ...``.

- ``serve`` (default): the API on http://127.0.0.1:3000 with the template's routes, authorizer,
  queues and table, backed by DynamoDB Local or moto; seeds a dev API key.
- ``invoke``: ``sam local invoke`` without Docker, against the running instance if there is one.
- ``keys create``: add an API key to the running instance (or, with ``--aws``, to a real table).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

# Heavy imports (boto3, moto) happen inside the commands so that --help stays instant.

_DESCRIPTION = (
    "turnstop's Docker-free local runtime: serves template.yaml's routes, authorizer, queues and table "
    "on 127.0.0.1 with the same handler code as in AWS."
)


def _template_path(args: argparse.Namespace) -> Path:
    from turnstop_local.template import find_template

    return Path(args.template).resolve() if args.template else find_template()


# ------------------------------------------------------------------------------------- serve


def _check_models() -> Any:
    """TURNSTOP_MODELS, validated before anything starts (docs/models.md): the routes, or None
    after printing what is wrong (the field, never a key)."""
    try:
        from turnstop.providers.config import ModelsConfigError, routes_for
        from turnstop.providers.models import Models
    except ImportError:  # a template without the turnstop layer: no model routes to check
        return True

    try:
        routes = routes_for(os.environ.get("TURNSTOP_MODELS"))
        Models(routes, scripted_step_ms=0).check()
    except ModelsConfigError as error:
        print(f"turnstop: {error}", file=sys.stderr)
        return None
    if routes.configured:
        names = ", ".join(f"{r.name} ({r.provider})" for r in routes.routes.values())
        print(f"model routes: {names}; default {routes.default}", flush=True)
    return routes


def _serve(args: argparse.Namespace) -> int:
    from turnstop_local.keys import DEV_TENANT, create_api_key, dev_key_from_env
    from turnstop_local.runtime import LocalRuntime
    from turnstop_local.webhooks import seed_dev_webhook_secret

    port = args.port if args.port is not None else int(os.environ.get("PORT") or 3000)
    dev_key = dev_key_from_env()
    stop = threading.Event()
    # SIGTERM (CI, process managers) stops as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runtime = LocalRuntime(_template_path(args), port=port, store_kind=args.store)
    from turnstop_local.keys import put_layers_on_path

    put_layers_on_path(runtime.template)
    if _check_models() is None:
        return 2
    try:
        runtime.start()
        key_note = ""
        try:
            create_api_key(
                runtime.template, runtime.table_name, DEV_TENANT, dev_key.account_ids, key=dev_key.key, name="dev"
            )
            key_note = f"dev API key: {dev_key.key}" if dev_key.generated else "dev API key: $TURNSTOP_DEV_API_KEY"
            runtime.record_dev_key(dev_key.key)
            if runtime.server is not None:  # the playground page is prefilled with it (docs/playground.md)
                runtime.server.playground.enable_dev_key(dev_key.key, dev_key.account_ids, DEV_TENANT)
        except Exception as error:  # the API still serves without a seeded key
            key_note = f"dev API key NOT seeded ({type(error).__name__}: {error})"
        key_note += seed_dev_webhook_secret(runtime.template, runtime.table_name)
        _print_banner(runtime, key_note)
        print(f"turnstop local API ready on {runtime.url}", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
    return 0


def _print_banner(runtime: Any, key_note: str) -> None:
    routes = runtime.template.routes
    streaming = sum(1 for r in routes if r.streaming)
    lines = [
        f"turnstop local: {runtime.url}",
        f"  store: {runtime.store.kind} (DynamoDB {runtime.store.dynamodb_endpoint}, SQS {runtime.store.sqs_endpoint})",
        f"  table: {runtime.table_name}",
        f"  routes: {len(routes)} ({streaming} streaming), SQS mappings: {len(runtime.template.sqs_event_sources)}",
        f"  {key_note}",
        f"  playground: {runtime.url}/playground",
    ]
    if runtime.oidc is not None:
        lines.append(
            f"  chat sign-in: {runtime.url}/auth/login?login_hint=<user> (dev OpenID provider {runtime.oidc.issuer})"
        )
    for logical_id, error in runtime.load_errors.items():
        lines.append(f"  WARNING {logical_id} failed to load ({type(error).__name__}: {error}); its routes answer 500")
    print("\n".join(lines), flush=True)


# ------------------------------------------------------------------------------------ invoke


def _invoke(args: argparse.Namespace) -> int:
    from turnstop_local.lambda_host import FunctionHost
    from turnstop_local.runtime import DEFAULT_PREFIX, DEFAULT_TABLE_NAME, attach_to_running, state_path
    from turnstop_local.sqs import EventSourceMappings
    from turnstop_local.store import LocalStore
    from turnstop_local.streams import use_events_file
    from turnstop_local.template import Template

    template = Template.load(_template_path(args))
    spec = template.function(args.function)
    use_events_file(state_path(template.root).parent)  # the turn-events function writes there
    event = json.loads(sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8"))
    store: LocalStore | None = None
    attached = attach_to_running(template.root)
    if attached is not None:
        _, resources = attached
        print(f"using the running local instance ({attached[0].get('url')})", file=sys.stderr)
    else:
        store = LocalStore(template.root, args.store).start()
        resources = store.create_resources(template, DEFAULT_TABLE_NAME, DEFAULT_PREFIX)
        print(f"no running instance: started an embedded {store.kind} store", file=sys.stderr)
    host = FunctionHost(template, resources)
    host.apply_common_environment()
    # With its own store nobody else drains the queues: run the SQS mappings here, so that a turn
    # the function enqueues (a streaming turn waits for its worker) actually runs.
    mappings = EventSourceMappings(template, host, store.sqs_endpoint).start() if store is not None else None
    stdout = sys.stdout
    try:
        # Function logs (Powertools writes to stdout) go to stderr, like `sam local invoke`,
        # so stdout holds only the result.
        with contextlib.redirect_stdout(sys.stderr):
            function = host.get(spec.logical_id).load()
            if spec.stream_handler:
                invocation = function.stream(event)
                head = invocation.head()
                print(json.dumps({"statusCode": head.status_code, "headers": head.headers}), file=sys.stderr)
                try:
                    for chunk in invocation.chunks():
                        stdout.buffer.write(chunk)
                        stdout.buffer.flush()
                except BrokenPipeError:  # `| head`: the reader has seen enough
                    invocation.cancel()
                return 0
            result = function.invoke(event)
        print(json.dumps(result), file=stdout, flush=True)
        return 0
    except Exception as error:  # reported like Lambda reports a failed invocation
        trace = traceback.format_exception(error)
        print("".join(trace), file=sys.stderr)
        payload = {"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": trace}
        print(json.dumps(payload), file=stdout, flush=True)
        return 1
    finally:
        if mappings is not None:
            mappings.stop()
        host.shutdown()
        if store is not None:
            store.stop()


# -------------------------------------------------------------------------------------- keys


def _keys_create(args: argparse.Namespace) -> int:
    from turnstop_local.keys import create_api_key, parse_account_ids
    from turnstop_local.runtime import attach_to_running
    from turnstop_local.template import Template
    from turnstop_local.webhooks import ensure_tenant_webhook_secret

    template = Template.load(_template_path(args))
    accounts = parse_account_ids(args.accounts)
    if args.aws:
        table = os.environ.get("TURNSTOP_TABLE")
        if not table:
            print("--aws needs TURNSTOP_TABLE (the deployed table's name)", file=sys.stderr)
            return 2
    else:
        attached = attach_to_running(template.root)
        if attached is None:
            print(
                "no running local instance: start `python -m turnstop_local serve` first (or use --aws)",
                file=sys.stderr,
            )
            return 2
        table = str(attached[0]["table_name"])
    print(create_api_key(template, table, args.tenant, accounts, key=args.key, name=args.name, admin=args.admin))
    secret = ensure_tenant_webhook_secret(template, table, args.tenant)
    if secret:  # stdout stays the key alone, for scripts
        print(f"webhook signing secret of tenant {args.tenant} (shown once): {secret}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------- argparse


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--template", help="path to template.yaml (default: the nearest one above the working directory)"
    )
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument(
        "--store",
        choices=["dynamodb-local", "moto"],
        help="DynamoDB engine (default: $TURNSTOP_STORE, else DynamoDB Local when Java 17+ and its jar are there, else moto)",
    )
    parser = argparse.ArgumentParser(prog="python -m turnstop_local", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common, store], help="serve the API locally (default command)")
    serve.add_argument("--port", type=int, help="port on 127.0.0.1 (default: $PORT, else 3000; 0 picks a free one)")
    serve.set_defaults(run=_serve)

    invoke = commands.add_parser(
        "invoke", parents=[common, store], help="invoke one function with an event file, like `sam local invoke`"
    )
    invoke.add_argument("function", help="the function's logical id in the template, e.g. SessionCancelFunction")
    invoke.add_argument("-e", "--event", required=True, help="event JSON file ('-' reads standard input)")
    invoke.set_defaults(run=_invoke)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = key_commands.add_parser("create", parents=[common], help="create an API key and print it")
    create.add_argument("--tenant", required=True)
    create.add_argument("--accounts", required=True, help="comma-separated account ids the key may act for, e.g. 1,2")
    create.add_argument("--key", help="the key to store (default: a new random one)")
    create.add_argument("--name", default="", help="a label for the key")
    create.add_argument(
        "--admin", action="store_true", help="an operator's key: it may also use POST /v1/admin/cancels for its tenant"
    )
    create.add_argument(
        "--aws",
        action="store_true",
        help="write to the real table named by $TURNSTOP_TABLE with default AWS credentials",
    )
    create.set_defaults(run=_keys_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("serve", "invoke", "keys", "-h", "--help"):
        argv = ["serve", *argv]  # serve is the default command
    args = parser.parse_args(argv)
    from turnstop_local.webhooks import apply_local_defaults

    apply_local_defaults()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("turnstop_local").setLevel(logging.INFO)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
