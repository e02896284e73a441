package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var evalNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// policy renders a Policy document; body is the indented spec.
func policy(name string, body string) string {
	return fmt.Sprintf("---\napiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata:\n  name: %s\nspec:\n%s", name, body)
}

func compileSet(t *testing.T, c Combining, docs ...string) *PolicySet {
	t.Helper()
	b, err := Parse("test.yaml", []byte(inventoryYAML+strings.Join(docs, "\n")))
	require.NoError(t, err)
	set, err := Compile(b, WithCombining(c), WithClock(func() time.Time { return evalNow }))
	require.NoError(t, err)
	return set
}

func webImage() *conditions.Image {
	img := &conditions.Image{Reference: "docker.io/acme/web:prod-1", Labels: map[string]string{"team": "web"},
		Created: evalNow.Add(-48 * time.Hour), Size: 100}
	if err := img.Normalize(); err != nil {
		panic(err)
	}
	return img
}

type verdicts map[string]string // target -> "replicate:policy" or "blocked:policy"

func summarize(d *Decision) verdicts {
	out := verdicts{}
	for name, v := range d.Targets {
		out[name] = v.Verdict + ":" + v.Policy
	}
	return out
}

var (
	replicateAll = "  actions:\n    - type: replicate\n"
	blockProd    = "  actions:\n    - type: block\n      where: target.labels.env == \"production\"\n"
)

func TestCombining(t *testing.T) {
	tests := []struct {
		name      string
		combining Combining
		docs      []string
		want      verdicts
		conflicts int
		matched   []string
	}{
		{
			name:      "priority: higher replicate beats lower block",
			combining: Priority,
			docs: []string{
				policy("rep", "  priority: 10\n  match: \"true\"\n"+replicateAll),
				policy("blk", "  priority: 5\n  match: \"true\"\n"+blockProd),
			},
			want:      verdicts{"eu-prod": "replicate:rep", "dev": "replicate:rep"},
			conflicts: 1, matched: []string{"rep", "blk"},
		},
		{
			name:      "priority: block wins a tie",
			combining: Priority,
			docs: []string{
				policy("a-rep", "  priority: 10\n  match: \"true\"\n"+replicateAll),
				policy("b-blk", "  priority: 10\n  match: \"true\"\n"+blockProd),
			},
			want:      verdicts{"eu-prod": "blocked:b-blk", "dev": "replicate:a-rep"},
			conflicts: 1, matched: []string{"a-rep", "b-blk"},
		},
		{
			name:      "deny-overrides: lower block beats higher replicate",
			combining: DenyOverrides,
			docs: []string{
				policy("rep", "  priority: 10\n  match: \"true\"\n"+replicateAll),
				policy("blk", "  priority: 5\n  match: \"true\"\n"+blockProd),
			},
			want:      verdicts{"eu-prod": "blocked:blk", "dev": "replicate:rep"},
			conflicts: 1, matched: []string{"rep", "blk"},
		},
		{
			name:      "first-match: only the highest matched policy applies",
			combining: FirstMatch,
			docs: []string{
				policy("none", "  priority: 20\n  match: \"false\"\n"+blockProd),
				policy("rep", "  priority: 10\n  match: \"true\"\n  actions:\n    - type: replicate\n      to: [dev]\n"),
				policy("blk", "  priority: 5\n  match: \"true\"\n"+blockProd),
			},
			want:    verdicts{"dev": "replicate:rep"},
			matched: []string{"rep"},
		},
		{
			name:      "ties are ordered by name",
			combining: FirstMatch,
			docs: []string{
				policy("zeta", "  match: \"true\"\n  actions:\n    - type: replicate\n      to: [dev]\n"),
				policy("alpha", "  match: \"true\"\n  actions:\n    - type: replicate\n      to: [eu-prod]\n"),
			},
			want:    verdicts{"eu-prod": "replicate:alpha"},
			matched: []string{"alpha"},
		},
		{
			name:      "audit policies are reported, never applied",
			combining: Priority,
			docs: []string{
				policy("audit-block", "  priority: 100\n  mode: audit\n  match: \"true\"\n"+blockProd),
				policy("rep", "  match: \"true\"\n"+replicateAll),
			},
			want:    verdicts{"eu-prod": "replicate:rep", "dev": "replicate:rep"},
			matched: []string{"audit-block", "rep"},
		},
		{
			name:      "fallback applies when no enforce policy matched",
			combining: Priority,
			docs: []string{
				policy("audit", "  mode: audit\n  match: \"true\"\n"+blockProd),
				policy("other", "  match: image.tag == \"nope\"\n"+blockProd),
				policy("fb", "  fallback: true\n  match: \"true\"\n  actions:\n    - type: replicate\n      to: [dev]\n"),
			},
			want:    verdicts{"dev": "replicate:fb"},
			matched: []string{"audit", "fb"},
		},
		{
			name:      "fallback is skipped when another enforce policy matched",
			combining: Priority,
			docs: []string{
				policy("other", "  match: image.labels.team == \"web\"\n"+blockProd),
				policy("fb", "  fallback: true\n  priority: 1000\n  match: \"true\"\n"+replicateAll),
			},
			want:    verdicts{"eu-prod": "blocked:other"},
			matched: []string{"other"},
		},
		{
			name:      "to and where both restrict",
			combining: Priority,
			docs: []string{
				policy("rep", "  match: \"true\"\n  actions:\n    - type: replicate\n      to: [dev, eu-prod]\n      where: has(target.labels.gdpr)\n"),
			},
			want:    verdicts{"eu-prod": "replicate:rep"},
			matched: []string{"rep"},
		},
		{
			name:      "conditions: all, any and none",
			combining: Priority,
			docs: []string{
				policy("conds", "  conditions:\n    all:\n      - expression: image.size < 1000\n    any:\n      - expression: image.tag.startsWith(\"dev-\")\n      - expression: image.tag.startsWith(\"prod-\")\n    none:\n      - expression: image.labels.team == \"ops\"\n"+replicateAll),
				policy("conds-none", "  conditions:\n    none:\n      - expression: image.labels.team == \"web\"\n"+blockProd),
				policy("conds-any", "  conditions:\n    any:\n      - expression: image.tag == \"x\"\n"+blockProd),
			},
			want:    verdicts{"eu-prod": "replicate:conds", "dev": "replicate:conds"},
			matched: []string{"conds"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := compileSet(t, tc.combining, tc.docs...)
			d, err := set.Evaluate(context.Background(), webImage())
			require.NoError(t, err)
			assert.Equal(t, tc.want, summarize(d))
			assert.Len(t, d.Conflicts, tc.conflicts, "%+v", d.Conflicts)
			var matched []string
			for _, m := range d.Matched {
				matched = append(matched, m.Policy)
			}
			assert.Equal(t, tc.matched, matched)
			assert.Empty(t, d.Errors)
		})
	}
}

