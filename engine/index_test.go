package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clauseStrings renders clauses as "field=value | field^prefix" lines;
// a strictly read map entry is marked with !.
func clauseStrings(cs []clause) []string {
	var out []string
	for _, c := range cs {
		var parts []string
		for _, a := range c {
			f := a.field.field
			if a.field.key != "" {
				f += "[" + a.field.key + "]"
			}
			if a.strict {
				f += "!"
			}
			op := "="
			if a.prefix {
				op = "^"
			}
			parts = append(parts, f+op+a.value)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	return out
}

func TestPolicyClauses(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"equality both ways", `  match: 'image.registry == "a.io" && "v1" == image.tag'`, []string{"registry=a.io", "tag=v1"}},
		{"in", `  match: 'image.repository in ["x", "y"]'`, []string{"repository=x | repository=y"}},
		{"startsWith", `  match: 'image.repository.startsWith("team7/")'`, []string{"repository^team7/"}},
		{"glob keeps the literal prefix without its last separator", `  match: 'image.repository.glob("team7/**")'`, []string{"repository^team7"}},
		{"glob without wildcards is equality", `  match: 'image.repository.glob("team7/app")'`, []string{"repository=team7/app"}},
		{"glob starting with a wildcard", `  match: 'image.repository.glob("**/app")'`, nil},
		{"anchored regex", `  match: 'image.tag.matches("^release-7\\.")'`, []string{"tag^release-7."}},
		{"unanchored regex", `  match: 'image.tag.matches("release")'`, nil},
		{"case-insensitive regex", `  match: 'image.tag.matches("^(?i)release")'`, nil},
		{"label index is strict", `  match: 'image.labels["team"] == "t7"'`, []string{"labels[team]!=t7"}},
		{"label select is strict", `  match: 'image.labels.team == "t7"'`, []string{"labels[team]!=t7"}},
		{"optional label with another default", `  match: 'image.labels[?"team"].orValue("") == "t7"'`, []string{"labels[team]=t7"}},
		{"optional label whose default matches", `  match: 'image.labels.?team.orValue("t7") == "t7"'`, nil},
		{"annotation", `  match: 'image.annotations["a"] == "b"'`, []string{"annotations[a]!=b"}},
		{"disjunction", `  match: 'image.registry == "a" || image.tag.startsWith("v")'`, []string{"registry=a | tag^v"}},
		{"disjunction with an unindexable side", `  match: 'image.registry == "a" || image.size < 3'`, nil},
		{"negation", `  match: '!(image.registry == "a")'`, nil},
		{"variables are inlined", "  variables:\n    - name: ok\n      expression: 'image.registry == \"a\"'\n  match: 'variables.ok && image.size < 3'",
			[]string{"registry=a"}},
		{"all conditions after one that cannot fail", "  conditions:\n    all:\n      - expression: 'image.tag.startsWith(\"v\")'\n      - expression: 'image.registry == \"a\"'",
			[]string{"tag^v", "registry=a"}},
		{"all conditions after one that can fail", "  conditions:\n    all:\n      - expression: 'image.labels[\"x\"] == \"y\"'\n      - expression: 'image.registry == \"a\"'",
			[]string{"labels[x]!=y"}},
		{"any conditions", "  conditions:\n    all:\n      - expression: 'image.size < 3'\n    any:\n      - expression: 'image.registry == \"a\"'\n      - expression: 'image.registry == \"b\"'",
			[]string{"registry=a | registry=b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := compileSet(t, Priority, policy("p", tc.body+"\n"+replicateAll))
			assert.Equal(t, tc.want, clauseStrings(set.policies[0].terms))
		})
	}
}

func TestRegexAndGlobPrefix(t *testing.T) {
	for pat, want := range map[string]string{
		`^abc`: "abc", `^a\.b+`: "a.", `^(ab)`: "", `^ab|^ac`: "", `abc`: "", `^`: "", `^a[bc]`: "a", `\Aab`: "ab",
	} {
		assert.Equal(t, want, regexPrefix(pat), pat)
	}
	for pat, want := range map[string]string{
		"a/b/**": "a/b", "a/*": "a", "ab*": "ab", "a{b,c}": "a", `a\*`: "a", "**": "",
	} {
		got, exact := globPrefix(pat)
		assert.False(t, exact)
		assert.Equal(t, want, got, pat)
	}
}

