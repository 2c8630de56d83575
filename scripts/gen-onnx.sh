#!/usr/bin/env bash
# Generates components/onnx/onnxpb (Go types for the ONNX protos) from the
# onnx-ml.proto that Debian's python3-onnx installs (ONNX 1.12: IR 8, opset 17,
# ai.onnx.ml 3). The generated file is committed; CI does not regenerate it.
# Needs: apt-get install protobuf-compiler python3-onnx.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO_DIR=${ONNX_PROTO_DIR:-/usr/lib/python3/dist-packages/onnx}
BIN=$PWD/.cache/bin
if [ ! -x "$BIN/protoc-gen-go" ]; then
  GOBIN=$BIN go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
fi
PATH=$BIN:$PATH protoc -I "$PROTO_DIR" \
  --go_out=components/onnx/onnxpb --go_opt=paths=source_relative \
  --go_opt=Monnx-ml.proto=github.com/mlsteps/mlsteps/components/onnx/onnxpb \
  onnx-ml.proto
gofmt -l components/onnx/onnxpb
echo "wrote components/onnx/onnxpb/onnx-ml.pb.go"
