"""``kubernaut``: run the system locally and talk to its API."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from kubernaut.cluster.credentials import NoBearerToken, kubeconfig_bearer

DEFAULT_URL = os.environ.get("KUBERNAUT_URL", "http://127.0.0.1:8000")

SAMPLE_ALERT: dict[str, Any] = {
    "version": "4",
    "status": "firing",
    "receiver": "kubernaut",
    "groupKey": '{}:{alertname="KubePodCrashLooping"}',
    "groupLabels": {"alertname": "KubePodCrashLooping"},
    "commonLabels": {"alertname": "KubePodCrashLooping", "severity": "warning"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "truncatedAlerts": 0,
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "default", "pod": "web-7d4b9c8f6-abcde",
                   "container": "web", "severity": "warning", "job": "kube-state-metrics"},
        "annotations": {"summary": "Pod is crash looping.",
                        "description": "Pod default/web-7d4b9c8f6-abcde (web) is in waiting state (reason: "
                                       "\"CrashLoopBackOff\")."},
        "startsAt": "2026-11-26T06:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "0f1e2d3c4b5a6978",
    }],
}


# A container killed for memory (kube-state-metrics' last terminated reason): without a cluster the alert's own
# labels are the evidence, the rules propose increase_memory_limits and the shipped policy asks a human (an
# unlabelled namespace counts as production, which needs confidence 0.8 to act alone; no measured successes yet).
OOM_SAMPLE_ALERT: dict[str, Any] = {
    **SAMPLE_ALERT,
    "groupKey": '{}:{alertname="KubeContainerOOMKilled"}',
    "groupLabels": {"alertname": "KubeContainerOOMKilled"},
    "commonLabels": {"alertname": "KubeContainerOOMKilled", "severity": "warning"},
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "KubeContainerOOMKilled", "namespace": "default", "pod": "web-7d4b9c8f6-abcde",
                   "container": "web", "reason": "OOMKilled", "severity": "warning", "job": "kube-state-metrics"},
        "annotations": {"summary": "Container was OOMKilled.",
                        "description": "Container web in pod default/web-7d4b9c8f6-abcde was OOMKilled (memory "
                                       "limit 64Mi)."},
        "startsAt": "2026-11-26T06:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "1a2b3c4d5e6f7081",
    }],
}
SAMPLES = {"crashloop": SAMPLE_ALERT, "oom": OOM_SAMPLE_ALERT}


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {}
    token = args.token or os.environ.get("KUBERNAUT_TOKEN")
    if not token and (args.kube or args.kubeconfig_auth or args.kube_context):
        # Only when asked: a cluster credential goes to --url, whatever it points at, only by the user's choice.
        path = Path(args.kubeconfig_auth).expanduser() if args.kubeconfig_auth else None
        token = kubeconfig_bearer(path, args.kube_context)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=args.url, headers=headers, timeout=30)


def _print(response: httpx.Response) -> int:
    try:
        print(json.dumps(response.json(), indent=2, sort_keys=False))
    except ValueError:
        print(response.text)
    return 0 if response.is_success else 1


def cmd_run(args: argparse.Namespace) -> int:
    """Exactly `serve run <config>`: the README's run command, with Ray token auth off for local use and the
    shipped ingress (kubernaut.ingress: HAProxy, throughput-optimized replicas) unless the environment says
    otherwise, on a local Ray without the dashboard's module processes unless --ray-dashboard (kubernaut.local_ray)."""
    from kubernaut.ingress import UnsafeConfig, serve_env

    config = Path(args.config) if args.config else shipped_config()
    if not config.exists():
        print(f"config file {config} not found", file=sys.stderr)
        return 2
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # RAY_SERVE_THROUGHPUT_OPTIMIZED also takes replica logs off stderr (ray/serve/_private/constants.py), and then
    # `serve run` no longer prints why the app does not come up (e.g. the gateway's refusal to serve off loopback
    # without authentication): locally they stay on stderr unless set. The RayService sets it to 0 (deploy/).
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "1")
    try:
        os.environ.update(serve_env(os.environ))
    except UnsafeConfig as error:  # fail closed: no HAProxy with its admin socket where others can reach it
        print(f"not starting: {error}", file=sys.stderr)
        return 2
    serve = Path(sys.executable).with_name("serve")
    argv = [str(serve), "run", str(config)]
    if not getattr(args, "ray_dashboard", False):  # the same `serve run`, on a Ray without the dashboard's modules
        argv = [sys.executable, "-m", "kubernaut.local_ray", "run", str(config)]
    os.execv(argv[0], argv)
    return 0  # not reached


