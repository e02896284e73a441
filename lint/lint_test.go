package lint_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/lint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func load(t *testing.T, file string, combining engine.Combining) *engine.PolicySet {
	t.Helper()
	dir := filepath.Join("..", "testdata", "lint")
	set, err := engine.Load([]string{filepath.Join(dir, "registries.yaml"), filepath.Join(dir, file)}, engine.WithCombining(combining))
	require.NoError(t, err)
	return set
}

func TestRules(t *testing.T) {
	tests := []struct {
		rule      string
		combining engine.Combining
		severity  lint.Severity
		// want are the findings of <rule>-bad.yaml of this rule, as
		// line:col: message prefix.
		want []string
	}{
		{lint.RuleNeverMatches, engine.Priority, lint.SeverityError, []string{
			`6:10: policy "never" never matches`,
			`19:21: policy "never-var" never matches`,
		}},
		{lint.RuleAlwaysMatches, engine.Priority, lint.SeverityWarning, []string{
			`6:10: policy "always" matches every image; if it is meant as the default, set fallback: true`,
		}},
		{lint.RuleUnreachable, engine.FirstMatch, lint.SeverityError, []string{
			`13:9: policy "shadowed" is never evaluated under first-match: policy "catch-all" (priority 10`,
			`22:9: fallback policy "default" never applies: policy "catch-all"`,
		}},
		{lint.RuleConflictingAction, engine.Priority, lint.SeverityWarning, []string{
			`4:9: policies "team-to-prod" and "no-gold-anywhere" have priority 10 and may match the same image: team-to-prod replicates to prod where no-gold-anywhere blocks`,
		}},
		{lint.RuleUnguardedMapKey, engine.Priority, lint.SeverityWarning, []string{
			`6:10: image.labels.team reads key "team" of image.labels without checking that it exists; a missing key is an evaluation error: guard it with has(image.labels.team), or read image.labels.?team.orValue("")`,
			`15:10: image.labels["app.kubernetes.io/name"] reads key "app.kubernetes.io/name" of image.labels without checking that it exists; a missing key is an evaluation error: guard it with "app.kubernetes.io/name" in image.labels, or read image.labels[?"app.kubernetes.io/name"].orValue("")`,
			`18:26: image.labels.team reads key "team"`,
		}},
		{lint.RuleInvalidPattern, engine.Priority, lint.SeverityError, []string{
			`6:28: regular expression "^v" + "[0-9" does not compile: error parsing regexp: missing closing ]`,
			`14:32: glob pattern "team/" + "[" is invalid`,
		}},
		{lint.RuleWhereSelectsNone, engine.Priority, lint.SeverityWarning, []string{
			`9:14: spec.actions[0].where of policy "typo" does not select any registry of the inventory`,
			`12:14: spec.actions[1].where of policy "typo" does not select any of the registries in to (dev)`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.rule+"/bad", func(t *testing.T) {
			var got []lint.Finding
			for _, f := range lint.Lint(load(t, tc.rule+"-bad.yaml", tc.combining)) {
				if f.Rule == tc.rule {
					got = append(got, f)
				}
			}
			require.Len(t, got, len(tc.want), "%v", got)
			for i, f := range got {
				assert.Equal(t, tc.severity, f.Severity)
				assert.Equal(t, filepath.Join("..", "testdata", "lint", tc.rule+"-bad.yaml"), f.Pos.File)
				at, msg, _ := strings.Cut(tc.want[i], ": ")
				assert.Equal(t, at, strings.TrimPrefix(f.Pos.String(), f.Pos.File+":"))
				assert.True(t, strings.HasPrefix(f.Message, msg), "%s\ndoes not start with\n%s", f.Message, msg)
				assert.Equal(t, f.Pos.String()+": "+tc.rule+": "+f.Message, f.String())
			}
		})
		t.Run(tc.rule+"/good", func(t *testing.T) {
			assert.Empty(t, lint.Lint(load(t, tc.rule+"-good.yaml", tc.combining)))
		})
	}
}

func TestRulesAreDocumented(t *testing.T) {
	ids := map[string]bool{}
	for _, r := range lint.Rules() {
		assert.NotEmpty(t, r.Summary)
		assert.Contains(t, []lint.Severity{lint.SeverityError, lint.SeverityWarning}, r.Severity)
		ids[r.ID] = true
	}
	assert.Len(t, ids, 7)
}

func TestExamplesAreClean(t *testing.T) {
	set, err := engine.Load([]string{filepath.Join("..", "examples", "policies")})
	require.NoError(t, err)
	assert.Empty(t, lint.Lint(set))
}
