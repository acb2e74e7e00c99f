"""`rewardlab serve`: load a saved reward model (or several, as one ensemble) and serve it over HTTP until
SIGTERM/SIGINT (`rewardlab.serve`). The server's flags are the fields of `ServerSettings`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rewardlab.cli.common import add_reward_model_arguments, load_reward_model
from rewardlab.cli.parser import dataclass_parser
from rewardlab.errors import RewardlabError
from rewardlab.serve import API_KEY_ENV, ServerSettings, create_app

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = dataclass_parser(
        (ServerSettings,),
        prog="rewardlab serve",
        description="Serve a reward model over HTTP: POST /score, OpenRLHF's POST /get_reward, GET /health, "
        "the OpenAPI spec at /openapi.json and docs at /docs. Concurrent requests are micro-batched. SIGTERM "
        "finishes in-flight requests, then exits.",
        deprecated={"--max_batch_tokens": "--max_tokens_per_batch"},
    )
    parser.add_argument(
        "--model",
        required=True,
        nargs="+",
        help="A saved reward model: a directory (full or LoRA) or hub id; several: one deep ensemble (their mean "
        "centred reward, see rewardlab.RewardEnsemble).",
    )
    parser.set_defaults(model_name=None)  # the --model paths
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: all interfaces).")
    parser.add_argument("--port", type=int, default=8000, help="Port to listen on.")
    add_reward_model_arguments(parser)
    parser.add_argument(
        "--shutdown_timeout",
        type=float,
        default=60.0,
        help="Seconds in-flight requests get to finish after SIGTERM/SIGINT.",
    )
    parser.add_argument(
        "--log_level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"]
    )
    return parser


def parse_serve_args(
    argv: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[ServerSettings, argparse.Namespace]:
    """The server's settings and the command's other flags; the API key defaults to `$REWARDLAB_API_KEY` and the
    model's name to the `--model` paths."""
    parser = build_parser()
    settings, args = parser.parse_args_into_dataclasses(list(argv))
    environ = os.environ if environ is None else environ
    settings.api_key = settings.api_key or environ.get(API_KEY_ENV) or None
    if settings.model_name is None:
        settings.model_name = ", ".join(args.model)
    return settings, args


def main(argv: Sequence[str]) -> int:
    """Load the model and serve it until SIGTERM/SIGINT; returns the exit code."""
    import uvicorn  # here, after `rewardlab.serve` has said what to install when it is missing

    settings, args = parse_serve_args(argv)
    logging.getLogger("rewardlab").setLevel(
        logging.DEBUG if args.log_level == "trace" else getattr(logging, args.log_level.upper())
    )
    reward_model = load_reward_model(args.model, args, max_tokens_per_batch=settings.max_tokens_per_batch)
    app = create_app(reward_model, settings)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=args.shutdown_timeout
    )
    server = uvicorn.Server(config)
    logger.info(
        "serving %s on http://%s:%d: POST /score, POST /get_reward, GET /health, docs at /docs%s",
        settings.model_name,
        args.host,
        args.port,
        " (API key required)" if settings.api_key else "",
    )
    # uvicorn re-raises a caught SIGTERM once its graceful shutdown is done, which would end the process with the
    # signal's default action (status -15) after a clean drain. A drained shutdown is a success: exit 0.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _drained) if on_main_thread else None
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits when it cannot bind the address; it has logged why
        raise RewardlabError(f"could not serve on {args.host}:{args.port} (see the error above)") from e
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)
        app.state.batcher.close()  # already done by the lifespan, unless startup failed
    stats = app.state.batcher.stats.model_dump()
    logger.info("stopped after scoring %s", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in stats.items()))
    return 0


def _drained(signum: int, frame: Any) -> None:
    pass
