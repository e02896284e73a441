package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRecompileNeverChangesADecision changes one random policy of a
// random set at a time and compares the set compiled WithPrevious with
// one compiled from scratch.
func TestRecompileNeverChangesADecision(t *testing.T) {
	ctx := context.Background()
	for seed := range 40 {
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		docs := make([]string, 2+r.IntN(10))
		for i := range docs {
			docs[i] = propPolicy(r, i)
		}
		inventory := inventoryYAML
		prev, err := Compile(mustParse(t, inventory+strings.Join(docs, "\n")), WithoutIndex())
		require.NoError(t, err)
		for step := range 4 {
			i := r.IntN(len(docs))
			docs[i] = propPolicy(r, i)
			if step == 2 {
				// A registry sorted before the others moves every index.
				inventory = "apiVersion: celpolicy.dev/v1\nkind: Registry\nmetadata: {name: aaa}\nspec: {host: a.example.com}\n---\n" + inventoryYAML
			}
			src := inventory + strings.Join(docs, "\n")
			b := mustParse(t, src)
			next, err := Compile(b, WithPrevious(prev))
			require.NoError(t, err)
			fresh, err := Compile(b)
			require.NoError(t, err)
			for range 10 {
				img := propImage(r)
				a, err := next.Evaluate(ctx, img, At(evalNow))
				require.NoError(t, err)
				f, err := fresh.Evaluate(ctx, img, At(evalNow))
				require.NoError(t, err)
				require.Equal(t, decisionJSON(t, f), decisionJSON(t, a), "seed %d step %d\n%s", seed, step, src)
			}
			prev = next
		}
	}
}

func mustParse(t *testing.T, src string) *Bundle {
	t.Helper()
	b, err := Parse("test.yaml", []byte(src))
	require.NoError(t, err)
	return b
}

func TestWithPreviousReusesUnchangedPolicies(t *testing.T) {
	docs := func(bound int) string {
		return inventoryYAML + strings.Join([]string{
			policy("same", "  match: 'image.labels[\"team\"] == \"web\"'\n  actions:\n    - type: replicate\n      to: [eu-prod]\n"),
			policy("changed", fmt.Sprintf("  match: 'image.size < %d'\n", bound)+blockProd),
		}, "\n")
	}
	prev, err := Compile(mustParse(t, docs(10)))
	require.NoError(t, err)
	next, err := Compile(mustParse(t, docs(1000)), WithPrevious(prev))
	require.NoError(t, err)

	program := func(s *PolicySet, name string) *conditions.Program { return s.Expressions(name)[0].Program }
	assert.Same(t, program(prev, "same"), program(next, "same"))
	assert.NotSame(t, program(prev, "changed"), program(next, "changed"))
	assert.Same(t, prev.env, next.env, "the environment is reused")
	assert.NotSame(t, prev.policies[0].Policy, next.policies[0].Policy, "policies point at the new bundle")

	d, err := next.Evaluate(context.Background(), webImage(), At(evalNow))
	require.NoError(t, err)
	assert.Equal(t, verdicts{"eu-prod": "blocked:changed"}, summarize(d))

	// Other cost limits are another environment: nothing is reused.
	env, err := conditions.NewEnv(conditions.WithRuntimeCostLimit(1 << 20))
	require.NoError(t, err)
	other, err := Compile(mustParse(t, docs(1000)), WithPrevious(next), WithEnv(env))
	require.NoError(t, err)
	assert.NotSame(t, program(next, "same"), program(other, "same"))
}

func TestWithPreviousReportsErrorsWithPositions(t *testing.T) {
	ok := inventoryYAML + policy("p", "  match: 'image.size < 10'\n"+replicateAll)
	prev, err := Compile(mustParse(t, ok))
	require.NoError(t, err)
	broken := inventoryYAML + policy("p", "  match: 'image.size < 10'\n"+replicateAll) + "\n" +
		policy("q", "  match: 'image.nope == 1'\n"+replicateAll)
	_, err = Compile(mustParse(t, broken), WithPrevious(prev))
	var list ErrorList
	require.ErrorAs(t, err, &list)
	require.Len(t, list, 1)
	assert.Equal(t, "q", list[0].Name)
	assert.Equal(t, "spec.match", list[0].Field)
	assert.Greater(t, list[0].Pos.Line, 1)
	assert.Greater(t, list[0].Pos.Column, 1)
}

// TestCompileSharesIdenticalExpressions checks that policies written
// from one template share the program of a repeated expression.
func TestCompileSharesIdenticalExpressions(t *testing.T) {
	var docs []string
	for i := range 8 {
		docs = append(docs, policy(fmt.Sprintf("p%d", i), fmt.Sprintf("  match: 'image.size < %d'\n", i)+blockProd))
	}
	set := compileSet(t, Priority, docs...)
	where := func(name string) *conditions.Program { return set.Expressions(name)[1].Program }
	assert.Same(t, where("p0"), where("p7"))
	assert.NotSame(t, set.Expressions("p0")[0].Program, set.Expressions("p7")[0].Program)
}

func TestWithPreviousUpdatesTheIndex(t *testing.T) {
	docs := func(repo string) string {
		var out []string
		for i := range 20 {
			r := fmt.Sprintf("team%d/", i)
			if i == 7 {
				r = repo
			}
			out = append(out, policy(fmt.Sprintf("p%02d", i), fmt.Sprintf("  match: 'image.repository.startsWith(\"%s\") && image.size < 1000'\n", r)+replicateAll))
		}
		return inventoryYAML + strings.Join(out, "\n")
	}
	prev, err := Compile(mustParse(t, docs("team7/")))
	require.NoError(t, err)
	next, err := Compile(mustParse(t, docs("acme/")), WithPrevious(prev))
	require.NoError(t, err)
	require.NotSame(t, prev.index, next.index)

	names := func(s *PolicySet, repo string) []string {
		cands := s.index.candidates(&conditions.Image{Repository: repo}, nil)
		var out []string
		for _, i := range cands {
			out = append(out, s.policies[i].Name)
		}
		return out
	}
	assert.Equal(t, []string{"p07"}, names(next, "acme/web"))
	assert.Empty(t, names(next, "team7/web"))
	assert.Equal(t, []string{"p07"}, names(prev, "team7/web"), "the previous set's index is unchanged")
	assert.Empty(t, names(prev, "acme/web"))

	fresh, err := Compile(mustParse(t, docs("acme/")))
	require.NoError(t, err)
	for _, repo := range []string{"acme/web", "team7/x", "team1/y", "team12/z"} {
		assert.Equal(t, names(fresh, repo), names(next, repo), repo)
	}
}
