"""SGD as the paper trains MIMOConv: PyTorch semantics, scheduled momentum, no decay on activation
parameters, gradient filter.

``FilteredSGD`` is a ``keras.optimizers.Optimizer`` (used through ``model.compile`` / ``model.fit``
on TensorFlow, JAX and PyTorch) that reproduces what the reference does with ``torch.optim.SGD``
plus ``OneCycleLR`` plus its batch filter (MIMOConv/src/train_superposition.py, optimizer.py):

* PyTorch SGD update with dampening 0: ``g += weight_decay * w`` (coupled L2 decay, as torch's
  ``weight_decay``), ``buf = momentum * buf + g``, ``w -= lr * buf`` (``nesterov``:
  ``w -= lr * (g + momentum * buf)``).
* ``momentum`` may be a number or a schedule of the step (``OneCycleMomentum``), evaluated
  from ``optimizer.iterations`` inside the update, so it is live in compiled train steps.
* Weight decay skips PReLU slopes and SReLU offsets
  (``keras_mimo.layers.activations.is_activation_parameter``) unless
  ``decay_activation_parameters=True``; ``exclude_from_weight_decay`` adds more exclusions.
* The gradient filter (``gradient_filter=factor``, 10 in the paper): an update whose global
  gradient norm (over all trainable variables, before clipping and decay) is not finite or is
  not below ``factor`` times the previous epoch's mean norm of accepted updates is skipped:
  no weight and no momentum buffer changes. The threshold is infinite during the first epoch.
  The step counter still advances, as the reference steps its scheduler after every batch.
  In-graph state (non-trainable optimizer variables, saved with checkpoints):
  ``filter_threshold``, ``accepted_norm_sum``, ``accepted_updates``, ``skipped_updates``
  (this epoch) and ``skipped_updates_total``. :class:`keras_mimo.training.GradientFilterCallback`
  closes each epoch (``end_epoch()``: new threshold, counters reset) and logs the counts.

Data parallel (tf.distribute on TensorFlow): gradients are summed over replicas before the norm
is taken, so every replica takes the same decision.
"""

import math

import keras
from keras import ops

from keras_mimo.layers.activations import is_activation_parameter


def global_norm(grads):
    """sqrt of the sum of squares of all entries of ``grads`` (None entries ignored), as float32."""
    squares = [ops.sum(ops.square(ops.cast(g, "float32"))) for g in grads if g is not None]
    if not squares:
        return ops.convert_to_tensor(0.0, "float32")
    return ops.sqrt(ops.sum(ops.stack(squares)))


