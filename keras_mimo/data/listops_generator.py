"""Command line for the Long Range Arena ListOps generator (see :mod:`keras_mimo.data.lra.listops`).

    python -m keras_mimo.data.listops_generator --output_dir DIR [--num_train 96000 --num_dev 2000
        --num_test 2000 --min_length 500 --max_length 2000 --max_depth 10 --max_args 10 --seed 0]

writes ``DIR/basic_train.tsv``, ``DIR/basic_val.tsv`` and ``DIR/basic_test.tsv``.
"""

import sys

from keras_mimo.data.lra.listops import main

if __name__ == "__main__":
    sys.exit(main())
