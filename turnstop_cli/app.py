"""The ``turnstop`` command line (Typer): ``tail``, ``cancel``, ``status``, ``ledger``, ``keys create``.

Every command takes ``--base-url`` / ``--api-key`` / ``--json``; without a base URL it finds
the local instance started by ``make run`` (turnstop_cli.target). Exit codes are
turnstop_cli.errors.ExitCode: 0 ok, 1 API error, 2 usage, 3 not found, 4 auth, 5 unreachable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from turnstop_cli.client import Api
from turnstop_cli.dialects import DIALECT, resolve
from turnstop_cli.errors import CliError, ExitCode, usage
from turnstop_cli.output import Out
from turnstop_cli.routing import BULK, TurnRef, check_bulk, classify
from turnstop_cli.target import CHECKOUT, Target, check_api_key, discover
from turnstop_cli.verbs import TailOptions

app = typer.Typer(
    name="turnstop",
    help="The stop button's command line: follow, stop and inspect agent turns of a turnstop API, "
    "local (found automatically) or deployed (--base-url). Exit codes: 0 ok, 1 API error, 2 usage, "
    "3 not found, 4 auth, 5 unreachable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

# ----------------------------------------------------------------------- common options

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="TURNSTOP_BASE_URL",
        help="The API (a deployed stack's BaseUrl output). Default: the running local instance.",
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar="TURNSTOP_API_KEY", help="Bearer key. Default locally: the dev key `make run` seeded."
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="JSON on stdout (one object per line for tail).")]
DialectOpt = Annotated[
    str | None,
    typer.Option("--dialect", help=f"Force the dialect: {', '.join(DIALECT)} (default: from the id's shape)."),
]
SessionOpt = Annotated[str | None, typer.Option("--session", help="The session (sess_…) of a msg_… turn.")]
AccountOpt = Annotated[
    int, typer.Option("--account", envvar="TURNSTOP_ACCOUNT_ID", help="Omni: the account_id of the response.")
]
ChatSession = Annotated[
    str | None,
    typer.Option(
        "--chat-session", envvar="TURNSTOP_CHAT_SESSION", help="Chat: the session_id cookie of a signed-in user."
    ),
]


class Scope(StrEnum):
    tenant = "tenant"
    account = "account"
    session = "session"
    thread = "thread"
    user = "user"


SCOPE_FIELD = {
    "tenant": "tenant",
    "account": "account_id",
    "session": "session_id",
    "thread": "thread_id",
    "user": "end_user",
}


@contextmanager
def command(json_mode: bool) -> Iterator[Out]:
    """Run a command's body: a CliError is printed and becomes its exit code."""
    out = Out(json_mode)
    try:
        yield out
    except CliError as error:
        out.error(error)
        raise typer.Exit(int(error.code)) from None
    except KeyboardInterrupt:
        out.note("interrupted")
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # the reader went away (`turnstop tail … | head`): nothing more to say, and no one to say it to
        quiet_broken_pipe()
        raise typer.Exit(0) from None


def quiet_broken_pipe() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError
    (the way the Python docs recommend handling SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor behind stdout (tests)
        pass


def api_for(base_url: str | None, api_key: str | None, chat_session: str | None = None) -> Api:
    return Api(discover(base_url, api_key), chat_session=chat_session)


def turn_ref(turn_id: str, dialect: str | None, session: str | None, account: int) -> TurnRef:
    """A turn's id as typed (tail and cancel take turns; a bulk cancel's id is refused)."""
    ref = classify(turn_id, dialect=dialect, session=session, account=account)
    check_bulk(ref)
    return ref


# ------------------------------------------------------------------------------- tail


@app.command()
def tail(
    turn_id: Annotated[
        str, typer.Argument(help="msg_… (with --session, or sess_…/msg_…), resp_…, task_…, an omni UUID, thread_…")
    ],
    after: Annotated[int, typer.Option("--after", min=0, help="Start after this event (id / sequence_number).")] = 0,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between polls (omni, tasks, chat).")
    ] = 0.5,
    max_reconnects: Annotated[
        int, typer.Option("--max-reconnects", min=0, help="Give up after this many failed reconnects in a row.")
    ] = 10,
    dialect: DialectOpt = None,
    session: SessionOpt = None,
    account: AccountOpt = 1,
    chat_session: ChatSession = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: JsonOut = False,
) -> None:
    """Follow a turn's events to its end, resuming after the last event seen if the connection drops.

    Sessions and llm turns are streams (SSE, resumed with Last-Event-ID / starting_after);
    omni responses, tasks and chat threads are polled. Exits 0 once the turn has ended,
    whichever way it ended (completed, cancelled, failed, incomplete).
    """
    with command(json_out) as out, api_for(base_url, api_key, chat_session) as api:
        ref = turn_ref(turn_id, dialect, session, account)
        handler, ref = resolve(api, ref)
        handler.tail(api, ref, out, TailOptions(after=after, interval=interval, max_reconnects=max_reconnects))


# ----------------------------------------------------------------------------- cancel


