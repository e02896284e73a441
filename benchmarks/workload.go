package benchmarks

import (
	"fmt"
	"strings"

	"github.com/celpolicy/celpolicy/conditions"
)

// StandardExpr is policy i of DESIGN.md's standard workload: exactly one
// policy (i = 7) matches StandardImage.
func StandardExpr(i int) string {
	return fmt.Sprintf(`image.registry == "reg%d.example.com" && image.repository.startsWith("team%d/") `+
		`&& image.tag.matches("^v[0-9]+\\.[0-9]+\\.%d$") && image.labels["team"] == "t%d" && image.size < %d`,
		i%50, i, i, i, 1000+i)
}

// StandardImage is the image of the standard workload.
func StandardImage() *conditions.Image {
	img := &conditions.Image{
		Reference: "reg7.example.com/team7/app:v1.2.7",
		Labels:    map[string]string{"team": "t7"},
		Size:      10,
	}
	if err := img.Normalize(); err != nil {
		panic(err)
	}
	return img
}

// StandardPolicies renders n standard policies, each replicating to one
// registry, as one policy file.
func StandardPolicies(n int) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: celpolicy.dev/v1\nkind: Registry\nmetadata: {name: mirror}\nspec: {host: mirror.example.com}\n")
	for i := range n {
		fmt.Fprintf(&b, "---\napiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: p%05d}\nspec:\n  priority: %d\n  match: '%s'\n  actions:\n    - type: replicate\n", i, i%10, StandardExpr(i))
	}
	return []byte(b.String())
}
