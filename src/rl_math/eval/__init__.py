"""Measuring a model.

    evaluate.py  one or more models on a split, side by side (recipes/evaluate.py)
    in_run.py    held-out accuracy during training, best-model selection
    figures.py   the evaluation figure (outcome buckets, completion lengths)
"""