@keras.saving.register_keras_serializable(package="keras_mimo")
class FilteredSGD(keras.optimizers.Optimizer):
    """PyTorch-style SGD with a momentum schedule, activation-parameter-free weight decay and the
    gradient filter.

    Args:
        learning_rate: float or schedule (``OneCycleLR``).
        momentum: float or schedule of the step (``OneCycleMomentum``); 0 disables momentum buffers.
        nesterov: PyTorch's Nesterov variant.
        weight_decay: coupled L2 decay added to the gradient (1e-5 in the paper); 0/None
            disables it.
        decay_activation_parameters: also decay PReLU slopes / SReLU offsets (the paper does not).
        gradient_filter: factor of the filter (10 in the paper); None disables it.
        **kwargs: the usual Keras optimizer arguments (``global_clipnorm``, ``name``, ...).
    """

    def __init__(
        self,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
        weight_decay=None,
        decay_activation_parameters=False,
        gradient_filter=None,
        name="filtered_sgd",
        **kwargs,
    ):
        super().__init__(learning_rate=learning_rate, name=name, weight_decay=None, **kwargs)
        if isinstance(momentum, (int, float)):
            if not 0 <= momentum < 1:
                raise ValueError(f"momentum={momentum!r} must be in [0, 1) or a schedule.")
            momentum = float(momentum)
        elif not callable(momentum):
            raise ValueError(
                f"momentum={momentum!r} must be a number or a schedule (callable of the step)."
            )
        if gradient_filter is not None and not (
            isinstance(gradient_filter, (int, float)) and gradient_filter > 0
        ):
            raise ValueError(
                f"gradient_filter={gradient_filter!r} must be a positive factor or None."
            )
        if weight_decay is not None and not (
            isinstance(weight_decay, (int, float)) and weight_decay >= 0
        ):
            raise ValueError(f"weight_decay={weight_decay!r} must be a number >= 0 or None.")
        self.momentum = momentum
        self.nesterov = bool(nesterov)
        self.l2_weight_decay = float(weight_decay or 0.0)
        self.decay_activation_parameters = bool(decay_activation_parameters)
        self.gradient_filter = None if gradient_filter is None else float(gradient_filter)
        self._accept = None

    # ------------------------------------------------------------------ state
    @property
    def uses_momentum(self):
        return callable(self.momentum) or self.momentum > 0

    def build(self, var_list):
        if self.built:
            return
        excluded = set(getattr(self, "_exclude_from_weight_decay", set()))
        if not self.decay_activation_parameters:
            excluded |= {self._var_key(v) for v in var_list if is_activation_parameter(v.path)}
        self._exclude_from_weight_decay = excluded
        self._exclude_from_weight_decay_cache = {}
        super().build(var_list)
        self.momentums = []
        if self.uses_momentum:
            self.momentums = self.add_optimizer_variables(var_list, "momentum")
        state = dict(aggregation="only_first_replica")
        self.filter_threshold = self.add_variable(
            (),
            initializer=keras.initializers.Constant(math.inf),
            dtype="float32",
            name="filter_threshold",
            **state,
        )
        self.accepted_norm_sum = self.add_variable(
            (), initializer="zeros", dtype="float32", name="accepted_norm_sum", **state
        )
        self.accepted_updates = self.add_variable(
            (), initializer="zeros", dtype="float32", name="accepted_updates", **state
        )
        self.skipped_updates = self.add_variable(
            (), initializer="zeros", dtype="float32", name="skipped_updates", **state
        )
        self.skipped_updates_total = self.add_variable(
            (), initializer="zeros", dtype="float32", name="skipped_updates_total", **state
        )

    def uses_weight_decay(self, variable):
        """Whether ``variable`` receives weight decay (False for activation parameters and excluded
        variables)."""
        return self.l2_weight_decay > 0 and self._use_weight_decay(variable)

    def current_momentum(self):
        if callable(self.momentum):
            return ops.cast(self.momentum(self.iterations), "float32")
        return ops.convert_to_tensor(self.momentum, "float32")

    # ------------------------------------------------------------------ update
    def apply(self, grads, trainable_variables=None):
        if not self.built and trainable_variables is not None:
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
            self.built = True
        grads = self._sum_over_replicas(list(grads))
        if self.gradient_filter is not None:
            norm = global_norm(grads)
            accept = ops.logical_and(ops.isfinite(norm), ops.less(norm, self.filter_threshold))
            accepted = ops.cast(accept, "float32")
            self._accept = accept
            self.accepted_norm_sum.assign_add(ops.where(accept, norm, 0.0))
            self.accepted_updates.assign_add(accepted)
            self.skipped_updates.assign_add(1.0 - accepted)
            self.skipped_updates_total.assign_add(1.0 - accepted)
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._accept = None

    def _sum_over_replicas(self, grads):
        if keras.backend.backend() != "tensorflow":
            return grads
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return [
                tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads
            ]
        present = [i for i, g in enumerate(grads) if g is not None]
        dense = [tf.convert_to_tensor(grads[i]) for i in present]
        reduced = context.all_reduce(tf.distribute.ReduceOp.SUM, dense)
        grads = list(grads)
        for i, g in zip(present, reduced):
            grads[i] = g
        return grads

    def _all_reduce_sum_gradients(self, grads_and_vars):
        # TensorFlow backend hook: apply() has already summed the gradients over replicas.
        return list(grads_and_vars)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        learning_rate = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        if self.uses_weight_decay(variable):
            gradient = gradient + ops.cast(self.l2_weight_decay, dtype) * variable
        accept = self._accept
        if self.uses_momentum:
            buffer = self.momentums[self._get_variable_index(variable)]
            momentum = ops.cast(self.current_momentum(), dtype)
            new_buffer = momentum * buffer + gradient
            direction = gradient + momentum * new_buffer if self.nesterov else new_buffer
            if accept is not None:
                new_buffer = ops.where(accept, new_buffer, ops.convert_to_tensor(buffer))
            self.assign(buffer, new_buffer)
        else:
            direction = gradient
        new_value = variable - learning_rate * direction
        if accept is not None:
            new_value = ops.where(accept, new_value, ops.convert_to_tensor(variable))
        self.assign(variable, new_value)

    # ------------------------------------------------------------------ epochs
    def end_epoch(self):
        """Closes an epoch of the filter (call between epochs, outside the train step; the
        callback does).

        The threshold becomes ``gradient_filter`` times this epoch's mean norm of accepted updates
        (unchanged if none was accepted), the per-epoch counters restart. Returns a dict with this
        epoch's ``skipped_updates``, ``accepted_updates``, ``mean_grad_norm`` and the new
        ``filter_threshold``.
        """
        if self.gradient_filter is None or not self.built:
            return {}
        accepted = float(ops.convert_to_numpy(self.accepted_updates))
        skipped = float(ops.convert_to_numpy(self.skipped_updates))
        norm_sum = float(ops.convert_to_numpy(self.accepted_norm_sum))
        mean_norm = norm_sum / accepted if accepted else float("nan")
        if accepted:
            self.filter_threshold.assign(self.gradient_filter * mean_norm)
        self.accepted_norm_sum.assign(0.0)
        self.accepted_updates.assign(0.0)
        self.skipped_updates.assign(0.0)
        return dict(
            skipped_updates=int(skipped),
            accepted_updates=int(accepted),
            mean_grad_norm=mean_norm,
            filter_threshold=float(ops.convert_to_numpy(self.filter_threshold)),
            skipped_updates_total=int(float(ops.convert_to_numpy(self.skipped_updates_total))),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=keras.saving.serialize_keras_object(self.momentum)
            if callable(self.momentum)
            else self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.l2_weight_decay,
            decay_activation_parameters=self.decay_activation_parameters,
            gradient_filter=self.gradient_filter,
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        momentum = config.get("momentum")
        if isinstance(momentum, dict):
            config["momentum"] = keras.saving.deserialize_keras_object(
                momentum, custom_objects=custom_objects
            )
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = keras.optimizers.schedules.deserialize(
                config["learning_rate"], custom_objects=custom_objects
            )
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_mimo")
class CyclicAdamW(keras.optimizers.AdamW):
    """AdamW with PyTorch semantics and a scheduled ``beta_1``: what MIMOFormer's reference
    trains with.

    The reference steps ``torch.optim.AdamW`` with ``OneCycleLR(cycle_momentum=True)``, which on
    Adam cycles ``beta_1`` (0.95 -> 0.85 -> 0.95) along with the learning rate. PyTorch then uses
    the current ``beta_1`` both in the first-moment update and in its bias correction
    ``1 - beta_1 ** t``, and adds ``epsilon`` after the bias-corrected square root (Keras adds it
    before); this optimizer does the same, so an LRA recipe follows the reference step by step.

    Args:
        beta_1: float or schedule of the step (``OneCycleMomentum(..., anneal_strategy="linear")``).
        Everything else as :class:`keras.optimizers.AdamW` (``weight_decay`` is decoupled,
            as in torch).
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.0,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        name="cyclic_adamw",
        **kwargs,
    ):
        if not callable(beta_1) and not (isinstance(beta_1, (int, float)) and 0 <= beta_1 < 1):
            raise ValueError(
                f"beta_1={beta_1!r} must be a number in [0, 1) "
                f"or a schedule (callable of the step)."
            )
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            beta_1=0.9,
            beta_2=beta_2,
            epsilon=epsilon,
            name=name,
            **kwargs,
        )
        self.beta_1 = beta_1

    def current_beta_1(self):
        if callable(self.beta_1):
            return ops.cast(self.beta_1(self.iterations), "float32")
        return ops.convert_to_tensor(self.beta_1, "float32")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1 = ops.cast(self.current_beta_1(), dtype)
        beta_2 = ops.cast(self.beta_2, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign(m, beta_1 * m + (1 - beta_1) * gradient)
        self.assign(v, beta_2 * v + (1 - beta_2) * ops.square(gradient))
        bias_1 = 1 - ops.power(beta_1, step)
        bias_2 = 1 - ops.power(beta_2, step)
        denominator = ops.sqrt(v) / ops.sqrt(bias_2) + ops.cast(self.epsilon, dtype)
        self.assign_sub(variable, (lr / bias_1) * m / denominator)

    def get_config(self):
        config = super().get_config()
        config["beta_1"] = (
            keras.saving.serialize_keras_object(self.beta_1)
            if callable(self.beta_1)
            else self.beta_1
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("beta_1", "learning_rate"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(
                    config[key], custom_objects=custom_objects
                )
        return cls(**config)
