"""Load test of `rewardlab serve` on loopback: throughput and latency with micro-batching on and off.

A model is saved to a temporary directory and served by two `rewardlab serve` subprocesses: one with the default
micro-batching, one with it off (`--max_wait_ms 0 --max_batch_items 1`: one request per model call). Each gets
`--requests` POST /score requests in total from `--clients` concurrent clients, each request 1 to `--max_items`
texts (the `chosen` conversations of HH-RLHF harmless-base test), after a short warm-up; the requests go in
`--rounds` slices, alternating between the servers, so that other load on the machine hits both alike. Printed:
requests/s, items/s, p50 and p99 latency, errors (must be 0), the mean number of requests per model batch (from
/health), and the ratios.

    python benchmarks/serve_load.py                       # qwen3-small, 16 clients, 2000 requests per mode
    python benchmarks/serve_load.py --max_items 1 --max_chars 200  # many small requests: one short text each
    python benchmarks/serve_load.py --tiny --requests 300 # the tiny test model: a quick check of the harness

The clients run in this process and the servers in others, on the same CPU cores, so absolute numbers include the
clients' cost; the two modes are measured the same way, and their ratio is what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from train_throughput import DEFAULT_DATA, load_model_and_tokenizer  # noqa: E402

NO_BATCHING = ["--max_wait_ms", "0", "--max_batch_items", "1"]


def save_model(name: str, directory: str) -> str:
    if name == "tiny":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny import save_tiny

        return save_tiny("qwen3", directory)
    model, tokenizer = load_model_and_tokenizer(name)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def read_texts(path: str, n: int, max_chars: int = 0) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["chosen"] for _, line in zip(range(n), f, strict=False)]
    return [t[:max_chars] for t in texts] if max_chars else texts


def make_requests(texts: list[str], n: int, max_items: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.sample(texts, rng.randint(1, max_items)) for _ in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, port: int, flags: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "rewardlab", "serve", "--model", model_dir, "--port", str(port)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "w") as f:
        return subprocess.Popen(
            command + ["--log_level", "warning", *flags], stdout=f, stderr=subprocess.STDOUT, env=env
        )


async def wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                sys.exit(f"the server exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if (await client.get(f"{url}/health", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    sys.exit(f"the server did not start in {timeout:.0f} s")


async def send_all(url: str, requests: list[list[str]], clients: int) -> dict:
    """`clients` concurrent clients share the requests; each sends its next one as soon as the last is answered."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    pending = iter(requests)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for texts in pending:
            start = time.perf_counter()
            try:
                response = await client.post(f"{url}/score", json={"texts": texts})
                ok = response.status_code == 200 and len(response.json()["rewards"]) == len(texts)
                if not ok:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
            except httpx.HTTPError as e:
                errors.append(f"{type(e).__name__}: {e}")
            latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(limits=limits, timeout=600) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        seconds = time.perf_counter() - start
        stats = (await client.get(f"{url}/health")).json()["stats"]
    return {"seconds": seconds, "latencies": latencies, "errors": errors, "stats": stats}


