"""The Docker Space, checked without Docker (it cannot run here): the Dockerfile read statically (base image,
UID 1000 user, GPU TensorFlow, port, entry point), the Space README's front matter agreeing with it, what the image
leaves out, and the entry script run for real with a stand-in ``streamlit`` to see where it puts the store."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    joined, out = text.replace("\\\n", " "), []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def front_matter() -> dict:
    text = (ROOT / "space" / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_dockerfile_base_user_tensorflow_port_and_entry_point():
    steps = instructions()
    kinds = [k for k, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    useradd = next(a for k, a in steps if k == "RUN" and "useradd" in a)
    words = shlex.split(useradd)
    uid = words[words.index("--uid") + 1] if "--uid" in words else words[words.index("-u") + 1]
    user = words[-1]
    assert uid == "1000"
    users = [a for k, a in steps if k == "USER"]
    assert users and users[-1] in (user, "1000")  # the app runs as UID 1000, never root
    assert kinds.index("USER") < max(i for i, k in enumerate(kinds) if k == "RUN" and "pip install" in steps[i][1])
    pip = next(a for k, a in steps if k == "RUN" and "pip install" in a)
    assert "tensorflow[and-cuda]" in pip and "-r requirements.txt" in pip
    assert ("EXPOSE", "8501") in steps
    cmd = [a for k, a in steps if k in ("CMD", "ENTRYPOINT")][-1]
    assert cmd == '["sh", "space/start.sh"]'
    script = (ROOT / "space" / "start.sh").read_text()
    run = next(line for line in script.splitlines() if line.startswith("exec "))
    assert shlex.split(run)[1:8] == ["streamlit", "run", "app.py", "--server.port", "8501", "--server.address",
                                     "0.0.0.0"]


def test_space_readme_front_matter_matches_the_image():
    meta = front_matter()
    assert meta["sdk"] == "docker"
    assert meta["app_port"] == 8501 and ("EXPOSE", str(meta["app_port"])) in instructions()
    assert meta["suggested_hardware"] == "t4-small"
    assert meta["title"] and len(meta["short_description"]) <= 60
    assert "multi-task-learning" in meta["tags"]


def test_dockerignore_keeps_what_the_app_needs():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv"} <= ignored
    for needed in ("app.py", "pages", "mtl_core", "weights", "requirements.txt", ".streamlit", "space"):
        assert needed not in ignored and (ROOT / needed).exists(), needed
    copied = [a for k, a in instructions() if k == "COPY"]
    assert any(a.split()[-2:] == [".", "."] for a in copied)  # the whole (filtered) project


@pytest.fixture()
def fake_streamlit(tmp_path) -> dict:
    """A ``streamlit`` on PATH that prints where the store is and its arguments, instead of serving."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "streamlit"
    stub.write_text('#!/bin/sh\necho "MTL_HOME=$MTL_HOME"\necho "HF_HOME=$HF_HOME"\necho "ARGS=$*"\n')
    stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MTL_HOME", "HF_HOME", "MTL_DATA")}
    return {**env, "PATH": f"{bin_dir}:{env.get('PATH', '')}", "HOME": str(tmp_path / "home")}


def start(env: dict) -> dict:
    done = subprocess.run(["sh", "space/start.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_store_goes_to_data_when_persistent_storage_is_mounted(fake_streamlit, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = start({**fake_streamlit, "MTL_DATA": str(data)})
    assert out["MTL_HOME"] == f"{data}/mtl-studio" and out["HF_HOME"] == f"{data}/.huggingface"
    assert (data / "mtl-studio").is_dir()
    # not on a Space (no SPACE_ID: `docker run` elsewhere): XSRF protection stays on, nobody can sign in
    assert out["ARGS"] == "run app.py --server.port 8501 --server.address 0.0.0.0 --server.enableXsrfProtection true"
    assert not (tmp_path / "home" / ".streamlit" / "secrets.toml").exists()


def test_on_a_space_xsrf_is_off_and_sign_in_with_hugging_face_is_configured(fake_streamlit, tmp_path):
    import tomllib

    space = {"SPACE_ID": "alice/studio", "SPACE_HOST": "alice-studio.hf.space", "OAUTH_CLIENT_ID": "client-123",
             "OAUTH_CLIENT_SECRET": 'se"cret', "OPENID_PROVIDER_URL": "https://huggingface.co",
             "PYTHONPATH": str(ROOT)}
    out = start({**fake_streamlit, "MTL_DATA": str(tmp_path / "none"), **space})
    assert out["ARGS"].endswith("--server.enableXsrfProtection false")  # the huggingface.co iframe needs it off
    secrets_file = tmp_path / "home" / ".streamlit" / "secrets.toml"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    auth = tomllib.loads(secrets_file.read_text())["auth"]
    assert auth["redirect_uri"] == "https://alice-studio.hf.space/oauth2callback"
    assert len(auth["cookie_secret"]) >= 32
    assert auth["huggingface"] == {"client_id": "client-123", "client_secret": 'se"cret',
                                   "server_metadata_url": "https://huggingface.co/.well-known/openid-configuration",
                                   "client_kwargs": {"scope": "openid profile"}}
    assert front_matter()["hf_oauth"] is True and front_matter()["hf_oauth_redirect_path"] == "/oauth2callback"


def test_store_stays_in_the_home_folder_without_storage(fake_streamlit, tmp_path):
    out = start({**fake_streamlit, "MTL_DATA": str(tmp_path / "not-mounted")})
    assert out["MTL_HOME"] == f"{tmp_path}/home/.cache/mtl-studio" and out["HF_HOME"] == ""
    data = tmp_path / "read-only"
    data.mkdir()
    data.chmod(0o555)
    try:
        if os.access(data, os.W_OK):  # root writes anywhere: the read-only case cannot be staged
            return
        out = start({**fake_streamlit, "MTL_DATA": str(data)})
        assert out["MTL_HOME"] == f"{tmp_path}/home/.cache/mtl-studio"
    finally:
        data.chmod(0o755)


def test_users_store_setting_wins(fake_streamlit, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    out = start({**fake_streamlit, "MTL_DATA": str(data), "MTL_HOME": str(tmp_path / "mine")})
    assert out["MTL_HOME"] == str(tmp_path / "mine")
