"""Make golden test data from the reference MIMOFormer attention modules (PyTorch).

What it makes
    One ``.npz`` per case in ``tests/data/reference_mimoformer/`` (see ``CASES``). Each holds

    * ``config``: 0-d unicode array with a JSON object (case, module, capacity, grids, batch,
      heads, length, head_dim, rp_dim, embedding_dim, seed, torch_version,
      performer_pytorch_version);
    * ``query``, ``key``, ``value``: float32 ``(batch, heads, length, head_dim)``, the reference's
      layout (standard normal);
    * ``mask``: float32 ``(batch, length)``, 1 for tokens, 0 for padding (random lengths,
      at least one sequence unpadded);
    * ``projection``: the module's FAVOR+ projection buffer ``(rp_dim, head_dim)``;
    * ``keys``: the bipolar bindings ``(M, N, head_dim)`` (MIMOFormer cases);
    * ``output_<M>x<N>``: the module's forward output at grid (M, N), reference layout. For
      ``MimoformerAttention`` one per grid in ``grids`` (smaller grids are the MIMO warm-up,
      which slices the keys); for ``BlockformerAttention`` the bundled ``(batch / M, H, L, D)``;
    * blockformer cases also: ``stream_keys`` (``bindings_embedding`` as ``(M, N, embedding_dim)``),
      ``stream`` ``(batch, length, embedding_dim)``, ``superposed_stream`` (its
      ``skipconnection``), ``bundles`` ``(batch / M, length, embedding_dim)`` and ``retrieved``
      (its ``retrieve``).

    Whole-model cases (``model_*``, ``MODEL_CASES``): the reference encoder (``model.Model``:
    embeddings, ``num_layers`` blocks, final LayerNorm times the mask) and classifier head
    (``model_wrapper.SCHead``, MEAN pooling), in eval mode. Each holds ``config``, every state_dict
    entry as ``param/<torch name>`` (LayerNorm and embedding weights drawn at random, the rest at
    the reference's seeded default initialisation), ``token_ids`` ``(batch, length)`` int32 with
    padding id 0, ``mask`` (``token_ids != 0``), ``pooled`` (the head's input) and
    ``logits_<M>x<N>`` (for the 'att.' case also at the MIMO warm-up grid, ``start_MIMO_warmup``).

How to rerun
    pip install performer-pytorch torch==2.13.0      # the reference modules import it
    python3 tests/golden/make_mimoformer_goldens.py --reference /tmp/ref/MIMOFormer/code
    python3 tests/golden/make_mimoformer_goldens.py --check   # rebuild in memory, compare arrays

    The reference (github IBM/multiple-input-multiple-output-nets, folder MIMOFormer/code) is only
    imported; nothing from it is copied here. Every random quantity is seeded; torch runs
    single-threaded.
"""

import argparse
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "reference_mimoformer"
HEADS, LENGTH, HEAD_DIM, RP_DIM, EMBEDDING_DIM = 2, 16, 8, 16, 12

CASES = [
    dict(case="performer", module="PerformerAttention", capacity=[1, 1], grids=[[1, 1]], batch=4),
    dict(
        case="mimoformer_2x2",
        module="MimoformerAttention",
        capacity=[2, 2],
        grids=[[2, 2], [2, 1], [1, 2], [1, 1]],
        batch=8,
    ),
    dict(
        case="mimoformer_4x2",
        module="MimoformerAttention",
        capacity=[4, 2],
        grids=[[4, 2], [2, 1]],
        batch=16,
    ),
    dict(
        case="blockformer_2x2",
        module="BlockformerAttention",
        capacity=[2, 2],
        grids=[[2, 2]],
        batch=8,
    ),
    dict(
        case="blockformer_3x2",
        module="BlockformerAttention",
        capacity=[3, 2],
        grids=[[3, 2]],
        batch=12,
    ),
]


MODEL_CASES = [
    dict(case="model_performer", attn_type="performer-256", capacity=[1, 1], batch=4),
    dict(case="model_att_2x2", attn_type="mimoformer", capacity=[2, 2], batch=8),
    dict(case="model_attmlp_2x2", attn_type="blockformer", capacity=[2, 2], batch=8),
]
MODEL = dict(
    vocab_size=12,
    max_seq_len=16,
    embedding_dim=EMBEDDING_DIM,
    transformer_hidden_dim=24,
    head_dim=HEAD_DIM,
    num_head=HEADS,
    num_layers=2,
    num_classes=3,
)


