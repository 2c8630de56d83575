package artifacts_test

import (
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/artifacts/artifactstest"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

func TestConformanceMem(t *testing.T) {
	artifactstest.Run(t, func(t *testing.T) artifacts.URI {
		return artifacts.MustParseURI("mem://conformance/" + t.Name())
	})
}

func TestConformanceFile(t *testing.T) {
	artifactstest.Run(t, func(t *testing.T) artifacts.URI {
		u, err := artifacts.ParseURI(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return u
	})
}

func TestConformanceS3(t *testing.T) {
	s3 := testenv.StartS3(t)
	artifactstest.Run(t, func(t *testing.T) artifacts.URI {
		return artifacts.MustParseURI(s3.URL(t.Name()))
	})
}
