"""Evaluation of reward models on preference sets and the field's benchmarks: what `rewardlab eval` reports.

- `sets`: `EvalSet`, a data set loaded (third-party layouts through a `rewardlab.data.mapping.LabelMapping`) and
  turned into what its benchmark scores;
- `rewardbench2`, `rewardbench`, `rm_bench`, `judgebench`, `best_of_k`: each benchmark's rows and its own scoring
  rule, with content-blind baselines;
- `leaderboard`: the headline number of each result, and every model on every set;
- `report`: load sets, score them, compute every metric (`rewardlab.metrics`), write `report.json` + `report.html`;
- `trained`: that report for a model just trained, on its run's evaluation split;
- `plots`: the report's figures (matplotlib, as data URIs);
- `html`: the self-contained HTML page, from `templates/report.html.j2`.
"""

from rewardlab.data.mapping import LabelMapping, parse_mapping
from rewardlab.eval.report import evaluate, write_report
from rewardlab.eval.sets import EvalSet, load_eval_set

__all__ = ["EvalSet", "LabelMapping", "evaluate", "load_eval_set", "parse_mapping", "write_report"]
