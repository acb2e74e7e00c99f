"""Preference data: rows in, validated, tokenized, length-limited examples out, with every dropped row counted.

No model and no `torch.nn` here:
- `loading`: a file, a directory or a Hub dataset to a `DatasetDict`; the evaluation split;
- `mixture`: several datasets as one training set (the `datasets:` section of a TRL config file);
- `formats`: which of the pair and ranking formats a row or a dataset uses;
- `mapping`, `apply_mapping`: `LabelMapping`, where the pieces of a third-party layout live (with presets for the
  field's benchmarks), and rows through it into pairs, every unused row counted;
- `conversation`: a prompt and a completion as the chat a benchmark scores;
- `validate`: each row checked against its dataset's format, errors naming the row and field;
- `tokenize`: a row's sequences as token ids;
- `positions`: the prefix sequences share, each one's own tokens, the token a reward is read at;
- `truncation`: the over-length policy;
- `prepare_item`: one pair, ranking, completion or text from a row to the ids a model scores: what training,
  evaluation, scoring and serving all call;
- `prepare`: that over a whole (map-style or streaming) dataset, with `PreparationStats`.
"""

from rewardlab.data.loading import load_preference_data, split_train_eval
from rewardlab.data.prepare import PreparationStats, prepare_preference_dataset

__all__ = ["PreparationStats", "load_preference_data", "prepare_preference_dataset", "split_train_eval"]