func TestConflictDetails(t *testing.T) {
	set := compileSet(t, Priority,
		policy("rep", "  priority: 10\n  match: \"true\"\n"+replicateAll),
		policy("blk", "  priority: 10\n  match: \"true\"\n"+blockProd))
	d, err := set.Evaluate(context.Background(), webImage())
	require.NoError(t, err)
	require.Len(t, d.Conflicts, 1)
	assert.Equal(t, Conflict{Target: "eu-prod", Policy: "blk", Verdict: VerdictBlocked, Other: "rep",
		OtherVerdict: VerdictReplicate, Rule: "equal priority: block wins"}, d.Conflicts[0])
}

func TestAuditVerdictsAreReported(t *testing.T) {
	set := compileSet(t, Priority, policy("audit", "  mode: audit\n  match: \"true\"\n"+blockProd+
		"    - type: notify\n      webhook: https://hooks.example.com/x\n"))
	d, err := set.Evaluate(context.Background(), webImage())
	require.NoError(t, err)
	assert.Empty(t, d.Targets)
	assert.Empty(t, d.Actions)
	require.Len(t, d.Audit, 2)
	assert.Equal(t, "eu-prod", d.Audit[0].Target)
	assert.Equal(t, VerdictBlocked, d.Audit[0].Verdict.Verdict)
	assert.Equal(t, ActionNotify, d.Audit[1].Type)
	assert.True(t, d.Allowed)
}