def load_reference(path):
    """Import the reference attention modules from ``<path>`` (MIMOFormer/code)."""
    code = Path(path).resolve()
    if not (code / "attention_mimoformer.py").is_file():
        sys.exit(
            f"no attention_mimoformer.py under {path} (pass --reference <checkout>/MIMOFormer/code)"
        )
    sys.path.insert(0, str(code))
    try:
        import attention_blockformer  # noqa: E402  (reference code)
        import attention_mimoformer  # noqa: E402
        import attention_performer  # noqa: E402
    except ImportError as error:
        sys.exit(
            f"{error}: the reference needs the PyPI package performer-pytorch "
            "(pip install performer-pytorch torch==2.13.0)"
        )
    import model as reference_model  # noqa: E402
    import model_wrapper  # noqa: E402

    return {
        "Model": reference_model.Model,
        "SCHead": model_wrapper.SCHead,
        "PerformerAttention": attention_performer.PerformerAttention,
        "MimoformerAttention": attention_mimoformer.MimoformerAttention,
        "BlockformerAttention": attention_blockformer.BlockformerAttention,
    }


def reference_config(spec):
    """The config dict the reference constructors read."""
    return {
        "head_dim": HEAD_DIM,
        "rp_dim": RP_DIM,
        "kernel_type": "relu",
        "mimo_M": spec["capacity"][0],
        "mimo_N": spec["capacity"][1],
        "embedding_dim": EMBEDDING_DIM,
        "attention_dropout": 0.0,
    }


