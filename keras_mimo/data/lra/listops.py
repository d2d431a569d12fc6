"""ListOps (Long Range Arena): a faithful generator of the LRA task, its evaluator, TSV files and
the loader.

The generator follows the process of LRA's ``lra_benchmarks/data/listops.py`` (Tay et al. 2020):

* a node at depth ``d`` (the root has depth 1) is an operator with probability 0.25 when
  ``d < max_depth`` and a value otherwise; at ``d == max_depth`` it is always a value;
* a value is uniform over 0..9; an operator node draws its number of arguments uniformly from
  2..max_args, generates the arguments left to right, and only then draws its operator uniformly
  from (MIN, MAX, MED, SM);
* the length of a tree is its number of tokens once brackets are dropped: 1 per value, 2 per
  operator (the operator token and its closing ``]``);
* trees are kept when ``min_length < length < max_length`` (strict, as in LRA), duplicates are
  dropped, and the first ``num_train`` / ``num_dev`` / ``num_test`` distinct trees form the splits.

The random draws are made in the same order, with the same ``random`` calls, as LRA's generator, so
a ``random.Random(seed)`` here produces the same trees as LRA's code after ``random.seed(seed)``.
(LRA itself splits the trees in the iteration order of a Python ``set``, which is not reproducible;
we split them in the order they were generated, which gives the same distribution and is
deterministic.)

Values: MIN, MAX as usual; ``MED`` is ``int(numpy.median(args))``, i.e. the middle element for an
odd count and the floor of the mean of the two middle elements for an even count; ``SM`` is the sum
modulo 10. (LRA also defines FIRST and LAST but does not use them; they are available here through
``operators=``.)

Files: ``{task}_train.tsv``, ``{task}_val.tsv``, ``{task}_test.tsv`` (task ``basic`` as in the LRA
release folder ``listops-1000``), tab-separated with a ``Source`` and a ``Target`` column, written
with Python's csv writer exactly as LRA writes them, e.g. ``( ( ( [MAX 2 ) 9 ) ] )\t9``.

Tokens: as LRA's input pipeline, ``]`` becomes ``X``, parentheses are dropped, and the text is split
on white space. LRA's vocabulary order depends on a Python ``set``; ours is fixed
(``LISTOPS_VOCAB``): 0 padding, values ``0``..``9`` -> 1..10, ``[MIN`` 11, ``[MAX`` 12, ``[MED`` 13,
``[SM`` 14, ``[FIRST`` 15, ``[LAST`` 16, ``X`` (closing bracket) 17, anything else 18 (LRA's one
out-of-vocabulary bucket). ``LISTOPS_VOCAB_SIZE`` is 19.

Command line::

    python -m keras_mimo.data.listops_generator --output_dir DIR [--num_train 96000 --num_dev 2000
        --num_test 2000 --min_length 500 --max_length 2000 --max_depth 10 --max_args 10 --seed 0]
"""

import argparse
import csv
import os
import random

from keras_mimo.data.lra import _common
from keras_mimo.registry.datasets import DATASETS

MIN = "[MIN"
MAX = "[MAX"
MED = "[MED"
FIRST = "[FIRST"
LAST = "[LAST"
SUM_MOD = "[SM"
END = "]"

LISTOPS_OPERATORS = (MIN, MAX, MED, SUM_MOD)
ALL_LISTOPS_OPERATORS = (MIN, MAX, MED, SUM_MOD, FIRST, LAST)
VALUE_PROBABILITY = 0.25  # LRA's VALUE_P: a node is an operator when random() <= 0.25

_VALUES = range(10)

LISTOPS_VOCAB = (
    ("<pad>",)
    + tuple(str(v) for v in range(10))
    + (MIN, MAX, MED, SUM_MOD, FIRST, LAST, "X", "<unk>")
)
LISTOPS_UNK_ID = len(LISTOPS_VOCAB) - 1
LISTOPS_VOCAB_SIZE = len(LISTOPS_VOCAB)
LISTOPS_NUM_CLASSES = DATASETS["listops"].num_classes

_SPLIT_FILE = {"train": "train", "dev": "val", "test": "test"}


