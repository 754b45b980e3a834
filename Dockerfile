# syntax=docker/dockerfile:1
# The prehod container image: a Debian build stage that runs exactly CI's build steps
# (deploy/setup.sh, then cargo with OPENSSL_NO_VENDOR from .cargo/config.toml, linking
# Debian's libssl3), and a distroless runtime stage with only glibc, libgcc, libssl3 and
# ca-certificates: no shell, no package manager, no build tools. It runs as a numeric
# non-root user. Build it from the repository root:
#   docker build -t registry.bankart.si/prehod:0.1.0 .
# and its SBOM (CycloneDX JSON of the production build) with:
#   docker build --target sbom --output type=local,dest=sbom .
# (see README.md, "Deployment"; no container engine runs on the development machines, so
# deploy/check.sh checks that the build commands below are CI's, and lints this file with
# hadolint.)
#
# The production build: `--no-default-features` leaves out the `dev` feature — the Rekono
# simulator, the demo portals, the dev PKI and their commands are not in this image
# (tests/production_build.sh proves it of the same build in CI).
#
# Base images are named by digest as well as by tag: a tag can be moved to other content, a
# digest cannot. NOT YET PINNED: the digests must be read from the registries, which the
# development machines and CI cannot reach; deploy/check.sh reports each FROM without one.
# To pin (or update) them, on a machine that reaches the registries:
#   docker buildx imagetools inspect rust:1.95-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot --format '{{json .Manifest.Digest}}'
# (or `crane digest IMAGE`), then write each as IMAGE:TAG@sha256:… below — the index digest, so
# that every platform of the image stays pinned. Renovate's or Dependabot's docker manager keeps
# such pins current.

# Debian 12 (bookworm) in both stages: the binary links the build stage's libssl3 and glibc,
# and the runtime stage must have the same ones.
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY . .
# The same two steps as CI (tests/run.sh): install the Debian build dependencies, then build.
# deploy/setup.sh also installs the test tools (Chromium) — only in this stage, which is thrown
# away. The cache mounts keep the registry and target/ between builds of the same builder.
ENV OPENSSL_NO_VENDOR=1
RUN bash deploy/setup.sh
# The source revision for prehod_build_info{revision} (the context has no .git; without it the
# label says "unknown"): docker build --build-arg PREHOD_GIT_REVISION=$(git rev-parse HEAD) .
ARG PREHOD_GIT_REVISION
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin prehod \
    && install -D -m 0755 target/release/prehod /out/prehod \
    && bash deploy/sbom.sh /out/prehod.cdx.json

# `docker build --target sbom --output type=local,dest=DIR .` writes the SBOM to DIR.
FROM scratch AS sbom
COPY --from=build /out/prehod.cdx.json /prehod.cdx.json

# Runtime: distroless "cc" (glibc, libgcc, libssl3, ca-certificates, tzdata), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/prehod /usr/local/bin/prehod
# The SBOM travels with the binary it describes.
COPY --from=build /out/prehod.cdx.json /usr/share/doc/prehod/prehod.cdx.json
# The distroless "nonroot" user, numerically, so that runAsNonRoot can verify it.
USER 65532:65532
# HTTPS, HTTP→HTTPS redirect and the admin listener (the Kubernetes config binds these).
EXPOSE 8443 8080 9090
ENTRYPOINT ["/usr/local/bin/prehod"]
CMD ["run", "--config", "/etc/prehod/proxy.yaml"]
