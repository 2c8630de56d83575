package lineage

import (
	"github.com/mlsteps/mlsteps/artifacts"
)

// UpstreamLinks lists the artifacts sc was made from, for reports; it is
// artifacts.UpstreamLinks on the sidecar's inputs (steps call that one
// directly, since steps may not import orchestrate).
func UpstreamLinks(sc *artifacts.Sidecar) []artifacts.Link {
	return artifacts.UpstreamLinks(sc.Inputs)
}
