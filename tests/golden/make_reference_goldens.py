"""Make golden test data from the reference PyTorch MIMOConv implementation.

What it makes
    One ``.npz`` per case in ``tests/data/reference/`` (see ``CASES`` below). Each file holds

    * ``config``: 0-d unicode array with a JSON object (case, model_class, block, binding,
      capacity, width, initial_width, layers, num_classes, input_channels, image_size,
      relu_parameter, torch_version, reference_commit, plus seed and
      kaiming_weight_significant_bits, which describe how the file was made);
    * ``param/<torch state_dict name>``: every state_dict entry with its torch name and shape
      (float32; ``num_batches_tracked`` as int64);
    * ``inputs``: float32 NCHW batch of 8 standard-normal images;
    * ``logits_n<N>``: eval-mode logits for ``inputs`` with ``model.num_img_sup = N``, for every
      N dividing the capacity;
    * ``binding_regularization`` and ``isometry_regularization``: float64 scalars (0.0 where the
      reference returns the integer 0).

    No weight is at its default: after building the model every parameter and buffer is
    overwritten from a seeded numpy generator (see ``randomize``). Weights drawn with the
    kaiming rule are rounded to ``KAIMING_SIGNIFICANT_BITS`` significant bits (still float32) so
    that deflate can shrink the files; without it the two width-2, [2,2,2] cases are ~2.7 MB
    each. The ``skip_init`` ``alpha`` scalars stay 0 (skip_init is off, so they are unused).

How to rerun
    python3 tests/golden/make_reference_goldens.py \
        --reference /path/to/multiple-input-multiple-output-nets
    python3 tests/golden/make_reference_goldens.py --check   # rebuild in memory, compare bytes

    The reference checkout is only imported (``<reference>/MIMOConv/src`` goes on sys.path);
    nothing from it is copied here. It needs torch (CPU is enough). Output is byte-for-byte
    reproducible on one machine: everything is seeded, torch runs single-threaded and the zip
    members carry a fixed timestamp.
"""

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

REFERENCE_COMMIT = "6cc0c7f"
BATCH = 8
KAIMING_SIGNIFICANT_BITS = 3
OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"

# Binding spelling is the reference's ("None" is a string). Layers are the 3-stage CIFAR form.
CASES = [
    dict(
        case="hrr_cap4_prelu",
        model_class="SuperWideISONet",
        block="AdjustedISOBlock",
        binding="HRR",
        capacity=4,
        layers=[1, 1, 1],
        width=1,
        initial_width=2,
        input_channels=3,
        image_size=16,
        num_classes=10,
    ),
    dict(
        case="hrr_cap2_srelu_deep",
        model_class="SuperWideISONet",
        block="BasicISOBlock",
        binding="HRR",
        capacity=2,
        layers=[2, 2, 2],
        width=2,
        initial_width=1,
        input_channels=3,
        image_size=16,
        num_classes=10,
    ),
    dict(
        case="mbat_cap4_prelu",
        model_class="SuperWideISONet",
        block="AdjustedISOBlock",
        binding="MBAT",
        capacity=4,
        layers=[1, 1, 1],
        width=1,
        initial_width=1,
        input_channels=3,
        image_size=16,
        num_classes=10,
    ),
    dict(
        case="none_cap4_relu",
        model_class="SuperWideResnet",
        block="BasicBlock",
        binding="None",
        capacity=4,
        layers=[1, 1, 1],
        width=1,
        initial_width=1,
        input_channels=3,
        image_size=16,
        num_classes=10,
    ),
    dict(
        case="wrn_cap1",
        model_class="SuperWideResnet",
        block="BasicBlock",
        binding="None",
        capacity=1,
        layers=[2, 2, 2],
        width=2,
        initial_width=1,
        input_channels=3,
        image_size=16,
        num_classes=7,
    ),
    dict(
        case="hrr_cap4_mnist",
        model_class="SuperWideISONet",
        block="AdjustedISOBlock",
        binding="HRR",
        capacity=4,
        layers=[1, 1, 1],
        width=1,
        initial_width=4,
        input_channels=1,
        image_size=20,
        num_classes=10,
    ),
    dict(
        case="hrr_cap2_isorelu",
        model_class="SuperWideISONet",
        block="BasicBlock",
        binding="HRR",
        capacity=2,
        layers=[1, 1, 1],
        width=1,
        initial_width=1,
        input_channels=3,
        image_size=16,
        num_classes=10,
    ),
]


def load_reference(reference):
    """Import the reference modules from ``<reference>/MIMOConv/src``."""
    src = Path(reference).resolve() / "MIMOConv" / "src"
    if not (src / "superposition.py").is_file():
        sys.exit(f"no MIMOConv/src/superposition.py under {reference}")
    sys.path.insert(0, str(src))
    from models import superwideisonet, superwideresnet  # noqa: E402  (reference code)

    return superwideresnet, superwideisonet


def coarse(x, bits):
    """Round to ``bits`` significant binary digits (keeps sign and exponent)."""
    mant, exp = np.frexp(x)
    return np.ldexp(np.round(mant * 2.0**bits) / 2.0**bits, exp)


