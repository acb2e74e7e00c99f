"""Preference data: rows in, validated, tokenized, length-limited examples out, with every dropped row counted.

No model and no `torch.nn` here:
- `loading`: a file, a directory or a Hub dataset to a `DatasetDict`; the evaluation split;
- `mixture`: several datasets as one training set (the `datasets:` section of a TRL config file);
- `formats`: which of the pair and ranking formats a row or a dataset uses;
- `validate`: each row checked against its dataset's format, errors naming the row and field;
- `tokenize`: a row's sequences as token ids, exactly as scoring will see them;
- `truncation`: the over-length policy, and the one helper that finds the prompt sequences share;
- `prepare`: all of the above over a whole (map-style or streaming) dataset, with `PreparationStats`.
"""

from rewardlab.data.loading import load_preference_data, split_train_eval
from rewardlab.data.prepare import PreparationStats, prepare_preference_dataset

__all__ = ["PreparationStats", "load_preference_data", "prepare_preference_dataset", "split_train_eval"]
