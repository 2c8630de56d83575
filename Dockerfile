# One image for every step: `mlsteps <step> …` (ENTRYPOINT is mlsteps; a
# step's container runs it with the step as its first argument).
# Bases are pinned by exact tag; CI or a user's registry can pin digests.

FROM golang:1.26.0-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# onnxruntime_go needs cgo; ONNX Runtime itself is loaded at run time.
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/mlsteps ./cmd/mlsteps

FROM node:20.20.2-bookworm-slim AS ort
WORKDIR /ort
RUN npm pack onnxruntime-node@1.30.0 \
 && tar xzf onnxruntime-node-1.30.0.tgz --strip-components=5 package/bin/napi-v6/linux/x64/libonnxruntime.so.1 \
 && rm onnxruntime-node-1.30.0.tgz

FROM debian:12.12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin mlsteps
COPY --from=build /out/mlsteps /usr/local/bin/mlsteps
COPY --from=ort /ort/libonnxruntime.so.1 /usr/local/lib/mlsteps/libonnxruntime.so.1
ENV MLSTEPS_ORT_LIB=/usr/local/lib/mlsteps/libonnxruntime.so.1 \
    MLSTEPS_LOG_FORMAT=json
USER 65532:65532
ENTRYPOINT ["mlsteps"]
CMD ["--help"]
