"""The MIMO warm-up curriculum of MIMOFormer: the first training steps run at a half grid
(docs/design.md section 3)."""

import keras

from keras_mimo.layers.attention import check_grid


class MIMOWarmup(keras.callbacks.Callback):
    """Trains the first ``warmup_steps`` steps at grid ``(M // 2, N // 2)`` (at least 1 each), then
    at the full grid.

    Works on any model with a settable ``grid`` (:class:`~keras_mimo.models.MIMOFormer`): the grid
    is switched before a step, and the model swaps in the compiled train function of that grid, so
    the change takes effect on that very step on every backend. Steps are counted across ``fit``
    calls made with the same callback object (``steps_done``); with
    ``steps_per_execution > 1`` the switch happens at the first execution boundary at or after
    ``warmup_steps``. After training the model is left at the full grid.

    Args:
        warmup_steps: number of optimizer steps at the half grid (the reference: 3000 for ListOps,
            6500 Text, 10000 Retrieval and Image, 20800 Pathfinder).
        full_grid: the grid after warm-up; default: the model's grid when training starts.
    """

    def __init__(self, warmup_steps, full_grid=None):
        super().__init__()
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps={warmup_steps!r} must be an integer >= 0.")
        self.warmup_steps = warmup_steps
        self.full_grid = None if full_grid is None else check_grid(full_grid, name="full_grid")
        self.steps_done = 0
        self._begin = 0

    @staticmethod
    def warmup_grid(grid):
        """The half grid ``(max(1, M // 2), max(1, N // 2))`` used during warm-up."""
        return (max(1, grid[0] // 2), max(1, grid[1] // 2))

    def _set_grid(self, grid):
        model = self.model
        if tuple(model.grid) == tuple(grid):
            return
        model.grid = grid
        if getattr(model, "train_function", None) is None and getattr(model, "compiled", False):
            model.make_train_function()

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "grid"):
            raise ValueError(
                f"MIMOWarmup needs a model with a settable grid (a MIMOFormer), "
                f"got {type(self.model).__name__}."
            )
        if self.full_grid is None:
            self.full_grid = tuple(self.model.grid)

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch
        warming = self.steps_done < self.warmup_steps
        self._set_grid(self.warmup_grid(self.full_grid) if warming else self.full_grid)

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done += max(1, batch - self._begin + 1)

    def on_train_end(self, logs=None):
        self._set_grid(self.full_grid)
