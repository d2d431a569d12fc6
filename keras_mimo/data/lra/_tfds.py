"""Loading a tensorflow-datasets dataset that must already be on disk (or may be
downloaded on request)."""

from keras_mimo.data.lra import _common


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError(
            "This Long Range Arena task reads its data through tensorflow-datasets: "
            "pip install tensorflow-datasets (or keras-mimo[tensorflow])."
        ) from e
    return tfds


def prepared_builder(name, data_dir, download, task):
    """``tfds.builder(name, data_dir=data_dir)``, prepared; without the files, a clear error
    (or a download)."""
    tfds = _tfds()
    builder = tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    if not builder.is_prepared():
        if download:
            builder.download_and_prepare()
        else:
            where = (
                "the default tensorflow-datasets folder (~/tensorflow_datasets or $TFDS_DATA_DIR)"
                if data_dir is None
                else f"data_dir={str(data_dir)!r}"
            )
            target = "<folder>" if data_dir is None else str(data_dir)
            raise _common.LRADataNotFoundError(
                f"{task}: the tensorflow-datasets dataset '{name}' is not prepared in {where} "
                f"(looked for {builder.data_dir}). On a machine with internet run "
                f"`tfds build {name} --data_dir {target}` or, in Python, "
                f"`tensorflow_datasets.builder('{name}', data_dir='{target}')"
                f".download_and_prepare()`, "
                f"then copy that folder here and pass data_dir=<folder>; "
                f"or call this loader with download=True."
            )
    return builder
