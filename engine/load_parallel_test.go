package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bigPolicyFile is over the size at which a file is parsed in runs of
// documents, with problems spread over it and text that looks like a
// document marker inside scalars.
func bigPolicyFile(syntaxError bool) []byte {
	var b strings.Builder
	b.WriteString("apiVersion: celpolicy.dev/v1\nkind: Registry\nmetadata: {name: mirror}\nspec: {host: mirror.example.com}\n")
	for i := range 600 {
		fmt.Fprintf(&b, "---\napiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata: {name: p%04d}\nspec:\n  priority: %d\n", i, i%10)
		switch i % 7 {
		case 1:
			b.WriteString("  match: |\n    image.tag == \"---\" ||\n     --- == \"x\"\n")
		case 2:
			b.WriteString("  match: 'image.tag == \"v1\"'\n  colour: red\n") // unknown field
		case 3:
			b.WriteString("  match: image.tag ==\n") // a CEL error, found later
		default:
			fmt.Fprintf(&b, "  match: 'image.repository.startsWith(\"team%d/\")'\n", i)
		}
		b.WriteString("  actions:\n    - type: replicate\n")
		if i == 450 && syntaxError {
			b.WriteString("  oops: [unclosed\n")
		}
	}
	return []byte(b.String())
}

func TestParseInRunsOfDocuments(t *testing.T) {
	for _, syntaxError := range []bool{false, true} {
		data := bigPolicyFile(syntaxError)
		require.Greater(t, len(data), 64<<10)
		require.Greater(t, len(splitDocuments(data, 8)), 1, "the file is split")

		parsed, perr := Parse("big.yaml", data)
		saved := fileChunks
		fileChunks = func() int { return 1 }
		whole, werr := Parse("big.yaml", data)
		fileChunks = saved

		require.Equal(t, fmt.Sprint(werr), fmt.Sprint(perr), "syntax error %v", syntaxError)
		require.Len(t, parsed.Policies, len(whole.Policies))
		for i := range whole.Policies {
			w, p := whole.Policies[i], parsed.Policies[i]
			require.Equal(t, w.Name, p.Name)
			require.Equal(t, w.Pos, p.Pos)
			require.Equal(t, w.Match.Text, p.Match.Text)
			require.Equal(t, w.Match.Pos, p.Match.Pos)
			require.Equal(t, w.Match.PositionAt(3), p.Match.PositionAt(3))
		}
		if syntaxError {
			require.ErrorContains(t, perr, "invalid YAML")
		} else {
			require.ErrorContains(t, perr, "colour")
		}
	}
}
