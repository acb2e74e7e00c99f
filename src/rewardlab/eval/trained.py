"""The evaluation report of a model just trained, on its run's evaluation split: what `rewardlab train` and the
demo write next to the model, the same report `rewardlab eval` writes."""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from rewardlab.eval.report import evaluate, write_report
from rewardlab.eval.sets import eval_set_from_rows
from rewardlab.score.reward_model import RewardModel

MODEL = "trained model"  # the report's names of the model and of the set
EVAL_SET = "evaluation split"


def write_training_report(trainer: Any, eval_dataset: Any, source: str) -> tuple[str, dict[str, Any]] | None:
    """The `rewardlab eval` report of the trained model on the evaluation split, written next to the model: the HTML
    page's path and the report."""
    if not isinstance(eval_dataset, Dataset):  # a streamed eval set cannot be read twice
        return None
    args = trainer.args
    model = RewardModel.from_trainer(trainer)
    # Rows the trainer skipped as invalid are skipped (and counted) here too.
    eval_set = eval_set_from_rows(eval_dataset.to_list(), EVAL_SET, source, skip_invalid_rows=args.skip_invalid_rows)
    report, figures = evaluate(
        {MODEL: model},
        [eval_set],
        model_sources={MODEL: args.output_dir},
        training_logs={MODEL: trainer.state.log_history},
    )
    return str(write_report(report, figures, args.output_dir)), report