def make_case(index, spec, modules, torch):
    seed = 2000 + index
    torch.manual_seed(seed)  # draws the projection and the bindings
    rng = np.random.default_rng(seed)
    module = modules[spec["module"]](reference_config(spec)).eval()
    batch = spec["batch"]
    qkv = [
        rng.standard_normal((batch, HEADS, LENGTH, HEAD_DIM)).astype(np.float32) for _ in range(3)
    ]
    lengths = rng.integers(3, LENGTH + 1, size=batch)
    lengths[rng.integers(batch)] = LENGTH
    mask = (np.arange(LENGTH)[None, :] < lengths[:, None]).astype(np.float32)
    from importlib.metadata import version

    config = dict(
        spec,
        heads=HEADS,
        length=LENGTH,
        head_dim=HEAD_DIM,
        rp_dim=RP_DIM,
        embedding_dim=EMBEDDING_DIM,
        seed=seed,
        torch_version=torch.__version__,
        performer_pytorch_version=version("performer-pytorch"),
    )
    arrays = {"config": np.array(json.dumps(config, sort_keys=True))}
    arrays.update(query=qkv[0], key=qkv[1], value=qkv[2], mask=mask)
    tensors = [torch.from_numpy(a.copy()) for a in qkv + [mask]]
    m_cap, n_cap = spec["capacity"]
    with torch.no_grad():
        if spec["module"] == "PerformerAttention":
            arrays["projection"] = module.attn_fn.projection_matrix.numpy().astype(np.float32)
            arrays["output_1x1"] = module(*tensors).numpy()
            return arrays
        arrays["projection"] = module.projection_matrix.numpy().astype(np.float32)
        arrays["keys"] = module.bindings.numpy().reshape(m_cap, n_cap, HEAD_DIM).astype(np.float32)
        if spec["module"] == "MimoformerAttention":
            for m, n in spec["grids"]:
                module.set_mimo_MN(m, n)
                arrays[f"output_{m}x{n}"] = module(*tensors).numpy()
            module.set_mimo_MN(m_cap, n_cap)
            return arrays
        arrays["output_%dx%d" % (m_cap, n_cap)] = module(*tensors).numpy()
        arrays["stream_keys"] = module.bindings_embedding.numpy().reshape(
            m_cap, n_cap, EMBEDDING_DIM
        )
        stream = rng.standard_normal((batch, LENGTH, EMBEDDING_DIM)).astype(np.float32)
        bundles = rng.standard_normal((batch // m_cap, LENGTH, EMBEDDING_DIM)).astype(np.float32)
        arrays["stream"] = stream
        arrays["superposed_stream"] = module.skipconnection(torch.from_numpy(stream.copy())).numpy()
        arrays["bundles"] = bundles
        arrays["retrieved"] = module.retrieve(torch.from_numpy(bundles.copy())).numpy()
    return arrays


def make_model_case(index, spec, modules, torch):
    seed = 3000 + index
    torch.manual_seed(seed)  # default initialisation, projections and bindings
    rng = np.random.default_rng(seed)
    m_cap, n_cap = spec["capacity"]
    config = dict(
        MODEL,
        learn_pos_emb=True,
        tied_weights=False,
        dropout_prob=0.1,
        attention_dropout=0.1,
        pooling_mode="MEAN",
        attention_grad_checkpointing=False,
        attn_type=spec["attn_type"],
        rp_dim=RP_DIM,
        kernel_type="relu",
        mimo_M=m_cap,
        mimo_N=n_cap,
    )
    encoder = modules["Model"](config).eval()
    head = modules["SCHead"](config).eval()
    batch, length = spec["batch"], MODEL["max_seq_len"]
    ids = rng.integers(1, MODEL["vocab_size"], size=(batch, length)).astype(np.int32)
    lengths = rng.integers(3, length + 1, size=batch)
    lengths[rng.integers(batch)] = length
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    mask = (ids != 0).astype(np.float32)
    arrays = {
        "config": np.array(
            json.dumps(
                dict(spec, model=config, seed=seed, torch_version=torch.__version__), sort_keys=True
            )
        )
    }
    with torch.no_grad():
        for module in (encoder, head):
            for name, tensor in module.named_parameters():
                if name.startswith("embeddings."):
                    tensor.copy_(
                        torch.from_numpy(
                            rng.standard_normal(tuple(tensor.shape)).astype(np.float32)
                        )
                    )
                elif "norm" in name:
                    low, high = (0.5, 1.5) if name.endswith("weight") else (-0.3, 0.3)
                    tensor.copy_(
                        torch.from_numpy(
                            rng.uniform(low, high, tuple(tensor.shape)).astype(np.float32)
                        )
                    )
        for prefix, module in (("encoder/", encoder), ("head/", head)):
            for name, value in module.state_dict().items():
                arrays["param/" + prefix + name] = value.numpy().astype(np.float32)
        arrays["token_ids"] = ids
        arrays["mask"] = mask

        def run():
            tokens = encoder(torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(mask.copy()))
            pooled = tokens.mean(dim=1)  # the reference's MEAN pooling
            return pooled.numpy(), head(tokens).numpy()

        arrays["pooled"], arrays["logits_%dx%d" % (m_cap, n_cap)] = run()
        if spec["attn_type"] == "mimoformer":
            encoder.start_MIMO_warmup()
            arrays["logits_%dx%d" % (m_cap // 2, n_cap // 2)] = run()[1]
            encoder.stop_MIMO_warmup()
    return arrays


def npz_bytes(arrays):
    """Serialize like np.savez_compressed, with fixed zip timestamps (reproducible bytes)."""
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


def same_arrays(path, arrays):
    if not path.is_file():
        return False
    with np.load(path) as old:
        if sorted(old.files) != sorted(arrays):
            return False
        return all(np.array_equal(old[k], np.asarray(v)) for k, v in arrays.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reference",
        default="/tmp/ref/MIMOFormer/code",
        help="MIMOFormer/code folder of a checkout of IBM/multiple-input-multiple-output-nets",
    )
    parser.add_argument("--out", default=str(OUT_DIR), help="output folder")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail unless the files in --out hold the same arrays",
    )
    args = parser.parse_args()

    modules = load_reference(args.reference)
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mismatched = []
    jobs = [(spec, make_case, index) for index, spec in enumerate(CASES)]
    jobs += [(spec, make_model_case, index) for index, spec in enumerate(MODEL_CASES)]
    for spec, make, index in jobs:
        arrays = make(index, spec, modules, torch)
        path = out / f"{spec['case']}.npz"
        if args.check:
            same = same_arrays(path, arrays)
            mismatched += [] if same else [path.name]
            status = "same" if same else "DIFFERENT"
        else:
            data = npz_bytes(arrays)
            tmp = path.with_suffix(".npz.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            status = f"written, {len(data) / 1024:.1f} KiB"
        outputs = {k: v for k, v in arrays.items() if k.startswith(("output_", "logits_"))}
        scales = " ".join(
            f"{k.split('_')[1]}: max|x| {np.abs(v).max():.3f}" for k, v in outputs.items()
        )
        print(f"{spec['case']:<18} {scales}  [{status}]")
    if mismatched:
        sys.exit(f"not reproduced: {', '.join(mismatched)}")


if __name__ == "__main__":
    main()
