"""Long Range Arena (Tay et al. 2020) data for MIMOFormer, as tf.data pipelines.

Every loader yields ``(tokens, label)`` batches of ``batch_size * M * N`` sequences (``grid`` = N or
(M, N); the model superposes them into ``batch_size`` bundles), int32 tokens right-padded with 0 so
that ``mask = tokens != 0``, int32 labels. Training splits are shuffled with ``seed`` and drop the
last incomplete batch; 'dev' and 'test' keep every example, in file order. Without the data a
:class:`LRADataNotFoundError` says how to get it.

================= ================================= ========= ======= ==============================
task              loader                            length    classes data
================= ================================= ========= ======= ==============================
listops           :func:`listops_dataset`           2000      10      :func:`write_listops_splits`,
                                                                      release
text              :func:`imdb_bytes_dataset`        1000/4000 2       tfds ``imdb_reviews``
retrieval         :func:`retrieval_dataset`         2 x 4000  2       release
                                                                      ``tsv_data/new_aan_pairs.*``
image             :func:`cifar10_grey_dataset`      1024      10      tfds ``cifar10``
pathfinder        :func:`pathfinder_dataset`        1024      2       release
                                                                      ``pathfinder32/<difficulty>``
seq-fashion-mnist :func:`seq_fashion_mnist_dataset` 784       10      Fashion-MNIST IDX files, found
                                                                      as the image recipes do
================= ================================= ========= ======= ==============================

``seq-fashion-mnist`` (sequential Fashion-MNIST) is keras-mimo's own task, in neither the Long
Range Arena nor the MIMOFormer reference: LRA's Image task on Fashion-MNIST's 28 x 28 grey images
(the raw pixel values, row by row; splits train[:90%] / train[90%:] / test as Image's), trained
with Image's settings.

``lra_dataset(task, split, **options)`` picks the loader by task name.
"""

from keras_mimo.data.lra._common import (
    LRA_RELEASE_BUCKET,
    LRA_RELEASE_URL,
    LRADataNotFoundError,
    grid_size,
    normalize_split,
)
from keras_mimo.data.lra.image import (
    IMAGE_NUM_CLASSES,
    IMAGE_VOCAB_SIZE,
    cifar10_grey_dataset,
    cifar10_grey_tokens,
)
from keras_mimo.data.lra.listops import (
    LISTOPS_NUM_CLASSES,
    LISTOPS_OPERATORS,
    LISTOPS_VOCAB,
    LISTOPS_VOCAB_SIZE,
    evaluate_listops,
    generate_listops,
    generate_listops_tree,
    listops_dataset,
    listops_tokenizer,
    listops_tree_length,
    listops_tree_to_string,
    listops_tree_value,
    write_listops_splits,
)
from keras_mimo.data.lra.pathfinder import (
    PATHFINDER_DIFFICULTIES,
    PATHFINDER_NUM_CLASSES,
    PATHFINDER_VOCAB_SIZE,
    pathfinder_dataset,
    pathfinder_examples,
)
from keras_mimo.data.lra.retrieval import (
    RETRIEVAL_NUM_CLASSES,
    RETRIEVAL_VOCAB_SIZE,
    retrieval_dataset,
)
from keras_mimo.data.lra.seq_fashion_mnist import (
    SEQ_FASHION_MNIST_LENGTH,
    SEQ_FASHION_MNIST_NUM_CLASSES,
    SEQ_FASHION_MNIST_VOCAB_SIZE,
    fashion_mnist_tokens,
    seq_fashion_mnist_dataset,
)
from keras_mimo.data.lra.text import TEXT_NUM_CLASSES, TEXT_VOCAB_SIZE, imdb_bytes_dataset

LRA_TASKS = {
    # task: (loader, classes, vocabulary size with the default options, sequence length by default)
    "listops": (listops_dataset, LISTOPS_NUM_CLASSES, LISTOPS_VOCAB_SIZE, 2000),
    "text": (imdb_bytes_dataset, TEXT_NUM_CLASSES, TEXT_VOCAB_SIZE, 1000),
    "retrieval": (retrieval_dataset, RETRIEVAL_NUM_CLASSES, RETRIEVAL_VOCAB_SIZE, 4000),
    "image": (cifar10_grey_dataset, IMAGE_NUM_CLASSES, IMAGE_VOCAB_SIZE, 1024),
    "pathfinder": (pathfinder_dataset, PATHFINDER_NUM_CLASSES, PATHFINDER_VOCAB_SIZE, 1024),
    "seq-fashion-mnist": (  # keras-mimo's own task, with LRA Image's settings
        seq_fashion_mnist_dataset,
        SEQ_FASHION_MNIST_NUM_CLASSES,
        SEQ_FASHION_MNIST_VOCAB_SIZE,
        SEQ_FASHION_MNIST_LENGTH,
    ),
}


def lra_dataset(task, split="train", **kwargs):
    """``lra_dataset('listops', 'dev', data_dir=..., batch_size=8, grid=(2, 2))``: the
    task's loader.

    An unknown task raises ``keras_mimo.registry.UnknownNameError`` naming the closest tasks.
    """
    from keras_mimo.registry.names import lookup

    loader = lookup(LRA_TASKS, task, "Long Range Arena task")[0]
    return loader(split=split, **kwargs)


__all__ = [
    "LRA_RELEASE_BUCKET",
    "LRA_RELEASE_URL",
    "LRA_TASKS",
    "LRADataNotFoundError",
    "grid_size",
    "normalize_split",
    "lra_dataset",
    "LISTOPS_NUM_CLASSES",
    "LISTOPS_OPERATORS",
    "LISTOPS_VOCAB",
    "LISTOPS_VOCAB_SIZE",
    "evaluate_listops",
    "generate_listops",
    "generate_listops_tree",
    "listops_dataset",
    "listops_tokenizer",
    "listops_tree_length",
    "listops_tree_to_string",
    "listops_tree_value",
    "write_listops_splits",
    "TEXT_NUM_CLASSES",
    "TEXT_VOCAB_SIZE",
    "imdb_bytes_dataset",
    "RETRIEVAL_NUM_CLASSES",
    "RETRIEVAL_VOCAB_SIZE",
    "retrieval_dataset",
    "IMAGE_NUM_CLASSES",
    "IMAGE_VOCAB_SIZE",
    "cifar10_grey_tokens",
    "cifar10_grey_dataset",
    "PATHFINDER_DIFFICULTIES",
    "PATHFINDER_NUM_CLASSES",
    "PATHFINDER_VOCAB_SIZE",
    "pathfinder_dataset",
    "pathfinder_examples",
    "SEQ_FASHION_MNIST_LENGTH",
    "SEQ_FASHION_MNIST_NUM_CLASSES",
    "SEQ_FASHION_MNIST_VOCAB_SIZE",
    "fashion_mnist_tokens",
    "seq_fashion_mnist_dataset",
]
