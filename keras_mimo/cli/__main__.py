"""``python -m keras_mimo.cli``: the same as the ``keras-mimo`` command."""

import sys

from keras_mimo.cli import main

sys.exit(main())
