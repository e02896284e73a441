package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

const (
	examplePolicies = "../../examples/policies"
	exampleImages   = "../../examples/images"
	exampleNow      = "2026-11-27T12:00:00Z"
	goldenDir       = "../../testdata/golden"
)

// cli runs the command line and returns its exit code and outputs.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./cmd/celpolicy -update to create it")
	assert.Equal(t, string(want), got, "golden file %s differs; rerun with -update if the change is intended", path)
}

// The example stories, each an image fixture and what must happen to it.
var stories = []struct {
	image string
	want  map[string]string // target -> verdict
}{
	{"compliance", map[string]string{"eu-prod": "replicate", "eu-dr": "replicate"}},
	{"unscanned", map[string]string{"eu-prod": "blocked", "eu-dr": "blocked", "us-prod": "blocked"}},
	{"stale-scan", map[string]string{"eu-prod": "blocked", "eu-dr": "blocked", "us-prod": "blocked"}},
	{"prod-tag", map[string]string{"eu-prod": "replicate", "eu-dr": "replicate", "us-prod": "replicate"}},
	{"dev-tag", map[string]string{"dev": "replicate", "eu-prod": "blocked", "eu-dr": "blocked", "us-prod": "blocked"}},
	{"unclassified", map[string]string{"sandbox": "replicate"}},
	{"tenant", map[string]string{"tenant-acme": "replicate", "tenant-globex": "blocked", "eu-prod": "blocked", "eu-dr": "blocked", "us-prod": "blocked"}},
	{"old-sandbox", map[string]string{"eu-prod": "blocked", "eu-dr": "blocked", "us-prod": "blocked"}},
}

func TestEvalExamples(t *testing.T) {
	for _, s := range stories {
		t.Run(s.image, func(t *testing.T) {
			img := filepath.Join(exampleImages, s.image+".json")
			code, out, errOut := cli(t, "", "eval", "-p", examplePolicies, "-i", img, "--now", exampleNow, "-o", "json")
			require.Equal(t, 0, code, errOut)
			var d engine.Decision
			require.NoError(t, json.Unmarshal([]byte(out), &d))
			got := map[string]string{}
			for name, v := range d.Targets {
				got[name] = v.Verdict
			}
			assert.Equal(t, s.want, got)
			assert.Empty(t, d.Errors)
			golden(t, "eval/"+s.image+".json", out)

			code, out, errOut = cli(t, "", "eval", "-p", examplePolicies, "-i", img, "--now", exampleNow)
			require.Equal(t, 0, code, errOut)
			golden(t, "eval/"+s.image+".txt", out)
		})
	}
}

func TestEvalStoryDetails(t *testing.T) {
	decide := func(t *testing.T, image string, extra ...string) engine.Decision {
		args := append([]string{"eval", "-p", examplePolicies, "-i", filepath.Join(exampleImages, image+".json"), "--now", exampleNow, "-o", "json"}, extra...)
		code, out, errOut := cli(t, "", args...)
		require.Equal(t, 0, code, errOut)
		var d engine.Decision
		require.NoError(t, json.Unmarshal([]byte(out), &d))
		return d
	}
	t.Run("unscanned notifies security", func(t *testing.T) {
		d := decide(t, "unscanned")
		require.Len(t, d.Actions, 1)
		assert.Equal(t, "notify", d.Actions[0].Type)
		assert.Equal(t, "no scan.status label on acme/checkout:prod-2026.11", d.Targets["eu-prod"].Reason)
		assert.Len(t, d.Conflicts, 3, "prod-tags-to-production is overridden at each production registry")
	})
	t.Run("stale scan says how old", func(t *testing.T) {
		assert.Equal(t, "scan of acme/checkout is 26 days old; re-scan it", decide(t, "stale-scan").Targets["us-prod"].Reason)
	})
	t.Run("fallback renames into the sandbox", func(t *testing.T) {
		d := decide(t, "unclassified")
		assert.Equal(t, "sandbox.example.com/unclassified/library/nginx:1.25", d.Targets["sandbox"].Destination)
		assert.True(t, d.Matched[0].Fallback)
	})
	t.Run("old sandbox image is deleted", func(t *testing.T) {
		d := decide(t, "old-sandbox")
		assert.Contains(t, d.Actions, engine.PlannedAction{Type: "delete", Policy: "sandbox-retention",
			Reference: "sandbox.example.com/experiments/scraper:0.0.3", Scope: "tag"})
	})
	t.Run("a recent sandbox image is kept", func(t *testing.T) {
		d := decide(t, "old-sandbox", "--now", "2026-08-01T00:00:00Z")
		for _, a := range d.Actions {
			assert.NotEqual(t, "delete", a.Type)
		}
	})
	t.Run("tenant target only", func(t *testing.T) {
		d := decide(t, "tenant", "--target", "tenant-globex")
		assert.False(t, d.Allowed)
		assert.Len(t, d.Targets, 1)
	})
	t.Run("explain fills the trace", func(t *testing.T) {
		d := decide(t, "compliance", "--explain")
		assert.NotEmpty(t, d.Trace)
	})
}