func TestFailurePolicy(t *testing.T) {
	missingKey := "  match: image.labels.owner == \"me\"\n" // no such key at run time
	tests := []struct {
		name    string
		docs    []string
		want    verdicts
		effect  string
		allowed bool
	}{
		{
			name:    "fail blocks every target, even against a higher replicate",
			docs:    []string{policy("broken", "  failurePolicy: fail\n"+missingKey+replicateAll), policy("rep", "  priority: 100\n  match: \"true\"\n"+replicateAll)},
			want:    verdicts{"eu-prod": "blocked:broken", "dev": "blocked:broken"},
			effect:  "blocked",
			allowed: false,
		},
		{
			name:    "ignore reports and goes on",
			docs:    []string{policy("broken", "  failurePolicy: ignore\n"+missingKey+blockProd), policy("rep", "  match: \"true\"\n"+replicateAll)},
			want:    verdicts{"eu-prod": "replicate:rep", "dev": "replicate:rep"},
			effect:  "ignored",
			allowed: true,
		},
		{
			name:    "an error in where blocks only that target",
			docs:    []string{policy("sel", "  match: \"true\"\n  actions:\n    - type: replicate\n      where: target.labels.gdpr == \"true\"\n")},
			want:    verdicts{"eu-prod": "replicate:sel", "dev": "blocked:sel"},
			effect:  "blocked",
			allowed: true,
		},
		{
			name:    "audit errors never block",
			docs:    []string{policy("broken", "  mode: audit\n"+missingKey+replicateAll)},
			want:    verdicts{},
			effect:  "ignored",
			allowed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set := compileSet(t, Priority, tc.docs...)
			d, err := set.Evaluate(context.Background(), webImage())
			require.NoError(t, err)
			assert.Equal(t, tc.want, summarize(d))
			require.Len(t, d.Errors, 1)
			assert.Equal(t, tc.effect, d.Errors[0].Effect)
			assert.Contains(t, d.Errors[0].Message, "no such key")
			assert.Equal(t, tc.allowed, d.Allowed)
		})
	}
}

func TestDestinationsReasonsAndActions(t *testing.T) {
	set := compileSet(t, Priority,
		policy("mirror", "  match: \"true\"\n  actions:\n    - type: replicate\n      to: [eu-prod]\n      repository: '\"mirror/\" + image.repository'\n      tag: image.tag + \"-\" + target.name\n      platforms: [linux/amd64]\n      referrers: true\n    - type: notify\n      webhook: https://hooks.example.com/x\n    - type: delete\n      scope: manifest\n"),
		policy("blk", "  match: \"true\"\n  actions:\n    - type: block\n      to: [dev]\n"))
	d, err := set.Evaluate(context.Background(), webImage())
	require.NoError(t, err)
	assert.Equal(t, &Verdict{Verdict: VerdictReplicate, Policy: "mirror",
		Destination: "registry.eu.example.com/mirror/acme/web:prod-1-eu-prod",
		Platforms:   []string{"linux/amd64"}, Referrers: true}, d.Targets["eu-prod"])
	assert.Equal(t, &Verdict{Verdict: VerdictBlocked, Policy: "blk", Reason: `blocked by policy "blk"`}, d.Targets["dev"])
	assert.Equal(t, []PlannedAction{
		{Type: ActionNotify, Policy: "mirror", Webhook: "https://hooks.example.com/x"},
		{Type: ActionDelete, Policy: "mirror", Reference: "docker.io/acme/web:prod-1", Scope: "manifest"},
	}, d.Actions)
}

func TestDigestOnlyDestination(t *testing.T) {
	set := compileSet(t, Priority, policy("rep", "  match: \"true\"\n  actions:\n    - type: replicate\n      to: [dev]\n"))
	img := &conditions.Image{Reference: "reg.example.com/a/b@sha256:" + strings.Repeat("ab", 32)}
	require.NoError(t, img.Normalize())
	d, err := set.Evaluate(context.Background(), img)
	require.NoError(t, err)
	assert.Equal(t, "registry.dev.example.com/a/b@sha256:"+strings.Repeat("ab", 32), d.Targets["dev"].Destination)
}

