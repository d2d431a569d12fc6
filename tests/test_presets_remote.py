"""Presets over the network, offline: a real HTTP server on 127.0.0.1 serves a tiny preset as an
http(s) URL and as the Hugging Face Hub (``HF_ENDPOINT``); downloads land in ``$KERAS_HOME``."""

import http.server
import re
import shutil
import socket
import sys
import threading
import types
import urllib.parse

import keras
import numpy as np
import pytest
from harness import assert_close, random_inputs, to_numpy

import keras_mimo
from keras_mimo.presets import PresetError, PresetIntegrityError
from keras_mimo.presets import format as preset_format
from keras_mimo.presets.format import PRESET_FILES, WEIGHTS_FILE

HF_RESOLVE = re.compile(r"^/([^/]+)/([^/]+)/resolve/([^/]+)/([^/]+)$")


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``state.root``; ``/{owner}/{name}/resolve/{quoted revision}/{file}`` (the Hub's
    layout) from ``root/owner/name/revision/file``. ``state.tamper[file]`` = ``"flip"`` (one
    byte changed) or ``"truncate"`` (half the body under the full Content-Length, then closed);
    with ``state.redirect``, Hub paths answer 302 to that host."""

    def do_GET(self):
        state = self.server.state
        state.requests.append((self.path, self.headers.get("Authorization")))
        path = self.path.split("?")[0]
        hub = HF_RESOLVE.match(path)
        relative = "/".join(hub.groups()) if hub else path.lstrip("/")
        if hub and state.redirect:  # as the Hub does: files come from another host (its CDN)
            self.send_response(302)
            self.send_header("Location", f"{state.redirect}/{relative}")
            self.end_headers()
            return
        file = state.root / urllib.parse.unquote(relative)
        if not file.is_file():
            self.send_error(404)
            return
        body = bytearray(file.read_bytes())
        length = len(body)
        mode = state.tamper.get(file.name)
        if mode == "flip":
            body[length // 2] ^= 0xFF
        elif mode == "truncate":
            body = body[: length // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(bytes(body))  # HTTP/1.0: the connection closes after each answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A saved tiny MIMOConv (weights no seed rebuilds), its inputs and its logits on them."""
    from keras_mimo.models import MIMOConv

    model = MIMOConv(depth=10, width=1, initial_width=1, capacity=2, input_shape=(8, 8, 1), seed=0)
    rng = np.random.default_rng(1)
    for variable in model.weights:
        if "float" in keras.backend.standardize_dtype(variable.dtype):
            value = to_numpy(variable)
            noise = rng.uniform(0.9, 1.1, value.shape) + rng.normal(0, 1e-2, value.shape)
            variable.assign((value * noise).astype(value.dtype))
    folder = tmp_path_factory.mktemp("source") / "p"
    metadata = keras_mimo.save_to_preset(model, folder, dataset="test")
    inputs = random_inputs((4, 8, 8, 1))
    expected = to_numpy(model(inputs, training=False))
    assert np.isfinite(expected).all()
    return types.SimpleNamespace(folder=folder, metadata=metadata, inputs=inputs, expected=expected)


