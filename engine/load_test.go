package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const inventoryYAML = `apiVersion: celpolicy.dev/v1
kind: Registry
metadata:
  name: eu-prod
  labels: {env: production, gdpr: "true"}
spec:
  host: registry.eu.example.com
---
apiVersion: celpolicy.dev/v1
kind: Registry
metadata:
  name: dev
  labels: {env: development}
spec:
  host: registry.dev.example.com
`

// loadErrors writes files into a temporary directory, loads it and
// returns the problems.
func loadErrors(t *testing.T, files map[string]string) ErrorList {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	_, err := Load([]string{dir})
	require.Error(t, err)
	var list ErrorList
	require.True(t, errors.As(err, &list), "want an ErrorList, got %T: %v", err, err)
	for _, e := range list {
		e.Pos.File = filepath.Base(e.Pos.File)
	}
	return list
}

func policyDoc(spec string) string {
	return "apiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n" + spec
}

func TestLoadErrorPositions(t *testing.T) {
	tests := []struct {
		name      string
		policy    string // content of p.yaml; inventory.yaml is always there
		line, col int
		field     string
		msg       string
	}{
		{name: "yaml syntax", policy: "apiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata:\n  name: p\n   bad: [\n",
			line: 5, col: 4, msg: "invalid YAML"},
		{name: "unknown field with suggestion", policy: policyDoc("  priorty: 3\n  match: \"true\"\n  actions: [{type: block}]\n"),
			line: 6, col: 3, field: "spec.priorty", msg: `unknown field "priorty" (did you mean "priority"?)`},
		{name: "unknown top-level field", policy: "apiVersion: celpolicy.dev/v1\nkind: Policy\nmetdata:\n  name: p\n",
			line: 3, col: 1, field: "metdata", msg: `unknown field "metdata"`},
		{name: "wrong type", policy: policyDoc("  priority: high\n  match: \"true\"\n  actions: [{type: block}]\n"),
			line: 6, col: 13, field: "spec.priority", msg: `expected an integer, got "high"`},
		{name: "list expected", policy: policyDoc("  match: \"true\"\n  actions:\n    - type: replicate\n      to: eu-prod\n"),
			line: 9, col: 11, field: "spec.actions[0].to", msg: `expected a list, got "eu-prod"`},
		{name: "missing required field", policy: policyDoc("  match: \"true\"\n"),
			line: 5, col: 1, field: "spec.actions", msg: `missing required field "actions"`},
		{name: "missing match", policy: policyDoc("  actions: [{type: block}]\n"),
			line: 5, col: 1, field: "spec", msg: `missing required field "match" (or "conditions")`},
		{name: "unknown action type", policy: policyDoc("  match: \"true\"\n  actions:\n    - type: copy\n"),
			line: 8, col: 13, field: "spec.actions[0].type", msg: `unknown action type "copy"`},
		{name: "field of another action type", policy: policyDoc("  match: \"true\"\n  actions:\n    - type: block\n      repository: '\"x\"'\n"),
			line: 9, col: 19, field: "spec.actions[0].repository", msg: `field "repository" does not apply to a block action`},
		{name: "unknown inventory name", policy: policyDoc("  match: \"true\"\n  actions:\n    - type: replicate\n      to: [eu-prod, us-prod]\n"),
			line: 9, col: 21, field: "spec.actions[0].to[1]", msg: `unknown registry "us-prod" (known registries: dev, eu-prod)`},
		{name: "bad cron", policy: policyDoc("  match: \"true\"\n  actions: [{type: block}]\n  schedule: \"0 */6 * *\"\n"),
			line: 8, col: 13, field: "spec.schedule", msg: `invalid schedule "0 */6 * *"`},
		{name: "bad mode", policy: policyDoc("  mode: dryrun\n  match: \"true\"\n  actions: [{type: block}]\n"),
			line: 6, col: 9, field: "spec.mode", msg: `unknown mode "dryrun"`},
		{name: "undefined variable", policy: policyDoc("  variables:\n    - name: team\n      expression: image.labels.?team.orValue(\"\")\n  match: variables.team == \"web\" && variables.owner == \"x\"\n  actions: [{type: block}]\n"),
			line: 9, col: 37, field: "spec.match", msg: `undefined variable "owner" (declared before this point: team)`},
		{name: "variable used before defined", policy: policyDoc("  variables:\n    - name: a\n      expression: variables.b\n    - name: b\n      expression: \"1\"\n  match: \"true\"\n  actions: [{type: block}]\n"),
			line: 8, col: 19, field: "spec.variables[0].expression", msg: `undefined variable "b" (no variables are declared before this point)`},
		{name: "cel syntax in plain scalar", policy: policyDoc("  match: image.tag ==\n  actions: [{type: block}]\n"),
			line: 6, col: 22, field: "spec.match", msg: "Syntax error"},
		{name: "cel type error in double-quoted scalar", policy: policyDoc("  match: \"image.size == \\\"big\\\"\"\n  actions: [{type: block}]\n"),
			line: 6, col: 22, field: "spec.match", msg: "no matching overload"},
		{name: "cel error in single-quoted scalar", policy: policyDoc("  match: 'image.tag == ''x'' && image.nope'\n  actions: [{type: block}]\n"),
			line: 6, col: 38, field: "spec.match", msg: "undefined field 'nope'"},
		{name: "cel error in literal block", policy: policyDoc("  match: |\n    image.tag.startsWith(\"v\") &&\n      image.labls[\"team\"] == \"web\"\n  actions: [{type: block}]\n"),
			line: 8, col: 12, field: "spec.match", msg: "undefined field 'labls'"},
		{name: "cel error in folded block", policy: policyDoc("  match: >\n    image.tag.startsWith(\"v\") &&\n    image.sise > 10\n  actions: [{type: block}]\n"),
			line: 8, col: 10, field: "spec.match", msg: "undefined field 'sise'"},
		{name: "where result type", policy: policyDoc("  match: \"true\"\n  actions:\n    - type: replicate\n      where: target.name\n"),
			line: 9, col: 14, field: "spec.actions[0].where", msg: "must be of type bool, but it is string"},
		{name: "target in match", policy: policyDoc("  match: target.name == \"eu-prod\"\n  actions: [{type: block}]\n"),
			line: 6, col: 10, field: "spec.match", msg: "target is not available here"},
		{name: "unsupported apiVersion", policy: "apiVersion: celpolicy.dev/v2\nkind: Policy\nmetadata:\n  name: p\nspec:\n  match: \"true\"\n  actions: [{type: block}]\n",
			line: 1, col: 13, field: "apiVersion", msg: `unsupported apiVersion "celpolicy.dev/v2"`},
		{name: "unknown kind", policy: "apiVersion: celpolicy.dev/v1\nkind: Rule\nmetadata:\n  name: p\nspec: {}\n",
			line: 2, col: 7, field: "kind", msg: `unknown kind "Rule"`},
		{name: "bad name", policy: "apiVersion: celpolicy.dev/v1\nkind: Policy\nmetadata:\n  name: My_Policy\nspec:\n  match: \"true\"\n  actions: [{type: block}]\n",
			line: 4, col: 9, field: "metadata.name", msg: `invalid name "My_Policy"`},
		{name: "notify without webhook", policy: policyDoc("  match: \"true\"\n  actions:\n    - type: notify\n"),
			line: 8, col: 7, field: "spec.actions[0].webhook", msg: "needs a webhook URL"},
		{name: "bad regex literal", policy: policyDoc("  match: image.tag.matches(\"^v[0-9\")\n  actions: [{type: block}]\n"),
			line: 6, col: 28, field: "spec.match", msg: "invalid matches argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list := loadErrors(t, map[string]string{"inventory.yaml": inventoryYAML, "p.yaml": tc.policy})
			var found *Error
			for _, e := range list {
				if strings.Contains(e.Msg, tc.msg) {
					found = e
					break
				}
			}
			require.NotNil(t, found, "no error containing %q in:\n%v", tc.msg, list)
			assert.Equal(t, "p.yaml", found.Pos.File)
			assert.Equal(t, tc.line, found.Pos.Line, "line of %v", found)
			assert.Equal(t, tc.col, found.Pos.Column, "column of %v", found)
			assert.Equal(t, tc.field, found.Field)
		})
	}
}

