package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBoundsOfWhatIsRead: an image is within the cost estimate's bounds
// when the parts the policies read are, so a large label no policy reads
// keeps the index and the untracked programs, and changes no decision.
func TestBoundsOfWhatIsRead(t *testing.T) {
	byKey := compileSet(t, Priority,
		policy("web", "  match: image.labels[\"team\"] == \"web\" && image.repository.matches(\"^acme/\")\n  actions:\n    - type: replicate\n"),
		policy("other", "  match: has(image.labels.owner)\n  actions:\n    - type: block\n"))
	assert.False(t, byKey.parts.Labels)
	assert.ElementsMatch(t, []string{"owner", "team"}, byKey.parts.LabelKeys)

	img := webImage()
	want, err := byKey.Evaluate(context.Background(), img)
	require.NoError(t, err)
	img.Labels["notes"] = strings.Repeat("n", 1<<20)
	assert.False(t, img.WithinCostBounds())
	assert.True(t, img.WithinCostBoundsFor(byKey.parts), "the large label is not read")
	got, err := byKey.Evaluate(context.Background(), img)
	require.NoError(t, err)
	assert.Equal(t, summarize(want), summarize(got))
	assert.Equal(t, want.Matched, got.Matched)

	img.Labels["team"] = strings.Repeat("w", 1<<20)
	assert.False(t, img.WithinCostBoundsFor(byKey.parts), "a large label that is read")

	whole := compileSet(t, Priority,
		policy("any", "  match: image.labels.exists(k, k.startsWith(\"x-\"))\n  actions:\n    - type: block\n"))
	assert.True(t, whole.parts.Labels, "a comprehension reads the whole map")
	img = webImage()
	img.Labels["notes"] = strings.Repeat("n", 1<<20)
	assert.False(t, img.WithinCostBoundsFor(whole.parts))
}
