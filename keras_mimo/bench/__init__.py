"""Throughput benchmarks behind ``keras-mimo bench``.

- :mod:`keras_mimo.bench.timing`: interleaved medians, worker processes, CSV/JSON, tables;
- :mod:`keras_mimo.bench.mimoconv`: WideResNet and MIMOConv images/s at N (``--family mimoconv``);
- :mod:`keras_mimo.bench.mimoformer`: attention and MIMOFormer sequences/s at M x N grids.

Importing these imports no Keras: each measurement runs in a worker process started as
``python -m keras_mimo.bench --worker KIND OPTIONS_JSON`` with its own KERAS_BACKEND. The
command-line options live in :mod:`keras_mimo.cli.bench`.
"""
