"""Training: :mod:`.loop` (cross-entropy or KD, resumable, DDP), :mod:`.distill` (the paper's
confidence-weighted dual-teacher loss and its rule), :mod:`.teacher_cache` (exact teacher logits
per D4 view), :mod:`.d4` (flip/rotation augmentation and the model input)."""