def shipped_config() -> Path:
    """The serve_config.yaml inside the installed package (package data): `kubernaut run` without a file."""
    from importlib import resources

    return Path(str(resources.files("kubernaut").joinpath("serve_config.yaml")))


def cmd_send_alert(args: argparse.Namespace) -> int:
    body = json.loads(Path(args.file).read_text()) if args.file else SAMPLES[args.sample]
    with _client(args) as client:
        return _print(client.post("/api/v1/alerts", json=body))


def cmd_incidents(args: argparse.Namespace) -> int:
    from kubernaut.terminal import views

    with _client(args) as client:
        return views.incidents(client, args)


def cmd_actions(args: argparse.Namespace) -> int:
    with _client(args) as client:
        response = client.get("/api/v1/actions")
    if not response.is_success or args.json:
        return _print(response)
    for action in response.json()["actions"]:
        print(f"{action['name']:<24} {action['risk']:<8} {','.join(action['target_kinds']):<40} {action['summary']}")
    return 0


def cmd_approvals(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.decision is None:
            from kubernaut.terminal import views

            return views.approvals(client, args)
        if args.id is None:
            print("an approval id is required", file=sys.stderr)
            return 2
        # Who decides is whoever the token belongs to (the server records it); the body carries only why.
        body: dict[str, Any] = {"reason": args.reason}
        if args.override:
            body["override"] = json.loads(args.override)
        return _print(client.post(f"/api/v1/approvals/{args.id}/{args.decision}", json=body))


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.verb is None:
            params: dict[str, Any] = {"limit": args.limit}
            if args.state:
                params["state"] = args.state
            if args.kind:
                params["kind"] = args.kind
            return _print(client.get("/api/v1/jobs", params=params))
        if args.id is None:
            print("a job id is required: kubernaut jobs retry <id>", file=sys.stderr)
            return 2
        body = {"reason": args.reason}
        return _print(client.post(f"/api/v1/jobs/{args.id}/retry", json=body))


def cmd_token(args: argparse.Namespace) -> int:
    """Static tokens are configured by hash (gateway.tokens): make a token, or hash one you have."""
    from kubernaut.identity.static_tokens import MIN_TOKEN_CHARS, hash_token, new_token

    if args.verb == "new":
        token = new_token()
        print(f"token (give it to the caller; it is not stored anywhere): {token}", file=sys.stderr)
    else:
        token = sys.stdin.readline().rstrip("\r\n") if args.token_value in (None, "-") else args.token_value
        if not token.strip():
            print("an empty token is not a credential", file=sys.stderr)
            return 2
        if len(token) < MIN_TOKEN_CHARS:
            # The hash is unsalted and fast: it protects only tokens nobody can guess (kubernaut.identity).
            print(f"token too short: use at least {MIN_TOKEN_CHARS} random characters (`kubernaut token new`)",
                  file=sys.stderr)
            return 2
    entry: dict[str, Any] = {"name": args.name, "roles": args.role or ["ingest"], "hash": hash_token(token)}
    if args.approve_namespace:
        entry["approve_namespaces"] = args.approve_namespace
    # One entry of gateway.tokens (KUBERNAUT_GATEWAY__TOKENS is a JSON list of these).
    print(json.dumps(entry))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return _print(client.get("/api/v1/info"))


def cmd_db_stop(args: argparse.Namespace) -> int:
    from kubernaut.config import load_config
    from kubernaut.storage.embedded import stop_embedded_server

    data_dir = load_config().storage.data_dir if args.data_dir is None else Path(args.data_dir).resolve()
    print("stopped" if stop_embedded_server(data_dir) else f"no embedded server running in {data_dir}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from kubernaut.evaluation.command import run

    return run(args)


def _view_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="the API's JSON (with --watch: one line per poll)")
    parser.add_argument("--watch", "-w", action="store_true", help="follow: refresh every --interval seconds")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubernaut", description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL, help="Kubernaut API (default %(default)s)")
    parser.add_argument("--token", default=None, help="bearer token (or $KUBERNAUT_TOKEN)")
    parser.add_argument("--kube", action="store_true",
                        help="authenticate as your kubeconfig user ($KUBECONFIG or ~/.kube/config): its token, which "
                             "the gateway checks with a TokenReview (gateway.kubernetes)")
    parser.add_argument("--kubeconfig", dest="kubeconfig_auth", default=None, metavar="PATH",
                        help="--kube with this kubeconfig")
    parser.add_argument("--kube-context", default=None, metavar="NAME", help="--kube with this context")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the system locally (serve run serve_config.yaml, fast ingress)")
    run.add_argument("config", nargs="?", default=None, help="default: the serve_config.yaml shipped in the package")
    run.add_argument("--ray-dashboard", action="store_true",
                     help="keep Ray's dashboard and its module processes (~190 MB; kubernaut/local_ray.py)")
    run.set_defaults(func=cmd_run)

    send = sub.add_parser("send-alert", help="post an AlertManager webhook body (a sample when no file)")
    send.add_argument("file", nargs="?")
    send.add_argument("--sample", choices=sorted(SAMPLES), default="crashloop",
                      help="the sample sent without a file: crashloop (a crash-looping pod: without a cluster, a "
                           "recommendation) or oom (an OOMKilled container: a memory increase the shipped policy "
                           "sends to approval; with execution.dry_run_approvals a rehearsal) (default %(default)s)")
    send.set_defaults(func=cmd_send_alert)

    inc = sub.add_parser("incidents", help="list incidents, or show one")
    inc.add_argument("id", nargs="?", type=int)
    inc.add_argument("--limit", type=int, default=20)
    inc.add_argument("--status", choices=["open", "resolved", "closed"])
    inc.add_argument("--namespace")
    _view_arguments(inc)
    inc.set_defaults(func=cmd_incidents)

    actions = sub.add_parser("actions", help="show the action catalog")
    actions.add_argument("--json", action="store_true")
    actions.set_defaults(func=cmd_actions)

    appr = sub.add_parser("approvals", help="list approvals, or approve/reject one")
    appr.add_argument("decision", nargs="?", choices=["approve", "reject"])
    appr.add_argument("id", nargs="?", type=int)
    appr.add_argument("--status", choices=["pending", "approved", "rejected", "expired", "used", "cancelled"])
    appr.add_argument("--reason")
    appr.add_argument("--override", help='JSON object of parameters to change, e.g. \'{"replicas": 3}\'')
    _view_arguments(appr)
    appr.set_defaults(func=cmd_approvals)

    jobs = sub.add_parser("jobs", help="list jobs of the work queue (--state dead: dead letters), or retry one")
    jobs.add_argument("verb", nargs="?", choices=["retry"])
    jobs.add_argument("id", nargs="?", type=int)
    jobs.add_argument("--state", choices=["pending", "running", "done", "dead"])
    jobs.add_argument("--kind")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--reason")
    jobs.set_defaults(func=cmd_jobs)

    tok = sub.add_parser("token", help="make a static API token and its gateway.tokens entry (by hash), or hash one")
    tok.add_argument("verb", choices=["new", "hash"], help="new: a fresh 256-bit token; hash: a token from stdin")
    tok.add_argument("token_value", nargs="?", help=argparse.SUPPRESS)  # discouraged: shell history keeps it
    tok.add_argument("--name", default="alertmanager", help="the principal's name (default %(default)s)")
    tok.add_argument("--role", action="append", choices=["ingest", "viewer", "approver", "admin"],
                     help="repeatable; default ingest")
    tok.add_argument("--approve-namespace", action="append", help='for role approver: a namespace, or "*"')
    tok.set_defaults(func=cmd_token)

    info = sub.add_parser("info", help="version, configuration and execution mode")
    info.set_defaults(func=cmd_info)

    db = sub.add_parser("db-stop", help="stop the embedded PostgreSQL")
    db.add_argument("--data-dir", default=None)
    db.set_defaults(func=cmd_db_stop)

    ev = sub.add_parser("eval", help="run the evaluation scenarios (evals/scenarios) against a cluster and grade")
    from kubernaut.evaluation.command import add_arguments as eval_arguments

    eval_arguments(ev)
    ev.set_defaults(func=cmd_eval)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except httpx.HTTPError as exc:
        print(f"cannot reach Kubernaut at {args.url}: {exc}", file=sys.stderr)
        return 1
    except NoBearerToken as exc:
        print(f"kubernaut: {exc}", file=sys.stderr)
        return 2



if __name__ == "__main__":
    sys.exit(main())
