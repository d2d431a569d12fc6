"""Presets from the network: an http(s) URL of a preset directory, or ``hf://owner/name``.

Files land in the Keras cache (``$KERAS_HOME``, default ``~/.keras``) under
``keras_mimo/presets/<name>-<hash of the location>/``. ``metadata.json`` comes first and gives the
sha256 of every other file (or the registry's pins do, for built-in names); each file is written
to a temporary name, checked against its hash and size, and only then renamed into place, so a
mismatch, a truncated transfer or an interrupted download leaves nothing corrupt in the cache.
A complete cached copy is used without touching the network.

``hf://owner/name[@revision]`` reads the Hugging Face Hub through ``huggingface_hub`` (optional:
``pip install huggingface_hub``), at ``$HF_ENDPOINT`` when set, with the user's token if any.
"""

import hashlib
import http.client
import os
import pathlib
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from keras_mimo.presets.format import (
    HASHED_FILES,
    METADATA_FILE,
    PresetError,
    PresetIntegrityError,
    file_sha256,
    read_metadata,
)

TIMEOUT_SECONDS = 60


def is_remote(location):
    return isinstance(location, str) and re.match(r"^(https?|hf)://", location) is not None


def cache_root():
    """Where downloaded presets are kept: ``$KERAS_HOME/keras_mimo/presets`` (``~/.keras``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return pathlib.Path(home) / "keras_mimo" / "presets"


def _file_urls(location):
    """``(name for the cache, function file name -> (url, headers))`` of a remote location."""
    if location.startswith("hf://"):
        match = re.match(r"^hf://([\w.-]+)/([\w.-]+)(?:@([\w./-]+))?/?$", location)
        if not match:
            raise PresetError(
                f"{location!r} is not a Hugging Face location: write hf://OWNER/NAME or "
                "hf://OWNER/NAME@REVISION."
            )
        owner, name, revision = match.groups()
        try:
            import huggingface_hub
        except ImportError:
            raise PresetError(
                f"{location} needs the optional huggingface_hub package: pip install "
                "huggingface_hub (or keras-mimo[hub])."
            ) from None
        endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or None
        headers = _hub_headers(huggingface_hub)

        def url_of(filename):
            url = huggingface_hub.hf_hub_url(
                f"{owner}/{name}", filename, revision=revision or "main", endpoint=endpoint
            )
            return url, headers

        return name, url_of
    base = location if location.endswith("/") else location + "/"
    name = pathlib.PurePosixPath(urllib.parse.urlparse(location).path.rstrip("/")).name or "preset"

    def url_of(filename):
        return urllib.parse.urljoin(base, filename), {}

    return name, url_of


def _hub_headers(huggingface_hub):
    """The user's Hub token, if any, as a header. Not ``build_hf_headers``: its user agent
    fetches a telemetry registry from the Hub (huggingface_hub 2.x), a request to
    huggingface.co even when ``$HF_ENDPOINT`` names a mirror."""
    from huggingface_hub import constants, get_token  # lazy package: import, not attributes

    from keras_mimo import __version__

    headers = {"User-Agent": f"keras-mimo/{__version__}; hf_hub/{huggingface_hub.__version__}"}
    if not constants.HF_HUB_DISABLE_IMPLICIT_TOKEN:
        token = get_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
    return headers


class _NoCredentialsToOtherHosts(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the Hub token to no host but the one it was meant for (the
    Hub redirects file downloads to its CDN)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        host = urllib.parse.urlsplit(req.full_url).netloc
        if new is not None and urllib.parse.urlsplit(new.full_url).netloc != host:
            new.remove_header("Authorization")
        return new


def _download(url, headers, target, expected_sha256, origin):
    """``url`` -> ``target`` through a temporary file; checked against ``expected_sha256``
    (None: unchecked, for the metadata of a location the registry does not pin)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "keras-mimo", **headers})
    handle, temporary = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=target.parent)
    digest = hashlib.sha256()
    received = 0
    try:
        try:
            with os.fdopen(handle, "wb") as out:
                opener = urllib.request.build_opener(_NoCredentialsToOtherHosts)  # env proxies now
                with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                    announced = response.headers.get("Content-Length")
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
        except urllib.error.HTTPError as error:
            raise PresetError(
                f"{origin}: {url} answered HTTP {error.code} ({error.reason})."
            ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
            raise PresetError(
                f"{origin}: could not download {target.name} from {url}: {error}. Nothing was "
                "kept in the cache; try again."
            ) from None
        if announced is not None and int(announced) != received:
            raise PresetIntegrityError(
                f"{origin}: {target.name} was truncated: {received} of {announced} bytes arrived "
                f"from {url}. Nothing was kept in the cache; try again."
            )
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise PresetIntegrityError(
                f"{origin}: {target.name} from {url} has sha256 {actual}, expected "
                f"{expected_sha256} ({received} bytes). Nothing was kept in the cache."
            )
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def fetch_preset(location, pinned=None):
    """Downloads (or finds in the cache) the preset at ``location``; returns its local folder.

    ``pinned`` (``{file: sha256}``) overrides the hashes of the metadata, metadata.json included.
    """
    name, url_of = _file_urls(location)
    slug = hashlib.sha256(location.encode()).hexdigest()[:12]
    folder = cache_root() / f"{name}-{slug}"
    metadata_path = folder / METADATA_FILE
    pinned = pinned or {}
    if not (metadata_path.is_file() and _cached_copy_is_complete(folder, pinned)):
        url, headers = url_of(METADATA_FILE)
        _download(url, headers, metadata_path, pinned.get(METADATA_FILE), location)
        try:
            metadata = read_metadata(folder, location)
        except PresetError:  # not JSON, or no sha256 table: keep no such file in the cache
            metadata_path.unlink(missing_ok=True)
            raise
        for filename in HASHED_FILES:
            expected = pinned.get(filename) or metadata["sha256"].get(filename)
            if expected is None:
                raise PresetError(f"{location}: {METADATA_FILE} lists no sha256 for {filename}.")
            path = folder / filename
            if path.is_file() and file_sha256(path) == expected:
                continue
            url, headers = url_of(filename)
            _download(url, headers, path, expected, location)
    return folder


def _cached_copy_is_complete(folder, pinned):
    try:
        metadata = read_metadata(folder, str(folder), pinned)
    except PresetError:
        return False
    for filename in HASHED_FILES:
        expected = pinned.get(filename) or metadata["sha256"].get(filename)
        path = folder / filename
        if expected is None or not path.is_file() or file_sha256(path) != expected:
            return False
    return True