@app.command()
def cancel(
    target: Annotated[
        str,
        typer.Argument(
            help="A turn id; with --scope, the scope's value (tenant, account id, sess_…, thread, end user)."
        ),
    ],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Recorded on the turn (sessions, tasks, --scope).")
    ] = None,
    scope: Annotated[
        Scope | None,
        typer.Option("--scope", help="Stop every in-flight turn of this scope (an admin key's own tenant)."),
    ] = None,
    created_before: Annotated[
        str | None, typer.Option("--created-before", help="With --scope: only turns created before this RFC 3339 time.")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait", min=0, help="With --scope: follow a queued bulk cancel this many seconds at most (it goes on)."
        ),
    ] = 300.0,
    dialect: DialectOpt = None,
    session: SessionOpt = None,
    account: AccountOpt = 1,
    chat_session: ChatSession = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: JsonOut = False,
) -> None:
    """Stop a turn through its dialect's own cancel endpoint, or (--scope) every in-flight turn of a
    tenant, account, session, thread or end user with one bulk cancel (POST /v1/admin/cancels)."""
    with command(json_out) as out, api_for(base_url, api_key, chat_session) as api:
        if scope is not None:
            bulk_cancel(api, out, scope.value, target, reason, created_before, wait)
            return
        if created_before is not None:
            raise usage("--created-before goes with --scope")
        ref = turn_ref(target, dialect, session, account)
        handler, ref = resolve(api, ref)
        summary = handler.cancel(api, ref, reason)
        if out.json_mode:
            out.document(summary)
        else:
            line = Text(f"{summary['dialect']} {ref.label}: ")
            line.append(str(summary["outcome"]), style="bold")  # the API's word: text, never markup
            line.append(f" (HTTP {summary['http_status']})")
            out.console.print(line)


def scope_body(scope: str, value: str, reason: str | None, created_before: str | None) -> dict[str, Any]:
    field = SCOPE_FIELD[scope]
    scoped: Any = value
    if scope == "account":
        if not value.isdigit():
            raise usage(f"an account scope's value is an account id (a number), not {value!r}")
        scoped = int(value)
    body: dict[str, Any] = {"scope": {field: scoped}}
    if reason is not None:
        body["reason"] = reason
    if created_before is not None:
        body["created_before"] = created_before
    return body


def bulk_cancel(
    api: Api, out: Out, scope: str, value: str, reason: str | None, created_before: str | None, wait: float = 300.0
) -> None:
    body = scope_body(scope, value, reason, created_before)
    with out.busy() as progress:
        task = progress.add_task(f"stopping the in-flight turns of {scope} {value}", total=None)
        try:
            response = api.request("POST", "/v1/admin/cancels", what=f"bulk cancel of {scope} {value}", json=body)
        except CliError as error:
            if error.status == 403 and error.hint is None:
                error.hint = (
                    "a bulk cancel needs an operator's key of the tenant: turnstop keys create --tenant <tenant> "
                    "--accounts 1 --admin, then --api-key / TURNSTOP_API_KEY"
                )
            raise
        report = api.answer(response, f"bulk cancel of {scope} {value}")
        deadline = time.monotonic() + wait
        while report.get("status") == "running":  # 202: the rest runs from the cancel queue, page by page
            report_id = report.get("id")
            if not isinstance(report_id, str) or not report_id:
                raise CliError("the bulk cancel's report has no id to follow", ExitCode.API_ERROR, body=report)
            if time.monotonic() >= deadline:
                out.note(f"still running after {wait:g} s; it goes on: `turnstop status {report_id}` follows it")
                break
            progress.update(task, description=bulk_progress(report))
            time.sleep(0.5)
            report = api.json("GET", f"/v1/admin/cancels/{report_id}", what=f"bulk cancel {report_id}")
    out.report(report)
    if report.get("failed"):
        raise CliError(
            f"{report['failed']} turn(s) of the scope could not be cancelled (throttled); run the cancel again",
            ExitCode.API_ERROR,
            body=report,
        )


def bulk_progress(report: dict[str, Any]) -> str:
    return (
        f"bulk cancel {report.get('id')}: {report.get('matched', 0)} matched, {report.get('cancelled', 0)} cancelled, "
        f"{report.get('already_finished', 0)} already finished, page {report.get('pages', 0)}"
    )


# ----------------------------------------------------------------------------- status


@app.command()
def status(
    turn_id: Annotated[str, typer.Argument(help="A turn id (as for tail), or a bulk cancel's id (bulk_…).")],
    dialect: DialectOpt = None,
    session: SessionOpt = None,
    account: AccountOpt = 1,
    chat_session: ChatSession = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: JsonOut = False,
) -> None:
    """Where a turn stands: its state (queued, running, cancelling, completed, failed, cancelled,
    incomplete), the dialect's own status word, and usage / billing where the dialect has them."""
    with command(json_out) as out, api_for(base_url, api_key, chat_session) as api:
        ref = classify(turn_id, dialect=dialect, session=session, account=account)
        if ref.dialect == BULK:
            out.report(api.json("GET", f"/v1/admin/cancels/{ref.id}", what=f"bulk cancel {ref.id}"))
            return
        handler, ref = resolve(api, ref)
        with out.busy() as progress:
            progress.add_task(f"reading {ref.label}", total=None)
            summary = handler.status(api, ref)
        out.status(summary)


