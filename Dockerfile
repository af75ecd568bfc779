# Multi-Task Studio on a Hugging Face Docker Space (GPU hardware such as t4-small), or any Docker host.
# Spaces build without a GPU and run the container as UID 1000; persistent storage, when added, is at /data.
# Deployment step by step: docs/hub-and-space.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# The user Spaces run as (UID 1000), owning the app and its home folder.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH
WORKDIR /home/user/app

# The GPU build of TensorFlow (CUDA and cuDNN come as pip wheels, no CUDA base image needed), then the rest.
COPY --chown=user requirements.txt .
RUN pip install --user "tensorflow[and-cuda]>=2.21,<2.22" -r requirements.txt

COPY --chown=user . .

EXPOSE 8501
# space/start.sh puts the model store on /data when persistent storage is mounted, then runs
# streamlit run app.py --server.port 8501 --server.address 0.0.0.0
CMD ["sh", "space/start.sh"]
