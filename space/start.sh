#!/bin/sh
# Entry point of the Docker image (Dockerfile CMD): choose where the model store lives, then start the app.
# With persistent storage mounted (a Space's /data, writable), the store, the jobs and the Hugging Face cache
# go there and survive restarts; without it, they live in the home folder and go with the container.
# MTL_HOME or HF_HOME set by the user (Space variables) win. MTL_DATA names the volume (tests point it elsewhere).
set -e
data="${MTL_DATA:-/data}"
if [ -d "$data" ] && [ -w "$data" ]; then
    export MTL_HOME="${MTL_HOME:-$data/mtl-studio}"
    export HF_HOME="${HF_HOME:-$data/.huggingface}"
else
    export MTL_HOME="${MTL_HOME:-$HOME/.cache/mtl-studio}"
fi
mkdir -p "$MTL_HOME"
echo "Multi-Task Studio: model store in $MTL_HOME" >&2
# "Sign in with Hugging Face" (the Space's README has hf_oauth: true): Streamlit's OIDC login reads its client
# from the secrets file, written here from the OAuth variables the Space sets (mode 600, a new cookie secret at
# each start). Without them the app still runs; everyone is a visitor.
python -m mtl_core.control.access "${STREAMLIT_SECRETS:-$HOME/.streamlit/secrets.toml}" || true
# A Space shows the app in an iframe on huggingface.co, where Chrome drops Streamlit's XSRF cookie, so every
# upload would fail with 403 (huggingface_hub#1496; hub docs "Spaces cookie limitations"): XSRF protection is
# off on a Space only (SPACE_ID set). The same image run elsewhere (docker run) keeps it on.
xsrf=true
if [ -n "${SPACE_ID:-}" ]; then xsrf=false; fi
exec streamlit run app.py --server.port 8501 --server.address 0.0.0.0 --server.enableXsrfProtection "$xsrf" "$@"