# --------------------------------------------------------------------------------------------------
# trees: a value is an int 0..9, an operator node is (operator, (argument, argument, ...))
# --------------------------------------------------------------------------------------------------
def generate_listops_tree(rng, max_depth=10, max_args=10, operators=LISTOPS_OPERATORS, depth=1):
    """One random tree of the LRA process; returns ``(tree, length)``.

    ``rng`` is a ``random.Random``. ``length`` counts tokens without brackets (values 1,
    operators 2).
    """
    r = rng.random() if depth < max_depth else 1.0
    if r > VALUE_PROBABILITY:
        return rng.choice(_VALUES), 1
    num_args = rng.randint(2, max_args)
    args = []
    length = 2
    for _ in range(num_args):
        sub, sub_length = generate_listops_tree(rng, max_depth, max_args, operators, depth + 1)
        args.append(sub)
        length += sub_length
    op = rng.choice(operators)
    return (op, tuple(args)), length


def listops_tree_to_string(tree):
    """LRA's bracketed text: ``(op, (2, 9))`` -> ``'( ( ( [MAX 2 ) 9 ) ] )'``."""
    if isinstance(tree, int):
        return str(tree)
    op, args = tree
    parts = ["( " * (len(args) + 1), op, " ", listops_tree_to_string(args[0]), " )"]
    for a in args[1:]:
        parts += [" ", listops_tree_to_string(a), " )"]
    parts.append(" ] )")
    return "".join(parts)


def listops_tree_length(tree):
    """Number of tokens without brackets."""
    if isinstance(tree, int):
        return 1
    return 2 + sum(listops_tree_length(a) for a in tree[1])


def _apply(op, args):
    if op == MIN:
        return min(args)
    if op == MAX:
        return max(args)
    if op == MED:
        s = sorted(args)
        k = len(s)
        # int(numpy.median(s)): the mean of the two middle values, truncated (all values are >= 0)
        return s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) // 2
    if op == SUM_MOD:
        return sum(args) % 10
    if op == FIRST:
        return args[0]
    if op == LAST:
        return args[-1]
    raise ValueError(f"unknown ListOps operator {op!r}")


def listops_tree_value(tree):
    """The label of a tree (an int 0..9)."""
    if isinstance(tree, int):
        return tree
    op, args = tree
    return _apply(op, [listops_tree_value(a) for a in args])


def evaluate_listops(source):
    """Value of a ListOps expression given as text.

    Accepts LRA's TSV form (``( ( [MAX 2 ) 9 ) ] )``), the bracket-free form (``[MAX 2 9 ]``) and
    the tokenised form with ``X`` for ``]``. Raises ValueError on malformed input.
    """
    tokens = source.replace("(", " ").replace(")", " ").split()
    stack = []  # frames: [operator, [argument values]]
    result = None
    for tok in tokens:
        if tok in (END, "X"):
            if not stack:
                raise ValueError(f"unbalanced ']' in {source!r}")
            op, args = stack.pop()
            if not args:
                raise ValueError(f"operator {op} without arguments in {source!r}")
            value = _apply(op, args)
        elif tok.startswith("["):
            if tok not in ALL_LISTOPS_OPERATORS:
                raise ValueError(f"unknown ListOps operator {tok!r}")
            stack.append((tok, []))
            continue
        elif tok.isdigit() and len(tok) == 1:
            value = int(tok)
        else:
            raise ValueError(f"unexpected token {tok!r} in {source!r}")
        if stack:
            stack[-1][1].append(value)
        elif result is None:
            result = value
        else:
            raise ValueError(f"more than one expression in {source!r}")
    if stack or result is None:
        raise ValueError(f"incomplete ListOps expression {source!r}")
    return result


# --------------------------------------------------------------------------------------------------
# generation and files
# --------------------------------------------------------------------------------------------------
def generate_listops(
    num_examples,
    *,
    min_length=500,
    max_length=2000,
    max_depth=10,
    max_args=10,
    seed=0,
    operators=LISTOPS_OPERATORS,
):
    """``num_examples`` distinct (source text, label) pairs with
    ``min_length < length < max_length``.

    Deterministic for a given seed and arguments.
    """
    if max_length - min_length < 2:
        raise ValueError(
            f"no length lies strictly between min_length={min_length} and max_length={max_length}"
        )
    if max_args < 2:
        raise ValueError("max_args must be at least 2")
    rng = random.Random(seed)
    seen = set()
    out = []
    while len(out) < num_examples:
        tree, length = generate_listops_tree(rng, max_depth, max_args, operators)
        if min_length < length < max_length and tree not in seen:
            seen.add(tree)
            out.append((listops_tree_to_string(tree), int(listops_tree_value(tree))))
    return out


