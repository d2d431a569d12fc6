"""The isometry regulariser of ISONet (arXiv 2006.16992), applied to every body convolution of
MIMOConv."""

import functools

import keras
import numpy as np
from keras import ops

# Up to this many multiply-adds per tap pair (rows^2 * cols), a stride-1 kernel's Grams come from
# one matmul over all tap pairs (few ops: fast for small kernels, where op overhead dominates);
# above it, one matmul per displacement does 45 instead of 81 tap-pair products.
# Both give the same value.
_ALL_PAIRS_LIMIT = 2**25


@keras.saving.register_keras_serializable(package="keras_mimo")
class IsometryRegularizer(keras.regularizers.Regularizer):
    """``weight * 0.5 * || conv(W, W, padding k-1, stride) - delta ||^2`` for a conv kernel W.

    W is read as the reference's (out, in, kh, kw) operator, transposed when it has more
    outputs than inputs; ``delta`` is the identity at the centre tap. Zero exactly when
    the convolution is an isometry. Keras kernels are (kh, kw, in, out).

    ``scale`` (runtime state, not config) multiplies the penalty when it is traced; 0 leaves
    the penalty out of the traced graph altogether. ``MIMOConv.isometry_scale`` sets it for
    lazy regularisation: the penalty on every k-th update only, weighted k.
    """

    def __init__(self, weight=1e-4, strides=1):
        self.weight = float(weight)
        self.strides = int(strides)
        self.scale = 1.0

    def __call__(self, kernel):
        if self.scale == 0.0:
            return ops.zeros((), dtype=kernel.dtype)
        penalty = self._penalty(kernel)
        return penalty if self.scale == 1.0 else self.scale * penalty

    def _penalty(self, kernel):
        kh, kw, cin, cout = kernel.shape
        if self.strides == 1 and min(cin, cout) ** 2 * max(cin, cout) <= _ALL_PAIRS_LIMIT:
            return self.weight * 0.5 * self._all_pairs_total(kernel)
        # taps[r, i, j, c]: operator row r at tap (i, j); rows = the smaller side.
        taps = ops.transpose(kernel, (2, 0, 1, 3) if cin < cout else (3, 0, 1, 2))
        rows = min(cin, cout)
        # conv(W, W, padding k-1, stride) at output index p is the tap-displacement
        # d = p * stride - (k - 1) Gram matrix G_d = sum_b W_{b+d} W_b^T. Computed as one matmul
        # per displacement (a third of the conv's arithmetic), and once per mirror pair since
        # ||G_-d|| = ||G_d^T|| = ||G_d||.
        shifts, centre = _kept_displacements(kh, kw, self.strides)
        total, seen = 0.0, set()
        for shift in shifts:
            if shift in seen:
                continue
            seen.add(shift)
            gram = self._shifted_gram(taps, shift)
            if shift == centre:
                total = total + ops.sum(ops.square(gram - ops.eye(rows, dtype=gram.dtype)))
                continue
            mirror = (-shift[0], -shift[1])
            twice = mirror in shifts and mirror not in seen and mirror != centre
            if twice:
                seen.add(mirror)
            total = total + (2.0 if twice else 1.0) * ops.sum(ops.square(gram))
        return self.weight * 0.5 * total

    def _all_pairs_total(self, kernel):
        """The same sum from one matmul ``P = M M^T`` of all tap pairs: ``G_d`` sums the blocks
        ``P_ab`` with ``a - b = d``."""
        kh, kw, cin, cout = kernel.shape
        rows, cols, taps = min(cin, cout), max(cin, cout), kh * kw
        operator = kernel if cin < cout else ops.transpose(kernel, (0, 1, 3, 2))
        stacked = ops.reshape(operator, (taps * rows, cols))  # row (tap a, r) = W_a[r]
        pairs = ops.reshape(ops.matmul(stacked, ops.transpose(stacked)), (taps, rows, taps, rows))
        selection, centre = _displacement_selection(kh, kw, self.strides)
        grams = ops.einsum(
            "dab,arbs->drs", ops.convert_to_tensor(selection, dtype=pairs.dtype), pairs
        )
        off_centre = ops.sum(ops.square(grams[:centre])) + ops.sum(ops.square(grams[centre + 1 :]))
        return off_centre + ops.sum(ops.square(grams[centre] - ops.eye(rows, dtype=grams.dtype)))

    @staticmethod
    def _shifted_gram(taps, shift):
        """``sum_b W_{b+shift} W_b^T`` over the taps b where both taps exist."""
        (dh, dw), (rows, kh, kw) = shift, taps.shape[:3]
        h0, h1, w0, w1 = max(0, -dh), min(kh, kh - dh), max(0, -dw), min(kw, kw - dw)
        shifted = ops.reshape(taps[:, h0 + dh : h1 + dh, w0 + dw : w1 + dw, :], (rows, -1))
        base = ops.reshape(taps[:, h0:h1, w0:w1, :], (rows, -1))
        return ops.matmul(shifted, ops.transpose(base))

    def get_config(self):
        return {"weight": self.weight, "strides": self.strides}


def _kept_displacements(kh, kw, strides):
    """The tap displacements ``conv(W, W, padding k-1, stride)`` keeps, and the centre one
    (identity target)."""
    shifts_h = [p - (kh - 1) for p in range(0, 2 * kh - 1, strides)]
    shifts_w = [q - (kw - 1) for q in range(0, 2 * kw - 1, strides)]
    return [(dh, dw) for dh in shifts_h for dw in shifts_w], (
        shifts_h[len(shifts_h) // 2],
        shifts_w[len(shifts_w) // 2],
    )


@functools.lru_cache(maxsize=None)
def _displacement_selection(kh, kw, strides):
    """``S[d, a, b] = 1`` where tap a minus tap b is the kept displacement d, and the index of the
    centre d.

    Cached: eager backends (PyTorch) call the regulariser every step. Read-only for callers.
    """
    shifts, centre = _kept_displacements(kh, kw, strides)
    taps = [(i, j) for i in range(kh) for j in range(kw)]
    selection = np.zeros((len(shifts), len(taps), len(taps)), "float32")
    for d, (dh, dw) in enumerate(shifts):
        for a, (ia, ja) in enumerate(taps):
            for b, (ib, jb) in enumerate(taps):
                selection[d, a, b] = float(ia - ib == dh and ja - jb == dw)
    return selection, shifts.index(centre)
