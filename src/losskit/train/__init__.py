"""The trainer: config, data, models, objective, loop, evaluation and logging."""