func TestBrokenVariableDoesNotCascade(t *testing.T) {
	list := loadErrors(t, map[string]string{"inventory.yaml": inventoryYAML, "p.yaml": policyDoc(
		"  variables:\n    - name: age\n      expression: image.agee\n    - name: ageDays\n      expression: variables.age.getHours() / 24\n  match: variables.ageDays > 3\n  actions: [{type: block}]\n")})
	require.Len(t, list, 1, "%v", list)
	assert.Contains(t, list[0].Msg, "undefined field 'agee'")
}

func TestLoadDuplicateNames(t *testing.T) {
	p := policyDoc("  match: \"true\"\n  actions: [{type: block}]\n")
	list := loadErrors(t, map[string]string{"inventory.yaml": inventoryYAML, "a.yaml": p, "b.yaml": p,
		"c.yaml": "apiVersion: celpolicy.dev/v1\nkind: Registry\nmetadata:\n  name: dev\nspec:\n  host: other.example.com\n"})
	require.Len(t, list, 2)
	assert.Equal(t, "b.yaml", list[0].Pos.File)
	assert.Equal(t, 4, list[0].Pos.Line)
	assert.Regexp(t, `^policy "p" is already defined at .*a\.yaml:4:9$`, list[0].Msg)
	// Files are read in name order: c.yaml defines "dev" first.
	assert.Equal(t, "inventory.yaml", list[1].Pos.File)
	assert.Regexp(t, `^registry "dev" is already defined at .*c\.yaml:4:9$`, list[1].Msg)
}