func TestForTargetAndAllowed(t *testing.T) {
	set := compileSet(t, Priority, policy("blk", "  match: \"true\"\n"+blockProd))
	ctx := context.Background()
	d, err := set.Evaluate(ctx, webImage(), ForTarget("eu-prod"))
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.Len(t, d.Targets, 1)
	d, err = set.Evaluate(ctx, webImage(), ForTarget("dev"))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	d, err = set.Evaluate(ctx, webImage())
	require.NoError(t, err)
	assert.True(t, d.Allowed, "dev is not blocked")

	blockAll := compileSet(t, Priority, policy("blk", "  match: \"true\"\n  actions:\n    - type: block\n"))
	d, err = blockAll.Evaluate(ctx, webImage())
	require.NoError(t, err)
	assert.False(t, d.Allowed)

	_, err = set.Evaluate(ctx, webImage(), ForTarget("nowhere"))
	var ut *UnknownTargetError
	require.ErrorAs(t, err, &ut)
	assert.Equal(t, "nowhere", ut.Name, "the error names the target asked about")
}

func TestNowAndClock(t *testing.T) {
	set := compileSet(t, Priority, policy("old", "  match: image.age > duration(\"72h\")\n"+blockProd))
	ctx := context.Background()
	d, err := set.Evaluate(ctx, webImage()) // clock: 48h after creation
	require.NoError(t, err)
	assert.Empty(t, d.Matched)
	d, err = set.Evaluate(ctx, webImage(), At(evalNow.Add(48*time.Hour)))
	require.NoError(t, err)
	assert.Len(t, d.Matched, 1)
}

func TestVariablesAreLazyAndEvaluatedOnce(t *testing.T) {
	// b divides by zero: evaluating it would be an error. It is never
	// needed because a is false, so the policy simply does not match.
	set := compileSet(t, Priority, policy("lazy", "  variables:\n    - name: a\n      expression: image.size > 1000\n    - name: b\n      expression: 1 / (image.size - 100) > 0\n    - name: c\n      expression: variables.a || variables.a\n  match: variables.c && variables.b\n"+blockProd))
	d, err := set.Evaluate(context.Background(), webImage())
	require.NoError(t, err)
	assert.Empty(t, d.Errors)
	assert.Empty(t, d.Matched)
}

func TestTrace(t *testing.T) {
	set := compileSet(t, Priority,
		policy("team", "  variables:\n    - name: team\n      expression: image.labels[?\"team\"].orValue(\"\")\n  match: variables.team == \"platform\"\n"+blockProd),
		policy("fb", "  fallback: true\n  match: \"true\"\n  actions:\n    - type: replicate\n      to: [dev]\n      where: target.name == \"dev\"\n"))
	ctx := context.Background()
	d, err := set.Evaluate(ctx, webImage())
	require.NoError(t, err)
	assert.Empty(t, d.Trace, "no trace unless asked")

	d, err = set.Evaluate(ctx, webImage(), WithTrace())
	require.NoError(t, err)
	require.Len(t, d.Trace, 2)
	team := d.Trace[0]
	assert.Equal(t, "team", team.Policy)
	assert.False(t, team.Matched)
	require.Len(t, team.Variables, 1)
	assert.Equal(t, "web", team.Variables[0].Result)
	require.Len(t, team.Conditions, 1)
	assert.Equal(t, false, team.Conditions[0].Result)
	assert.Contains(t, team.Conditions[0].Values, SubValue{Expression: "variables.team", Value: "web"})
	fb := d.Trace[1]
	assert.True(t, fb.Matched)
	require.Len(t, fb.Actions, 1)
	assert.Equal(t, "dev", fb.Actions[0].Target)
	assert.Equal(t, true, fb.Actions[0].Result)
	// Tracing must not change the decision.
	plain, err := set.Evaluate(ctx, webImage())
	require.NoError(t, err)
	d.Trace = []PolicyTrace{}
	assert.Equal(t, plain, d)
}

func TestEvaluateCancelled(t *testing.T) {
	set := compileSet(t, Priority, policy("p", "  match: \"true\"\n"+blockProd))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := set.Evaluate(ctx, webImage())
	assert.ErrorIs(t, err, context.Canceled)
}

func TestEvaluateConcurrently(t *testing.T) {
	set := compileSet(t, Priority,
		policy("team", "  variables:\n    - name: team\n      expression: image.labels.team\n  match: variables.team == \"web\"\n"+blockProd),
		policy("rep", "  match: \"true\"\n"+replicateAll))
	want, err := set.Evaluate(context.Background(), webImage())
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := set.Evaluate(context.Background(), webImage())
				if assert.NoError(t, err) {
					assert.Equal(t, want, got)
				}
			}
		})
	}
	wg.Wait()
}
