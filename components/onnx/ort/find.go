package ort

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ortgo "github.com/yalue/onnxruntime_go"
)

// libName is the ONNX Runtime shared library's file name on Linux.
const libName = "libonnxruntime.so.1"

// FindLib returns the ONNX Runtime library to load: $MLSTEPS_ORT_LIB when
// set, else the first that exists of the usual places: beside the
// executable (./, ../lib, ../lib/mlsteps), the working directory's
// .cache/lib (a source checkout after `make setup`), and the system
// library folders. The error lists every place it looked.
func FindLib() (string, error) {
	if p := os.Getenv(EnvLib); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("onnxruntime library from $%s: %w", EnvLib, err)
		}
		return p, nil
	}
	var places []string
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		places = append(places, filepath.Join(dir, libName), filepath.Join(dir, "..", "lib", libName),
			filepath.Join(dir, "..", "lib", "mlsteps", libName), filepath.Join(dir, "..", ".cache", "lib", libName))
	}
	places = append(places, filepath.Join(".cache", "lib", libName),
		"/usr/local/lib/mlsteps/"+libName, "/usr/local/lib/"+libName,
		"/usr/lib/x86_64-linux-gnu/"+libName, "/usr/lib/"+libName)
	for _, p := range places {
		if _, err := os.Stat(p); err == nil {
			return filepath.Abs(p)
		}
	}
	return "", fmt.Errorf("onnxruntime library %s not found; set $%s to its path (looked in %s)", libName, EnvLib, strings.Join(places, ", "))
}

// Initialized reports whether Init has succeeded in this process, so code
// that finds the library itself defers to whoever initialised it first.
func Initialized() bool { return ortgo.IsInitialized() }

// InitFound initialises ONNX Runtime from FindLib's library, unless the
// process already did.
func InitFound() error {
	if Initialized() {
		return nil
	}
	lib, err := FindLib()
	if err != nil {
		return err
	}
	return Init(lib)
}
