"""Worker entry point: ``python -m keras_mimo.bench --worker KIND OPTIONS_JSON``.

Prints the result rows of worker KIND (keras, reference or mimoformer) as one JSON line on
stdout. Any other arguments are those of ``keras-mimo bench``, which runs instead.
"""

import json
import os
import sys


def _worker(kind):
    if kind == "mimoformer":
        from keras_mimo.bench.mimoformer import worker

        return worker
    from keras_mimo.bench import mimoconv

    return {"keras": mimoconv.keras_worker, "reference": mimoconv.reference_worker}[kind]


def main(argv):
    if len(argv) == 3 and argv[0] == "--worker":
        from keras_mimo.cli import common

        if os.environ.get(common.QUIET_VARIABLE) == "1":  # set by a quiet keras-mimo command
            common.quiet_environment()
        print(json.dumps(_worker(argv[1])(json.loads(argv[2]))))
        return 0
    from keras_mimo.cli import main as cli_main

    return cli_main(["bench"] + list(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
