# charrnn: the sampling daemon, with charrnn-train, charrnn-sample and charrnn-convert beside it.
#
#   docker build -t charrnn .
#   docker run -p 8080:8080 charrnn                      # serves /models (the default model)
#   docker run -v models:/models charrnn charrnn-train --data /data/in.txt \
#       --checkpoint-dir /tmp/ckpt --publish /models/mine.safetensors
#
# Training on several machines (MPI): the `train` target, charrnn-train with
# the Open MPI runtime and sshd for the launcher (deploy/k8s/train-mpijob.yaml):
#   docker build --target train -t charrnn-train .
#
# Without a registry (see tests/container/smoke.sh):
#   podman build --pull=never --isolation chroot --format docker -t charrnn .

# ---- build stage: compilers and -dev packages, never shipped ------------------
FROM debian:bookworm-slim AS build
# Marks this stage's images, so a CI run can prune the untagged ones it leaves.
LABEL org.charrnn.stage=build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config \
      libmicrohttpd-dev libcjson-dev libopenmpi-dev \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads; tests/ is not configured with -Dtests=false.
COPY meson.build meson_options.txt ./
COPY include/ include/
COPY model/ model/
COPY cli/ cli/
COPY server/ server/
# -Dnative=false: the image runs on CPUs other than the builder's. The inference
# kernel and the gate arithmetic are built for AVX-512, AVX2 and the baseline
# anyway and chosen at run time (CHARRNN_KERNEL overrides), with the same text.
# -Dmpi=disabled: the serving image has no MPI runtime; its charrnn-train
# trains on one machine (and refuses a multi-rank launch).
RUN meson setup /build --buildtype=release -Dtests=false -Dnative=false -Dmpi=disabled \
      --prefix=/usr/local \
 && meson compile -C /build \
 && meson install -C /build --strip --destdir /out \
 && for b in charrnn-serve charrnn-train charrnn-sample charrnn-convert; do \
      test -x /out/usr/local/bin/$b || { echo "meson install did not install $b" >&2; exit 1; }; \
    done
# charrnn-train once more, with Open MPI, for the training image only.
RUN meson setup /build-mpi --buildtype=release -Dtests=false -Dnative=false -Dmpi=enabled \
      --prefix=/usr/local \
 && meson compile -C /build-mpi charrnn-train \
 && install -D -s -m 0755 /build-mpi/cli/charrnn-train /out-train/usr/local/bin/charrnn-train

# ---- training image (--target train): charrnn-train as an MPI rank ----------------
# Open MPI's runtime and mpirun, and OpenSSH: the MPI Operator's launcher
# starts the ranks on the workers over ssh (port 2222, sshd as the
# unprivileged user, keys from the Secret the operator mounts in ~/.ssh).
FROM debian:bookworm-slim AS train
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcjson1 libopenmpi3 openmpi-bin openssh-client openssh-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 charrnn \
 && useradd --system --uid 10001 --gid charrnn --create-home --home-dir /home/charrnn \
      --shell /bin/sh charrnn \
 && printf 'Host *\n    Port 2222\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n' \
      >> /etc/ssh/ssh_config \
 && mkdir -p /run/sshd \
 && install -d -o 10001 -g 10001 -m 0755 /models /checkpoints
COPY --from=build /out-train/usr/local/ /usr/local/
COPY deploy/mpi/charrnn-mpirun /usr/local/bin/charrnn-mpirun
COPY deploy/mpi/sshd_config /etc/charrnn/sshd_config
USER 10001:10001
WORKDIR /home/charrnn
CMD ["charrnn-train", "--help"]

# ---- runtime stage: shared libraries only ----------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libcjson1 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 charrnn \
 && useradd --system --uid 10001 --gid charrnn --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin charrnn \
 && install -d -o 10001 -g 10001 -m 0755 /models /checkpoints

COPY --from=build /out/usr/local/ /usr/local/
COPY deploy/docker/entrypoint.sh /usr/local/bin/charrnn-entrypoint
COPY deploy/docker/healthcheck.sh /usr/local/bin/charrnn-healthcheck
# The default model (only it: other models in deploy/models stay out, see
# .dockerignore), owned by the runtime user so a trainer in the same image
# can publish next to it. VOLUME comes after the COPY: a new named volume
# starts as a copy of this directory. /checkpoints is there so that a volume
# mounted on it is writable by the trainer too.
COPY --chown=10001:10001 deploy/models/shakespeare.safetensors /models/
VOLUME ["/models"]

# CHARRNN_ADDRESS_FILE: the daemon writes the address it bound there, and the
# health check reads it, so `docker run IMAGE --listen 0.0.0.0:9090` stays healthy.
ENV CHARRNN_LISTEN=0.0.0.0:8080 \
    CHARRNN_ADDRESS_FILE=/tmp/charrnn-serve.address \
    CHARRNN_MODELS=/models \
    CHARRNN_DEFAULT_MODEL=shakespeare
EXPOSE 8080
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001

# curl is not in the slim image and would add about a dozen libraries (libcurl,
# ldap, ssh, rtmp...) to an otherwise minimal image; the check is a bash
# built-in HTTP GET of /healthz instead. Kubernetes ignores HEALTHCHECK and
# uses the probes in deploy/k8s/.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["charrnn-healthcheck"]

# With no arguments or only flags, runs charrnn-serve; `docker run IMAGE
# charrnn-train ...` runs that program instead.
ENTRYPOINT ["charrnn-entrypoint"]
CMD ["charrnn-serve"]

LABEL org.opencontainers.image.title="charrnn" \
      org.opencontainers.image.description="Character-level LSTM language models: HTTP sampling daemon and trainer" \
      org.opencontainers.image.licenses="MIT"