def listops_split_path(data_dir, split, task="basic"):
    """``data_dir/{task}_{train,val,test}.tsv`` for split 'train', 'dev' or 'test'."""
    return os.path.join(data_dir, f"{task}_{_SPLIT_FILE[_common.normalize_split(split)]}.tsv")


def write_listops_tsv(rows, path):
    """Write (source, target) rows under a ``Source``/``Target`` header, as LRA does (csv, tab)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["Source", "Target"])
        writer.writerows(rows)


def write_listops_splits(
    output_dir,
    *,
    num_train=96000,
    num_dev=2000,
    num_test=2000,
    min_length=500,
    max_length=2000,
    max_depth=10,
    max_args=10,
    seed=0,
    task="basic",
    operators=LISTOPS_OPERATORS,
):
    """Generate LRA ListOps and write ``{task}_train.tsv``, ``{task}_val.tsv``, ``{task}_test.tsv``.

    Defaults are LRA's (96k / 2k / 2k, lengths in (500, 2000), depth 10, 10 arguments). For CPU work
    use a smaller ``max_length`` (and ``min_length``) and load with the same ``max_length``.
    Returns ``{'train': path, 'dev': path, 'test': path}``.
    """
    rows = generate_listops(
        num_train + num_dev + num_test,
        min_length=min_length,
        max_length=max_length,
        max_depth=max_depth,
        max_args=max_args,
        seed=seed,
        operators=operators,
    )
    os.makedirs(output_dir, exist_ok=True)
    parts = {
        "train": rows[:num_train],
        "dev": rows[num_train : num_train + num_dev],
        "test": rows[num_train + num_dev :],
    }
    paths = {}
    for split, part in parts.items():
        paths[split] = listops_split_path(output_dir, split, task)
        write_listops_tsv(part, paths[split])
    return paths


def main(argv=None):
    """Command line: write LRA ListOps splits into a folder."""
    p = argparse.ArgumentParser(
        prog="python -m keras_mimo.data.listops_generator",
        description="Generate the Long Range Arena ListOps task as TSV files.",
    )
    p.add_argument("--output_dir", required=True)
    p.add_argument("--num_train", type=int, default=96000)
    p.add_argument("--num_dev", "--num_valid", dest="num_dev", type=int, default=2000)
    p.add_argument("--num_test", type=int, default=2000)
    p.add_argument("--min_length", type=int, default=500)
    p.add_argument("--max_length", type=int, default=2000)
    p.add_argument("--max_depth", type=int, default=10)
    p.add_argument("--max_args", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", default="basic")
    a = p.parse_args(argv)
    paths = write_listops_splits(
        a.output_dir,
        num_train=a.num_train,
        num_dev=a.num_dev,
        num_test=a.num_test,
        min_length=a.min_length,
        max_length=a.max_length,
        max_depth=a.max_depth,
        max_args=a.max_args,
        seed=a.seed,
        task=a.task,
    )
    for split, path in paths.items():
        print(f"{split}: {path}")
    return 0


# --------------------------------------------------------------------------------------------------
# loader
# --------------------------------------------------------------------------------------------------
def _missing_message(path, data_dir, task):
    return (
        f"ListOps file {path} not found (data_dir={data_dir!r}, task={task!r}). "
        f"Generate the task with "
        f"`python -m keras_mimo.data.listops_generator --output_dir {data_dir}` (or "
        f"keras_mimo.data.lra.write_listops_splits({data_dir!r}); "
        f"add e.g. --max_length 500 --min_length 100 "
        f"for shorter sequences on CPU), or use LRA's own files: "
        + _common.release_hint("listops-1000")
    )


def _resolve_dir(data_dir, task):
    if data_dir is None:
        raise _common.LRADataNotFoundError(_missing_message(f"{task}_train.tsv", "<folder>", task))
    data_dir = os.fspath(data_dir)
    if not os.path.exists(os.path.join(data_dir, f"{task}_train.tsv")):
        inner = _common.find_in(
            data_dir, ["listops-1000", os.path.join("lra_release", "listops-1000")]
        )
        if inner is not None and os.path.exists(os.path.join(inner, f"{task}_train.tsv")):
            return inner
    return data_dir


def listops_tokenizer():
    """A function: scalar tf.string (TSV ``Source``) -> int32 [n] token ids, unpadded (see module
    doc)."""
    tf = _common._tf()
    keys = tf.constant(list(LISTOPS_VOCAB[1:-1]))
    ids = tf.constant(list(range(1, LISTOPS_UNK_ID)), dtype=tf.int32)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=LISTOPS_UNK_ID
    )

    def tokenize(source):
        s = tf.strings.regex_replace(source, r"\]", "X")
        s = tf.strings.regex_replace(s, r"[()]", "")
        return table.lookup(tf.strings.split(s))

    return tokenize


def listops_dataset(
    data_dir,
    split="train",
    *,
    batch_size=32,
    grid=1,
    max_length=2000,
    overflow="truncate",
    task="basic",
    seed=0,
    shuffle=None,
    shuffle_buffer=1024,
    drop_remainder=None,
    repeat=False,
):
    """ListOps as ``(tokens int32 [B * M * N, max_length], label int32 [B * M * N])`` batches.

    ``data_dir`` holds ``{task}_train.tsv`` / ``_val.tsv`` / ``_test.tsv`` (written by
    :func:`write_listops_splits`, or LRA's ``lra_release/listops-1000``). ``split`` is 'train',
    'dev' (= LRA's ``val``) or 'test'. ``grid`` is N or (M, N): each step holds ``batch_size``
    bundles of M * N sequences. Tokens are right-padded with 0 to ``max_length``;
    mask = tokens != 0.

    ``overflow`` says what happens to a sequence longer than ``max_length``: 'truncate' keeps its
    first ``max_length`` tokens (LRA's behaviour; the label may then be wrong), 'skip' drops the
    example, 'error' stops iteration with an InvalidArgumentError. Generated files never overflow
    when loaded with the ``max_length`` they were generated with.
    """
    tf = _common._tf()
    split = _common.normalize_split(split)
    if overflow not in ("truncate", "skip", "error"):
        raise ValueError(f"overflow must be 'truncate', 'skip' or 'error', got {overflow!r}")
    data_dir = _resolve_dir(data_dir, task)
    path = listops_split_path(data_dir, split, task)
    if not os.path.isfile(path):
        raise _common.LRADataNotFoundError(_missing_message(path, data_dir, task))
    with open(path, newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
    if "Source" not in header or "Target" not in header:
        raise ValueError(
            f"{path}: expected a header with 'Source' and 'Target' columns, got {header}"
        )
    cols = sorted([header.index("Source"), header.index("Target")])
    defaults = [tf.string if c == header.index("Source") else tf.int32 for c in cols]
    raw = tf.data.experimental.CsvDataset(
        path, defaults, field_delim="\t", header=True, select_cols=cols, use_quote_delim=True
    )
    if cols[0] != header.index("Source"):
        raw = raw.map(lambda a, b: (b, a))
    tokenize = listops_tokenizer()
    max_length = int(max_length)

    def to_ids(source, target):
        return tokenize(source), tf.cast(target, tf.int32)

    def check(ids, target):
        ok = tf.debugging.assert_less_equal(
            tf.shape(ids)[0],
            max_length,
            message=(
                f"ListOps sequence longer than max_length={max_length} in {path} (overflow='error')"
            ),
        )
        with tf.control_dependencies([ok]):
            return tf.identity(ids), target

    def pad(ids, target):
        return _common.pad_or_truncate(ids, max_length), target

    def transform(ds):
        ds = _common.mapper(to_ids)(ds)
        if overflow == "skip":
            ds = ds.filter(lambda ids, target: tf.shape(ids)[0] <= max_length)
        elif overflow == "error":
            ds = ds.map(check)
        return _common.mapper(pad)(ds)

    return _common.finish(
        raw,
        transform,
        batch_size=batch_size,
        grid=grid,
        training=split == "train",
        seed=seed,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        drop_remainder=drop_remainder,
        repeat=repeat,
    )