def measure(model_dir: str, modes: dict[str, list[str]], requests: list[list[str]], args, tmp: Path) -> dict:
    """Serve the model once per mode (all servers up at once; an idle one costs no CPU) and send the requests to
    each in `--rounds` alternating slices, so that load from elsewhere on the machine hits every mode alike."""
    servers, urls, logs = {}, {}, {}
    try:
        for mode, flags in modes.items():
            port = free_port()
            urls[mode], logs[mode] = f"http://127.0.0.1:{port}", tmp / f"server-{len(servers)}.log"
            servers[mode] = start_server(model_dir, port, flags, logs[mode])
        for mode in modes:
            asyncio.run(wait_until_up(urls[mode], servers[mode], logs[mode]))
            asyncio.run(send_all(urls[mode], requests[: args.warmup], args.clients))  # allocations, caches
        totals = {mode: {"seconds": 0.0, "latencies": [], "errors": [], "before": None} for mode in modes}
        for mode in modes:
            totals[mode]["before"] = asyncio.run(send_all(urls[mode], [], 1))["stats"]  # just the counters so far
        size = -(-len(requests) // args.rounds)
        for start in range(0, len(requests), size):
            for mode in modes:
                result = asyncio.run(send_all(urls[mode], requests[start : start + size], args.clients))
                totals[mode]["seconds"] += result["seconds"]
                totals[mode]["latencies"] += result["latencies"]
                totals[mode]["errors"] += result["errors"]
                totals[mode]["stats"] = result["stats"]
    finally:
        for server in servers.values():
            server.send_signal(signal.SIGTERM)
        codes = {mode: server.wait(timeout=120) for mode, server in servers.items()}
    for mode, code in codes.items():
        if code != 0:
            sys.exit(f"the {mode} server exited with {code} after SIGTERM:\n{logs[mode].read_text()[-3000:]}")
    items = sum(len(r) for r in requests)
    out = {}
    for mode, t in totals.items():
        lat = sorted(t["latencies"])
        batches = t["stats"]["batches"] - t["before"]["batches"]
        out[mode] = {
            "requests_per_s": len(requests) / t["seconds"],
            "items_per_s": items / t["seconds"],
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "errors": len(t["errors"]),
            "first_errors": t["errors"][:3],
            "requests_per_batch": len(requests) / max(batches, 1),
            "seconds": t["seconds"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen3-small", choices=["qwen3-small", "smollm2", "minilm"])
    parser.add_argument("--tiny", action="store_true", help="Serve the tiny random test model instead.")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--requests", type=int, default=2000, help="Requests per mode.")
    parser.add_argument("--clients", type=int, default=16, help="Concurrent clients.")
    parser.add_argument("--max_items", type=int, default=4, help="Each request has 1 to this many texts.")
    parser.add_argument("--max_chars", type=int, default=0, help="Cut each text to its first N characters (0: whole).")
    parser.add_argument("--max_length", type=int, default=512, help="The server's --max_length.")
    parser.add_argument("--warmup", type=int, default=32, help="Untimed requests before each measurement.")
    parser.add_argument("--rounds", type=int, default=4, help="Slices of the requests, alternating the modes.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--server_args",
        default="",
        help="More `rewardlab serve` flags for both modes, e.g. '--max_tokens_per_batch 4096'.",
    )
    args = parser.parse_args()

    texts = read_texts(args.data, 1000, args.max_chars)
    requests = make_requests(texts, args.requests, args.max_items, args.seed)
    common = ["--max_length", str(args.max_length), *args.server_args.split()]
    modes = {"micro-batching": common, "one request per call": common + NO_BATCHING}
    name = "tiny" if args.tiny else args.model
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = save_model(name, str(Path(tmp) / "model"))
        results = measure(model_dir, modes, requests, args, Path(tmp))
    for mode, r in results.items():
        print(f"{mode}: {r['seconds']:.1f} s, errors {r['errors']} {r['first_errors']}", file=sys.stderr)

    items = sum(len(r) for r in requests)
    print(
        f"\nmodel={name} requests={args.requests} items={items} clients={args.clients} max_items={args.max_items} "
        f"max_chars={args.max_chars or 'all'} "
        f"max_length={args.max_length} rounds={args.rounds} cpus={os.cpu_count()} server_args={args.server_args!r}"
    )
    header = f"{'':22}{'requests/s':>11}{'items/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'requests/batch':>16}"
    print(header)
    for mode, r in results.items():
        print(
            f"{mode:22}{r['requests_per_s']:11.1f}{r['items_per_s']:10.1f}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}"
            f"{r['errors']:8d}{r['requests_per_batch']:16.2f}"
        )
    on, off = results["micro-batching"], results["one request per call"]
    print(
        f"{'ratio (on / off)':22}{on['requests_per_s'] / off['requests_per_s']:10.2f}x"
        f"{on['items_per_s'] / off['items_per_s']:9.2f}x{on['p50_ms'] / off['p50_ms']:8.2f}x"
        f"{on['p99_ms'] / off['p99_ms']:8.2f}x"
    )
    if on["errors"] or off["errors"]:
        sys.exit("some requests failed")


if __name__ == "__main__":
    main()