@pytest.fixture(scope="module")
def server(preset, tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    for place in ("p", "owner/tiny/main", "owner/tiny/refs/pr/1", "owner/tiny/v1"):
        shutil.copytree(preset.folder, root / place)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = types.SimpleNamespace(root=root, requests=[], tamper={}, redirect=None)
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A fresh ``$KERAS_HOME`` per test, no Hub credentials of the user's, and no host but the
    local server's reachable: resolving any other name fails the test, even where the caller
    swallows the error (huggingface_hub's telemetry does)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    resolve, elsewhere = socket.getaddrinfo, []

    def local_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost"):
            elsewhere.append(host)
            raise OSError(f"offline test: no route to {host!r}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    yield tmp_path / "keras"
    assert not elsewhere, f"the test tried to reach {elsewhere}"


@pytest.fixture
def web(server):
    server.state.requests.clear()
    server.state.tamper.clear()
    yield server
    server.state.tamper.clear()
    server.state.redirect = None


def cached(home):
    """Names of the files under ``$KERAS_HOME``, temporary ones included."""
    return sorted(path.name for path in home.rglob("*") if path.is_file())


def requested(web):
    return sorted(path for path, _ in web.state.requests)


def test_an_http_preset_loads_with_its_predictions_and_is_then_served_from_the_cache(
    web, preset, home
):
    url = f"{web.url}/p"
    model = keras_mimo.from_preset(url, compile=False)
    assert_close(model(preset.inputs, training=False), preset.expected, rtol=1e-5)
    assert requested(web) == sorted(f"/p/{name}" for name in PRESET_FILES)
    folders = list((home / "keras_mimo" / "presets").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("p-"), folders
    assert sorted(path.name for path in folders[0].iterdir()) == sorted(PRESET_FILES)

    web.state.requests.clear()
    again = keras_mimo.from_preset(url, compile=False)
    assert web.state.requests == [], "a complete cached copy must not touch the network"
    assert_close(again(preset.inputs, training=False), preset.expected, rtol=1e-5)


def test_preset_metadata_of_a_url_builds_no_model(web, preset, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("preset_metadata built a model")

    monkeypatch.setattr(preset_format, "build_model", no_model)
    metadata = keras_mimo.preset_metadata(f"{web.url}/p")
    assert metadata["dataset"] == "test" and metadata["class_name"] == "MIMOConv"
    assert metadata["capacity"] == 2 and metadata["sha256"] == preset.metadata["sha256"]


def test_weights_that_differ_from_their_sha256_are_refused_and_not_kept(web, preset, home):
    web.state.tamper[WEIGHTS_FILE] = "flip"
    expected = preset.metadata["sha256"][WEIGHTS_FILE]
    with pytest.raises(PresetIntegrityError) as caught:
        keras_mimo.from_preset(f"{web.url}/p", compile=False)
    message = str(caught.value)
    assert WEIGHTS_FILE in message and f"expected {expected}" in message, message
    assert cached(home) == ["config.json", "metadata.json"]  # no weights, no .tmp-* file


def test_a_truncated_transfer_keeps_nothing_and_the_cache_heals(web, preset, home):
    url = f"{web.url}/p"
    web.state.tamper[WEIGHTS_FILE] = "truncate"
    with pytest.raises(PresetError, match=rf"{re.escape(WEIGHTS_FILE)}.*truncated") as caught:
        keras_mimo.from_preset(url, compile=False)
    size = (preset.folder / WEIGHTS_FILE).stat().st_size
    assert f"{size // 2} of {size} bytes" in str(caught.value)
    assert WEIGHTS_FILE not in cached(home)
    assert not [name for name in cached(home) if name.startswith(".tmp-")]

    web.state.tamper.clear()
    web.state.requests.clear()
    model = keras_mimo.from_preset(url, compile=False)
    assert_close(model(preset.inputs, training=False), preset.expected, rtol=1e-5)
    assert f"/p/{WEIGHTS_FILE}" in requested(web)
    assert "/p/config.json" not in requested(web)  # the good file already cached is kept
    assert sorted(cached(home)) == sorted(PRESET_FILES)


def test_a_missing_preset_names_the_url_and_the_http_status(web, home):
    url = f"{web.url}/missing"
    with pytest.raises(PresetError, match="HTTP 404") as caught:
        keras_mimo.from_preset(url, compile=False)
    assert f"{url}/metadata.json" in str(caught.value)
    assert not isinstance(caught.value, PresetIntegrityError)
    assert cached(home) == []


@pytest.mark.parametrize(
    "location, revision, endpoint_tail",
    [("hf://owner/tiny", "main", ""), ("hf://owner/tiny@refs/pr/1", "refs%2Fpr%2F1", "/")],
)
def test_hugging_face_locations_read_the_resolve_urls_of_hf_endpoint(
    web, preset, monkeypatch, location, revision, endpoint_tail
):
    monkeypatch.setenv("HF_ENDPOINT", web.url + endpoint_tail)
    model = keras_mimo.from_preset(location, compile=False)
    assert_close(model(preset.inputs, training=False), preset.expected, rtol=1e-5)
    assert requested(web) == sorted(f"/owner/tiny/resolve/{revision}/{f}" for f in PRESET_FILES)
    assert {token for _, token in web.state.requests} == {"Bearer hf_local_test_token"}


def test_the_hub_token_does_not_follow_a_redirect_to_another_host(web, preset, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", web.url)
    web.state.redirect = web.url.replace("127.0.0.1", "localhost")
    model = keras_mimo.from_preset("hf://owner/tiny@v1", compile=False)
    assert_close(model(preset.inputs, training=False), preset.expected, rtol=1e-5)
    asked = dict(web.state.requests)
    for name in PRESET_FILES:
        assert asked[f"/owner/tiny/resolve/v1/{name}"] == "Bearer hf_local_test_token"
        assert asked[f"/owner/tiny/v1/{name}"] is None, f"the token went to the CDN with {name}"


@pytest.mark.parametrize("location", ["hf://owner", "hf://owner/name/extra", "hf://own er/name"])
def test_a_malformed_hugging_face_location_shows_the_expected_form(web, location):
    with pytest.raises(PresetError, match=re.escape("hf://OWNER/NAME@REVISION")):
        keras_mimo.from_preset(location, compile=False)
    assert web.state.requests == []


def test_hf_locations_without_huggingface_hub_say_how_to_install_it(web, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", web.url)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(PresetError, match="pip install huggingface_hub"):
        keras_mimo.from_preset("hf://owner/tiny", compile=False)
    assert web.state.requests == []
