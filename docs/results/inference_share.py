"""Where an inference pass of the Fashion-MNIST presets' architecture goes, and what it gains
over the WideResNet of the same body (TensorFlow backend, CPU).

For MIMOConv-10-2 with a stride-2 stem and a 64-channel (``initial_width=4``, the paper's) or a
16-channel (``initial_width=1``, the zoo's) stem, at N = 1, 2, 4, and for WRN-10-2 (stride-2
stem), each line times a prefix of the forward pass on a batch of raw uint8 images, with and
without XLA: ``stem`` = preprocessing, stem conv (BN folded), ReLU; ``+ binding`` adds binding
and superposition; ``whole`` is ``model.predict_on_batch``. The stem's share is
``stem / whole``; the speed-up is the WRN's time over the model's. Timings are medians of
blocks of calls in a row that take turns (``keras_mimo.bench.timing.block_medians``).
Usage: ``KERAS_BACKEND=tensorflow python docs/results/inference_share.py [--batch 1000]
[--widths 4,2,1]``.
"""

import argparse

import tensorflow as tf

from keras_mimo.bench.timing import block_medians
from keras_mimo.layers.residual import pad_one_pixel, stem_conv_then_batch_norm
from keras_mimo.models import MIMOConv, WideResNet
from keras_mimo.presets.bundled import load_bundled
from keras_mimo.presets.zoo import image_preprocessing

BODY = dict(depth=10, width=2, input_shape=(20, 20, 1), stem_stride=2, seed=0)


def stem(model, images):
    x = model.preprocessing(images)
    x = pad_one_pixel(x)
    return model.stem_act(stem_conv_then_batch_norm(x, model.stem_conv, model.stem_bn, False))


def stem_and_binding(model, images):
    return model.bind(stem(model, images), superposition=model.superposition)


def main(batch, repeats, widths=(4, 1)):
    images = tf.constant(load_bundled("fashion-mnist")[0][:batch])
    preprocessing = image_preprocessing("fashion-mnist")
    runs, labels = {}, []
    for jit in (False, True):
        wrn = WideResNet(**BODY, preprocessing=preprocessing)
        wrn.compile(jit_compile=jit)
        runs[(jit, "WRN-10-2", "whole")] = lambda m=wrn: m.predict_on_batch(images)
        for width in widths:
            for n in (1, 2, 4):
                model = MIMOConv(
                    **BODY,
                    initial_width=width,
                    capacity=4,
                    superposition=n,
                    preprocessing=preprocessing,
                )
                model.compile(jit_compile=jit)
                name = f"stem {16 * width}, N = {n}"
                for part, function in (("stem", stem), ("+ binding", stem_and_binding)):
                    compiled = tf.function(lambda x, m=model, f=function: f(m, x), jit_compile=jit)
                    runs[(jit, name, part)] = lambda c=compiled: c(images).numpy()
                runs[(jit, name, "whole")] = lambda m=model: m.predict_on_batch(images)
                labels.append(name)
    seconds = block_medians(runs, repeats)
    for jit in (False, True):
        wrn = seconds[(jit, "WRN-10-2", "whole")]
        print(
            f"\n{'XLA' if jit else 'no XLA'}: batch {batch}; WRN-10-2 {batch / wrn:,.0f} images/s"
        )
        print("model                 stem ms  +binding ms  whole ms  stem share  images/s  vs WRN")
        for name in dict.fromkeys(labels):
            s, b, w = (seconds[(jit, name, p)] for p in ("stem", "+ binding", "whole"))
            print(
                f"{name:20s} {1e3 * s:8.1f} {1e3 * b:12.1f} {1e3 * w:9.1f} {s / w:10.0%} "
                f"{batch / w:9,.0f}  x{wrn / w:.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--widths", default="4,1", help="comma-separated initial_width values (stem = 16 x each)"
    )
    args = parser.parse_args()
    main(args.batch, args.repeats, tuple(int(w) for w in args.widths.split(",")))