func TestEvalErrors(t *testing.T) {
	img := filepath.Join(exampleImages, "compliance.json")
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
	}{
		{"missing flags", "", []string{"eval"}, 2, `required flag(s) "policies" not set`},
		{"missing image", "", []string{"eval", "-p", examplePolicies}, 2, `at least one of the flags in the group [image-file image] is required`},
		{"unknown flag", "", []string{"eval", "--policy", "x"}, 2, "unknown flag: --policy"},
		{"bad output", "", []string{"eval", "-p", examplePolicies, "-i", img, "-o", "yaml"}, 2, `-o must be text or json, not "yaml"`},
		{"bad now", "", []string{"eval", "-p", examplePolicies, "-i", img, "--now", "yesterday"}, 2, "want RFC 3339"},
		{"bad combining", "", []string{"eval", "-p", examplePolicies, "-i", img, "--combining", "max"}, 2, "unknown combining algorithm"},
		{"unknown target", "", []string{"eval", "-p", examplePolicies, "-i", img, "--target", "mars"}, 2, `unknown target "mars"`},
		{"missing image file", "", []string{"eval", "-p", examplePolicies, "-i", "nope.json"}, 1, "read image: open nope.json"},
		{"bad image json", "{\n  \"reference\": \"a/b:1\",\n  \"size\": \"big\"\n}", []string{"eval", "-p", examplePolicies, "-i", "-"}, 1, `<stdin>:3:11: field "size": expected int64, got JSON string`},
		{"unknown image field", "{\"reference\": \"a/b:1\", \"tags\": []}", []string{"eval", "-p", examplePolicies, "-i", "-"}, 1, `unknown field "tags"`},
		{"bad reference", `{"reference": "Not A Ref"}`, []string{"eval", "-p", examplePolicies, "-i", "-"}, 1, `parse image reference "Not A Ref"`},
		{"broken policies", "", []string{"eval", "-p", "testdata/broken.yaml", "-i", img}, 1, "testdata/broken.yaml:7:15: spec.match: undefined field 'tga'"},
		{"blocked with --fail-blocked", "", []string{"eval", "-p", examplePolicies, "-i", filepath.Join(exampleImages, "tenant.json"), "-t", "tenant-globex", "--fail-blocked"}, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := cli(t, tc.stdin, tc.args...)
			assert.Equal(t, tc.code, code, errOut)
			assert.Contains(t, errOut, tc.stderr)
		})
	}
}

func TestEvalFromStdin(t *testing.T) {
	code, out, errOut := cli(t, `{"reference": "docker.io/acme/x:dev-1"}`, "eval", "-p", examplePolicies, "-i", "-", "--now", exampleNow, "-t", "dev")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "replicate  dev-tags-to-development  registry.dev.example.com/acme/x:dev-1")
}

func TestValidate(t *testing.T) {
	code, out, errOut := cli(t, "", "validate", examplePolicies)
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, "8 policies and 8 registries in 8 files are valid\n", out)

	code, out, _ = cli(t, "", "validate", "testdata/broken.yaml")
	assert.Equal(t, 1, code)
	assert.Equal(t, strings.Join([]string{
		`testdata/broken.yaml:6:13: spec.priority: expected an integer, got "high"`,
		`testdata/broken.yaml:7:15: spec.match: undefined field 'tga'`,
		`testdata/broken.yaml:10:12: spec.actions[0].to[0]: unknown registry "nowhere": no Registry documents are loaded`,
		`testdata/broken.yaml:11:13: spec.schedule: invalid schedule "every day": expected exactly 5 fields, found 2: [every day] (write five cron fields, e.g. "0 */6 * * *", or @daily, @every 1h)`,
		"",
	}, "\n"), out)

	code, out, _ = cli(t, "", "validate", "-o", "json", "testdata/broken.yaml")
	assert.Equal(t, 1, code)
	var res struct {
		Valid  bool
		Errors []engine.Error
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.False(t, res.Valid)
	assert.Len(t, res.Errors, 4)
	assert.Equal(t, 7, res.Errors[1].Pos.Line)

	code, _, errOut = cli(t, "", "validate")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "requires at least 1 arg")
}

func TestHelpTeaches(t *testing.T) {
	code, out, _ := cli(t, "", "eval", "--help")
	assert.Equal(t, 0, code)
	for _, s := range []string{"Exit code", "--explain", "--now", "Examples:", "reference"} {
		assert.Contains(t, out, s)
	}
	code, out, _ = cli(t, "", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "Exit codes:")
}