# ----------------------------------------------------------------------------- ledger


@app.command()
def ledger(
    turn: Annotated[str | None, typer.Option("--turn", help="Only this turn's entries (any dialect's id).")] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    json_out: JsonOut = False,
) -> None:
    """The caller's ledger entries: usage and debits of completed turns, a task's charge and refund.
    A cancelled stream has none (nothing billed). With --turn, also what the turn's model provider
    cost the platform (an estimate when the provider never said)."""
    with command(json_out) as out, api_for(base_url, api_key) as api:
        params = {"response_id": turn.strip()} if turn else {}
        body = api.json("GET", "/v1/ledger", what="ledger", params=params)
        upstream = body.get("upstream")
        out.ledger(list(body.get("data") or []), upstream if isinstance(upstream, dict) else None)


# ------------------------------------------------------------------------------- keys


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")],
    accounts: Annotated[
        str, typer.Option("--accounts", help="Comma-separated account ids the key may act for, e.g. 1,2.")
    ],
    admin: Annotated[
        bool, typer.Option("--admin", help="An operator's key: it may also bulk-cancel its tenant.")
    ] = False,
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "",
    key: Annotated[str | None, typer.Option("--key", help="The key to store (default: a new random one).")] = None,
    aws: Annotated[
        bool,
        typer.Option("--aws", help="Write to the deployed table named by TURNSTOP_TABLE, with your AWS credentials."),
    ] = False,
    base_url: BaseUrl = None,
    json_out: JsonOut = False,
) -> None:
    """Create an API key and print it (the same as `python -m turnstop_local keys create`).

    Keys are never created over HTTP: locally the key is written to the running instance's store;
    for a deployed stack pass --aws with TURNSTOP_TABLE=<the stack's TableName output>.
    """
    with command(json_out) as out:
        target = discover(base_url, None)
        if not aws and not target.local:
            raise usage(
                f"{target.base_url} is not a local instance, and keys are not created over HTTP",
                hint="write the key to the deployed table with AWS credentials: "
                "TURNSTOP_TABLE=<TableName output> turnstop keys create --aws --tenant … --accounts …",
            )
        if not aws and target.source == "option" and target.state_file is None:
            # another local instance than the one found: its store is named by its own local.json
            raise usage(
                f"no local.json describes the instance at {target.base_url}",
                hint="set TURNSTOP_STATE_DIR to the directory of that instance's local.json",
            )
        if aws and not os.environ.get("TURNSTOP_TABLE"):
            raise usage("--aws needs TURNSTOP_TABLE: the deployed stack's TableName output")
        account_ids = parse_accounts(accounts)
        if key is not None:
            check_api_key(key)
        # --option=value: a value that starts with "-" is never read as an option
        argv = ["keys", "create", f"--tenant={tenant}", f"--accounts={account_ids}", f"--name={name}"]
        argv += ["--admin"] if admin else []
        argv += [f"--key={key}"] if key else []
        argv += ["--aws"] if aws else []
        env = dict(os.environ)
        if target.state_file is not None and not aws:  # the instance found, wherever its state lives
            env["TURNSTOP_STATE_DIR"] = str(target.state_file.parent)
        root = checkout_root()
        done = subprocess.run(
            [sys.executable, "-m", "turnstop_local", *argv], cwd=root, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "keys create failed"
            raise CliError(message, ExitCode.USAGE if done.returncode == 2 else ExitCode.API_ERROR)
        printed = done.stdout.strip().splitlines()
        if not printed:
            raise CliError("keys create printed no key", ExitCode.API_ERROR, body=done.stderr.strip() or None)
        created = printed[-1].strip()
        note = [line for line in done.stderr.splitlines() if line.startswith("webhook signing secret")]
        if out.json_mode:
            out.document(
                {"key": created, "tenant": tenant, "admin": admin, "webhook_secret_note": note[0] if note else None}
            )
        else:
            sys.stdout.write(created + "\n")
            for line in note:
                out.note(line)


def parse_accounts(text: str) -> str:
    """``"1, 2"`` -> ``"1,2"``: the account ids a key may act for, checked before anything runs."""
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isascii() and part.isdigit() for part in parts):
        raise usage(f"--accounts takes comma-separated account ids (numbers), e.g. 1,2: not {text!r}")
    return ",".join(str(int(part)) for part in parts)


def checkout_root() -> Path:
    """The repository whose local runtime creates keys: the nearest template.yaml above the
    working directory, else the checkout this command was installed from."""
    here = Path.cwd().resolve()
    for directory in (here, *here.parents):
        if (directory / "template.yaml").is_file() and (directory / "turnstop_local").is_dir():
            return directory
    if (CHECKOUT / "template.yaml").is_file():
        return CHECKOUT
    raise usage("keys create runs from a turnstop checkout: no template.yaml found above the working directory")


def main() -> None:
    app()


__all__ = ["app", "main", "Target", "DIALECT"]
