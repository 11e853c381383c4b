"""Scoring: :mod:`.stats` (top-1, macro P/R/F1, ECE, temperature fit, Wilson interval, McNemar,
risk-coverage), :mod:`.logits` (compare_logits: the one comparator for every pair of logits),
:mod:`.evaluate` (any logit function on a prepared split), :mod:`.decision` (onboard keep/abstain
decision quality)."""
