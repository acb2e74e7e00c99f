"""Where the benchmarks that use public preference data beyond the bundled HH-RLHF files find it.

A folder of local copies, `$REWARDLAB_BENCHMARK_DATA` (default: `shared/data` beside the repository), laid out as:

    rmb-pairwise/helpfulness.jsonl.gz, rmb-pairwise/harmlessness.jsonl.gz   RMB's pairwise sets
    rm-bench/*_filtered.jsonl.gz                                            RM-Bench's four domain files
    ultrafeedback-binarized-subset/{train,test}_clean.jsonl.gz              an UltraFeedback-binarized subset
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT = Path(os.environ.get("REWARDLAB_BENCHMARK_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