def randomize(model, rng, torch, nn, srelu_cls):
    """Overwrite every parameter/buffer of ``model`` with seeded random values, in place.

    Returns the state_dict names that were deliberately left alone.
    """
    done = set()
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())

    def put(name, values):
        tensor = tensors[name]
        assert tuple(values.shape) == tuple(tensor.shape), (name, values.shape, tensor.shape)
        tensor.copy_(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)))
        done.add(name)

    keys = getattr(model, "channelConv", None)  # HRR keys
    mbat = getattr(model, "channelLinear", None)  # MBAT binding matrices
    for prefix, m in model.named_modules():
        p = prefix + "." if prefix else ""
        if m is keys or m is mbat:
            shape = tuple(m.weight.shape)
            per_key = shape[-1] if m is keys else shape[1]  # C: key length / channels per slot
            put(p + "weight", rng.normal(0.0, 1.0 / np.sqrt(per_key), shape))
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            shape = tuple(m.weight.shape)
            fan_in = int(np.prod(shape[1:]))
            w = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
            put(p + "weight", coarse(w, KAIMING_SIGNIFICANT_BITS))
            if m.bias is not None:
                put(p + "bias", rng.normal(0.0, 0.2, tuple(m.bias.shape)))
        elif isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            put(p + "weight", rng.uniform(0.5, 1.5, n))
            put(p + "bias", rng.normal(0.0, 0.2, n))
            put(p + "running_mean", rng.normal(0.0, 0.2, n))
            put(p + "running_var", rng.uniform(0.5, 2.0, n))
        elif isinstance(m, nn.PReLU):
            put(p + "weight", rng.uniform(0.2, 0.8, tuple(m.weight.shape)))
        elif isinstance(m, srelu_cls):
            put(p + "srelu_bias", rng.uniform(-1.5, -0.5, tuple(m.srelu_bias.shape)))
    left = [k for k in model.state_dict() if k not in done]
    unexpected = [
        k for k in left if not (k.endswith(".alpha") or k.endswith("num_batches_tracked"))
    ]
    assert not unexpected, f"not randomized: {unexpected}"
    return left


def build(spec, ref):
    """Build the reference model for one case (constructor defaults otherwise)."""
    resnet_mod, iso_mod = ref
    blocks = {
        "BasicBlock": resnet_mod.BasicBlock,
        "AdjustedISOBlock": iso_mod.AdjustedISOBlock,
        "BasicISOBlock": iso_mod.BasicISOBlock,
    }
    cls = {
        "SuperWideResnet": resnet_mod.SuperWideResnet,
        "SuperWideISONet": iso_mod.SuperWideISONet,
    }[spec["model_class"]]
    return cls(
        num_img_sup_cap=spec["capacity"],
        binding_type=spec["binding"],
        width=spec["width"],
        layers=list(spec["layers"]),
        initial_width=spec["initial_width"],
        num_classes=spec["num_classes"],
        block=blocks[spec["block"]],
        relu_parameter=None,
        skip_init=False,
        input_channels=spec["input_channels"],
    )


def make_case(index, spec, ref, torch):
    """Return the ordered dict of arrays for one case."""
    nn = torch.nn
    seed = 1000 + index
    torch.manual_seed(seed)  # only the (overwritten) default init uses torch's generator
    rng = np.random.default_rng(seed)
    model = build(spec, ref).float().eval()
    with torch.no_grad():
        randomize(model, rng, torch, nn, ref[1].SReLU)
        shape = (BATCH, spec["input_channels"], spec["image_size"], spec["image_size"])
        inputs = rng.standard_normal(shape).astype(np.float32)

        config = dict(
            spec,
            relu_parameter=None,
            torch_version=torch.__version__,
            reference_commit=REFERENCE_COMMIT,
            seed=seed,
            kaiming_weight_significant_bits=KAIMING_SIGNIFICANT_BITS,
        )
        arrays = {"config": np.array(json.dumps(config, sort_keys=True))}
        for name, value in model.state_dict().items():
            dtype = np.int64 if name.endswith("num_batches_tracked") else np.float32
            arrays["param/" + name] = value.detach().cpu().numpy().astype(dtype)
        arrays["inputs"] = inputs

        cap = spec["capacity"]
        for n in [d for d in range(1, cap + 1) if cap % d == 0]:
            model.num_img_sup = n
            logits = model(torch.from_numpy(inputs.copy()))
            arrays[f"logits_n{n}"] = logits.numpy().astype(np.float32)
        model.num_img_sup = cap

        arrays["binding_regularization"] = np.float64(float(model.binding_regularization()))
        arrays["isometry_regularization"] = np.float64(float(model.isometry_regularization("cpu")))
    return arrays


def npz_bytes(arrays):
    """Serialize like np.savez_compressed, but with fixed zip timestamps (reproducible bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reference",
        default="/tmp/ref",
        help="checkout of IBM/multiple-input-multiple-output-nets",
    )
    parser.add_argument("--out", default=str(OUT_DIR), help="output folder")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail unless the files in --out are reproduced exactly",
    )
    args = parser.parse_args()

    ref = load_reference(args.reference)
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mismatched = []
    for index, spec in enumerate(CASES):
        arrays = make_case(index, spec, ref, torch)
        data = npz_bytes(arrays)
        path = out / f"{spec['case']}.npz"
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            mismatched += [] if same else [path.name]
            status = "same" if same else "DIFFERENT"
        else:
            tmp = path.with_suffix(".npz.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            status = "written"
        logits = [v for k, v in arrays.items() if k.startswith("logits_n")]
        scale = max(float(np.abs(v).max()) for v in logits)
        std = float(np.mean([v.std() for v in logits]))
        n_params = sum(k.startswith("param/") for k in arrays)
        print(
            f"{spec['case']:<22} {len(data) / 1024:7.1f} KiB  {n_params:3d} params  "
            f"logits max|x| {scale:8.3f} "
            f"std {std:7.3f}  bind_reg {float(arrays['binding_regularization']):.4f}  "
            f"iso_reg {float(arrays['isometry_regularization']):.3f}  [{status}]"
        )
    if mismatched:
        sys.exit(f"not reproduced: {', '.join(mismatched)}")


if __name__ == "__main__":
    main()
