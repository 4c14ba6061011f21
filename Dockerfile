# The understudy sidecar image, as the Helm chart (charts/understudy) runs it.
#
#   docker build -t ghcr.io/understudy/understudy:0.1.0 .
#   podman build -t ghcr.io/understudy/understudy:0.1.0 .     # or buildah bud
#
# No registry or Docker daemon at hand? scripts/build-image.sh builds the
# same image from Debian packages alone (mmdebstrap) into an OCI archive;
# README.md, "Deploy", shows both ways and how to load the image.
#
# build:   Debian 12 with the project's own scripts/install-deps.sh and
#          scripts/build.sh; the binary is stripped of debug info and its
#          runtime packages are computed from it (ldd + dpkg -S, by
#          scripts/build-image.sh --runtime-packages).
# runtime: Debian 12 slim plus exactly those libraries and ca-certificates;
#          user 65532 (the chart's runAsUser); read-only root filesystem
#          friendly: it writes only to /var/lib/understudy (data) and /tmp,
#          both volumes. The package versions are in
#          /usr/share/understudy/packages.txt.

ARG DEBIAN_SUITE=bookworm

FROM debian:${DEBIAN_SUITE} AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The dependencies first: this layer stays cached while only sources change.
COPY scripts/install-deps.sh scripts/
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN BUILD_DIR=/build NINJA_TARGETS=understudy ./scripts/build.sh \
 && install -d /out/usr/bin /out/etc/understudy /pkgs \
 && objcopy --strip-debug /build/cli/understudy /out/usr/bin/understudy \
 && ./scripts/build-image.sh --runtime-packages /build/cli/understudy >/pkgs/runtime-packages.txt \
 && ./scripts/build-image.sh --default-config >/out/etc/understudy/understudy.yaml \
 && /out/usr/bin/understudy version

FROM debian:${DEBIAN_SUITE}-slim
# Keep VERSION equal to charts/understudy/Chart.yaml appVersion (tests/image checks it).
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG LICENSE=NOASSERTION
ARG SOURCE=https://github.com/understudy/understudy
LABEL org.opencontainers.image.title="understudy" \
      org.opencontainers.image.description="Envoy ext_proc sidecar: shadow a candidate LLM, compare it with production, roll it out" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSE}" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
COPY --from=build /pkgs/runtime-packages.txt /usr/share/understudy/runtime-packages.txt
# The mirror's current versions of the libraries (security updates included;
# same Debian release, same ABI as the build stage's), all recorded.
RUN apt-get update \
 && sed 's/=.*//' /usr/share/understudy/runtime-packages.txt \
    | xargs apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && dpkg-query -W -f='${Package}=${Version}\n' | sort >/usr/share/understudy/packages.txt \
 && groupadd --system --gid 65532 understudy \
 && useradd --system --no-log-init --uid 65532 --gid 65532 \
      --home-dir /var/lib/understudy --shell /usr/sbin/nologin understudy \
 && install -d -m 0750 -o 65532 -g 65532 /var/lib/understudy
COPY --from=build /out/ /
RUN understudy version

USER 65532:65532
WORKDIR /var/lib/understudy
VOLUME ["/var/lib/understudy", "/tmp"]
EXPOSE 50051 9901
STOPSIGNAL SIGTERM
# Probes the running process through the admin API (the chart's own probes
# do the same in Kubernetes, which ignores HEALTHCHECK).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/bin/understudy", "status", "--admin", "http://127.0.0.1:9901", "-o", "json"]
ENTRYPOINT ["/usr/bin/understudy"]
CMD ["serve", "--config", "/etc/understudy/understudy.yaml"]
