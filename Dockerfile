# codex-lb as a container image: the single compiled binary on a distroless base (glibc, no shell).
# Build: docker build -t codex-lb .    Run: see docs/deploy.md ("Container image").
# The image build is not run in CI (no Docker engine on the CI machines); tests/deploy checks this
# file's settings and stages instead.
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json bun.lock ./
RUN bun install --frozen-lockfile
COPY . .
RUN bun run build && mkdir -p /data && chown 65532:65532 /data && chmod 700 /data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/codex-lb /usr/local/bin/codex-lb
COPY --from=build --chown=65532:65532 /data /data
# MIMALLOC_PURGE_DELAY=-1: Bun's allocator keeps the memory it freed for reuse instead of handing it
# back to the kernel and faulting it in again; about 240 µs less CPU per short answer at 64
# connections (docs/deploy.md, "Container image"). The peak is the same; RSS stays near it after a burst.
ENV CODEX_LB_DATA_DIR=/data \
    CODEX_LB_HOST=0.0.0.0 \
    CODEX_LB_PORT=2455 \
    CODEX_LB_OAUTH_CALLBACK_HOST=0.0.0.0 \
    MIMALLOC_PURGE_DELAY=-1
VOLUME ["/data"]
EXPOSE 2455 1455
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/codex-lb"]
CMD ["serve"]
