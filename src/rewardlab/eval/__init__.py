"""Evaluation of reward models on preference sets: what `rewardlab eval` reports.

- `mapping`: `LabelMapping`, where the pieces of a third-party evaluation layout live, with presets;
- `apply_mapping`: rows through a mapping into pairs, every unused row counted;
- `report`: load sets, score them, compute every metric (`rewardlab.metrics`), write `report.json` + `report.html`;
- `plots`: the report's figures (matplotlib, as data URIs);
- `html`: the self-contained HTML page, from `templates/report.html.j2`.
"""

from rewardlab.eval.mapping import LabelMapping, parse_mapping
from rewardlab.eval.report import EvalSet, evaluate, load_eval_set, write_report

__all__ = ["EvalSet", "LabelMapping", "evaluate", "load_eval_set", "parse_mapping", "write_report"]