func TestIndexCandidates(t *testing.T) {
	docs := []string{
		policy("always", "  priority: 9\n  match: 'image.size < 100'\n"+replicateAll),
		policy("by-label", "  priority: 5\n  match: 'image.labels[\"team\"] == \"web\"'\n"+replicateAll),
		policy("by-repo", "  priority: 5\n  match: 'image.repository.glob(\"acme/**\")'\n"+replicateAll),
		policy("by-registry", "  priority: 1\n  match: 'image.registry == \"docker.io\" && image.labels[\"team\"] == \"db\"'\n"+replicateAll),
		policy("by-tag", "  match: 'image.tag.matches(\"^release-\")'\n"+replicateAll),
	}
	set := compileSet(t, Priority, docs...)
	names := func(img *conditions.Image) []string {
		cands := set.index.candidates(img, nil)
		var out []string
		for _, i := range cands {
			out = append(out, set.policies[i].Name)
		}
		return out
	}
	img := webImage() // docker.io/acme/web:prod-1, team=web
	assert.Equal(t, []string{"always", "by-label", "by-repo", "by-registry"}, names(img))

	other := &conditions.Image{Registry: "quay.io", Repository: "x/y", Tag: "release-2", Labels: map[string]string{"team": "db"}}
	assert.Equal(t, []string{"always", "by-tag"}, names(other))

	// Without the team label, the policies reading it strictly fail: they
	// stay candidates.
	other.Labels = nil
	assert.Equal(t, []string{"always", "by-label", "by-tag"}, names(other))
}

// TestIndexOrdersCandidatesByPriorityAndName checks that candidates found
// through different fields come back in evaluation order.
func TestIndexOrdersCandidatesByPriorityAndName(t *testing.T) {
	var docs []string
	for i := range 40 {
		match := fmt.Sprintf(`image.registry == "docker.io" && image.size < %d`, 1000+i)
		if i%2 == 1 {
			match = fmt.Sprintf(`image.repository.startsWith("acme/") && image.size < %d`, 1000+i)
		}
		docs = append(docs, policy(fmt.Sprintf("p%02d", i), fmt.Sprintf("  priority: %d\n  match: '%s'\n", i%3, match)+replicateAll))
	}
	set := compileSet(t, FirstMatch, docs...)
	cands := set.index.candidates(webImage(), nil)
	require.Len(t, cands, 40)
	assert.True(t, slices.IsSorted(cands))
}

func BenchmarkBuildIndex(b *testing.B) {
	var docs []string
	for i := range 10000 {
		docs = append(docs, policy(fmt.Sprintf("p%05d", i), fmt.Sprintf(
			"  match: 'image.registry == \"reg%d.example.com\" && image.repository.startsWith(\"team%d/\") && image.tag.matches(\"^v[0-9]+\\\\\\\\.%d$\") && image.labels[\"team\"] == \"t%d\"'\n", i%50, i, i, i)+replicateAll))
	}
	bundle, err := Parse("test.yaml", []byte(inventoryYAML+strings.Join(docs, "\n")))
	require.NoError(b, err)
	set, err := Compile(bundle)
	require.NoError(b, err)
	terms := make([][]clause, len(set.policies))
	for i, p := range set.policies {
		terms[i] = p.terms
	}
	b.ReportAllocs()
	for b.Loop() {
		buildIndex(terms)
	}
}

func TestTrie(t *testing.T) {
	var root trieNode
	prefixes := []string{"team1", "team1/", "team10/", "te", "other", "team1/app", "t"}
	for i, p := range prefixes {
		root.insert(p, int32(i))
	}
	root.insert("team1", 7)
	for s, want := range map[string][]int32{
		"team1/app/x": {6, 3, 0, 7, 1, 5},
		"team10/y":    {6, 3, 0, 7, 2},
		"team2":       {6, 3},
		"other":       {4},
		"":            nil,
		"x":           nil,
	} {
		got := root.collect(s, nil)
		slices.Sort(got)
		slices.Sort(want)
		assert.Equal(t, want, got, s)
	}
}

// TestCostLimitBeyondTheEstimateBounds checks that an image beyond the
// cost estimate's bounds is still stopped by the runtime cost limit:
// programs run without cost tracking only for images within them.
func TestCostLimitBeyondTheEstimateBounds(t *testing.T) {
	env, err := conditions.NewEnv(conditions.WithRuntimeCostLimit(20_000))
	require.NoError(t, err)
	b, err := Parse("test.yaml", []byte(inventoryYAML+policy("scan",
		"  match: 'image.registry == \"docker.io\" && image.labels.exists(k, k.startsWith(\"zz\"))'\n"+replicateAll)))
	require.NoError(t, err)
	for _, opts := range [][]Option{{WithEnv(env)}, {WithEnv(env), WithoutIndex()}} {
		set, err := Compile(b, opts...)
		require.NoError(t, err)
		img := webImage()
		img.Labels = map[string]string{}
		for i := range 200 {
			img.Labels[fmt.Sprintf("label-%03d", i)] = "x"
		}
		d, err := set.Evaluate(context.Background(), img, At(evalNow))
		require.NoError(t, err)
		assert.Empty(t, d.Errors, "within the bounds")

		for i := range 5000 {
			img.Labels[fmt.Sprintf("label-%04d", i)] = "x"
		}
		d, err = set.Evaluate(context.Background(), img, At(evalNow))
		require.NoError(t, err)
		if assert.Len(t, d.Errors, 1, "beyond the bounds") {
			assert.Contains(t, d.Errors[0].Message, "cost limit")
		}
	}
}
