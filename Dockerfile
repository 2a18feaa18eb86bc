# syntax=docker/dockerfile:1
# Sentio, CPU image: the `sentio` binary and the default model on a slim Debian runtime,
# running as the non-root user 10001 (the UID the Helm chart's securityContext sets).
#
#   docker build -t ghcr.io/sentio-ser/sentio:0.1.0 .
#   docker run --rm -p 50051:50051 -p 9464:9464 ghcr.io/sentio-ser/sentio:0.1.0
#
# No Docker engine runs on the project's development or CI machines: this file is checked by
# review only. Keep it conventional.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

# ---- build ---------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
# protoc compiles proto/ in build.rs (libprotobuf-dev: the well-known .proto types).
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace (see .dockerignore): Cargo needs every member's manifest and targets.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sentio --bin sentio \
 && install -D -m 0755 target/release/sentio /out/sentio

# ---- runtime -------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sentio" \
      org.opencontainers.image.description="Streaming speech-emotion-recognition gRPC server (CPU)" \
      org.opencontainers.image.source="https://github.com/sentio-ser/sentio" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.sentio.model.license="builtin:default CC-BY-NC-SA-4.0 (non-commercial research use); builtin:crema-d ODbL-1.0/DbCL-1.0 (commercial use allowed with attribution); from their training data, see NOTICE" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --system --gid 10001 sentio \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin sentio
COPY --from=build /out/sentio /usr/local/bin/sentio
# The built-in models are compiled into the binary (--model builtin:default|crema-d); the
# files are here too, with their cards and licences, as a starting point for derived images.
COPY models/default /opt/sentio/models/default
COPY models/crema-d /opt/sentio/models/crema-d
USER 10001:10001
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sentio"]
CMD ["serve", "--grpc-addr=0.0.0.0:50051", "--metrics-addr=0.0.0.0:9464"]