func TestLoadReportsEveryError(t *testing.T) {
	list := loadErrors(t, map[string]string{
		"inventory.yaml": inventoryYAML,
		"a.yaml":         policyDoc("  priority: x\n  match: image.nope\n  actions:\n    - type: replicate\n      to: [nowhere]\n"),
		"b.yaml":         "kind: [\n",
	})
	var msgs []string
	for _, e := range list {
		msgs = append(msgs, e.Pos.File+": "+e.Msg)
	}
	assert.Len(t, list, 4, strings.Join(msgs, "\n"))
	// Sorted by file, then position.
	assert.Equal(t, "a.yaml", list[0].Pos.File)
	assert.Equal(t, "b.yaml", list[3].Pos.File)
}

func TestLoadSkipsTestFilesAndFindsNoFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "p_test.yaml"), []byte("not: a policy"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "README.md"), []byte("# hi"), 0o644))
	_, err := Load([]string{dir})
	assert.ErrorContains(t, err, "no policy files")
	_, err = Load([]string{filepath.Join(dir, "missing.yaml")})
	assert.ErrorContains(t, err, "missing.yaml: stat: no such file or directory")
}

func TestParseIsStrictAboutLabelsAndAliases(t *testing.T) {
	src := `apiVersion: celpolicy.dev/v1
kind: Registry
metadata:
  name: r
  labels:
    env: &e production
    other: *e
spec:
  host: r.example.com
`
	b, err := Parse("r.yaml", []byte(src))
	require.NoError(t, err)
	require.Len(t, b.Registries, 1)
	assert.Equal(t, map[string]string{"env": "production", "other": "production"}, b.Registries[0].Labels)

	_, err = Parse("r.yaml", []byte(strings.Replace(src, "other: *e", "other: [x]", 1)))
	assert.ErrorContains(t, err, "r.yaml:7:12: metadata.labels.other: expected a string, got a list")
	_, err = Parse("r.yaml", []byte(strings.Replace(src, "host: r.example.com", "host: https://r.example.com/v2", 1)))
	assert.ErrorContains(t, err, "r.yaml:9:9: spec.host: invalid host")
}
