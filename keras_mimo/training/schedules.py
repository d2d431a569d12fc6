"""One-cycle learning-rate and momentum schedules with PyTorch ``OneCycleLR`` semantics, as Keras
schedules.

The paper trains with
``torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, epochs, steps_per_epoch)`` (two phases,
``pct_start=0.3``, cosine annealing, ``div_factor=25``, ``final_div_factor=1e4``, momentum cycled
between ``max_momentum=0.95`` and ``base_momentum=0.85``). ``OneCycleLR`` and ``OneCycleMomentum``
reproduce its values at every step: the learning rate rises from ``max_lr / div_factor`` to
``max_lr`` over the first ``pct_start`` of the steps while the momentum falls from 0.95 to 0.85,
then the learning rate anneals to ``max_lr / div_factor / final_div_factor`` while the momentum
climbs back to 0.95. Step ``k`` is the value used by the ``k``-th update (Keras calls a schedule
with ``optimizer.iterations`` before incrementing it, as PyTorch's scheduler is stepped after each
update). Past ``total_steps`` the final value is held.

Both are ``keras.optimizers.schedules.LearningRateSchedule`` objects, written with ``keras.ops``
only, so they run inside compiled train steps on every backend and serialise with the optimizer.
"""

import math

import keras
from keras import ops


def _check_schedule_arguments(total_steps, pct_start):
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 2:
        raise ValueError(
            f"total_steps={total_steps!r} must be an integer >= 2 (epochs * steps per epoch)."
        )
    if not 0.0 < float(pct_start) < 1.0:
        raise ValueError(f"pct_start={pct_start!r} must lie strictly between 0 and 1.")


def one_cycle_value(step, total_steps, start, peak, end, pct_start=0.3, anneal_strategy="cos"):
    """The value at ``step`` of a two-phase one-cycle curve start -> peak -> end
    (PyTorch OneCycleLR's formula)."""
    step = ops.cast(step, "float32")
    phase_one_end = float(pct_start) * total_steps - 1.0
    phase_two_end = float(total_steps) - 1.0
    in_phase_one = step <= phase_one_end
    pct_one = ops.clip(step / max(phase_one_end, 1e-12), 0.0, 1.0)
    pct_two = ops.clip((step - phase_one_end) / (phase_two_end - phase_one_end), 0.0, 1.0)
    if anneal_strategy == "cos":

        def anneal(a, b, pct):
            return b + (a - b) / 2.0 * (ops.cos(math.pi * pct) + 1.0)
    elif anneal_strategy == "linear":

        def anneal(a, b, pct):
            return (b - a) * pct + a
    else:
        raise ValueError(f"anneal_strategy={anneal_strategy!r} must be 'cos' or 'linear'.")
    return ops.where(in_phase_one, anneal(start, peak, pct_one), anneal(peak, end, pct_two))


@keras.saving.register_keras_serializable(package="keras_mimo")
class OneCycleLR(keras.optimizers.schedules.LearningRateSchedule):
    """Learning rate of PyTorch's ``OneCycleLR``: ``max_lr / div_factor`` -> ``max_lr`` ->
    ``max_lr / div_factor / final_div_factor``.

    Args:
        max_lr: peak learning rate (0.2 in the paper).
        total_steps: number of updates of the whole run (epochs * steps per epoch).
        pct_start: fraction of the steps spent rising (0.3).
        div_factor: initial lr = max_lr / div_factor (25).
        final_div_factor: final lr = initial lr / final_div_factor (1e4).
        anneal_strategy: "cos" (the paper) or "linear".
    """

    def __init__(
        self,
        max_lr,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal_strategy="cos",
    ):
        _check_schedule_arguments(total_steps, pct_start)
        if not max_lr > 0:
            raise ValueError(f"max_lr={max_lr!r} must be positive.")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.anneal_strategy = anneal_strategy
        one_cycle_value(
            0, self.total_steps, 1.0, 1.0, 1.0, self.pct_start, anneal_strategy
        )  # validates the strategy

    @property
    def initial_lr(self):
        return self.max_lr / self.div_factor

    @property
    def min_lr(self):
        return self.initial_lr / self.final_div_factor

    def __call__(self, step):
        return one_cycle_value(
            step,
            self.total_steps,
            self.initial_lr,
            self.max_lr,
            self.min_lr,
            self.pct_start,
            self.anneal_strategy,
        )

    def get_config(self):
        return dict(
            max_lr=self.max_lr,
            total_steps=self.total_steps,
            pct_start=self.pct_start,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
            anneal_strategy=self.anneal_strategy,
        )


@keras.saving.register_keras_serializable(package="keras_mimo")
class OneCycleMomentum(keras.optimizers.schedules.LearningRateSchedule):
    """Momentum of PyTorch's ``OneCycleLR(cycle_momentum=True)``: max -> base while the lr rises,
    base -> max after.

    Pass it as ``momentum=`` to :class:`keras_mimo.training.FilteredSGD`; it is evaluated from
    ``optimizer.iterations`` inside the update, so it works in compiled steps on every backend.
    """

    def __init__(
        self,
        total_steps,
        pct_start=0.3,
        base_momentum=0.85,
        max_momentum=0.95,
        anneal_strategy="cos",
    ):
        _check_schedule_arguments(total_steps, pct_start)
        if not 0 <= base_momentum <= max_momentum < 1:
            raise ValueError(
                f"need 0 <= base_momentum ({base_momentum}) <= max_momentum ({max_momentum}) < 1."
            )
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.base_momentum = float(base_momentum)
        self.max_momentum = float(max_momentum)
        self.anneal_strategy = anneal_strategy
        one_cycle_value(0, self.total_steps, 1.0, 1.0, 1.0, self.pct_start, anneal_strategy)

    def __call__(self, step):
        return one_cycle_value(
            step,
            self.total_steps,
            self.max_momentum,
            self.base_momentum,
            self.max_momentum,
            self.pct_start,
            self.anneal_strategy,
        )

    def get_config(self):
        return dict(
            total_steps=self.total_steps,
            pct_start=self.pct_start,
            base_momentum=self.base_momentum,
            max_momentum=self.max_momentum,
            anneal_strategy=self.anneal_strategy,
        )


def one_cycle(
    max_lr,
    total_steps,
    pct_start=0.3,
    div_factor=25.0,
    final_div_factor=1e4,
    base_momentum=0.85,
    max_momentum=0.95,
    anneal_strategy="cos",
):
    """The paper's pair: ``(OneCycleLR(...), OneCycleMomentum(...))`` in step with each other."""
    return (
        OneCycleLR(max_lr, total_steps, pct_start, div_factor, final_div_factor, anneal_strategy),
        OneCycleMomentum(total_steps, pct_start, base_momentum, max_momentum, anneal_strategy),
    )
