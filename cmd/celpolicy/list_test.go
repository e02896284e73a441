package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListCommand(t *testing.T) {
	examples := filepath.Join("..", "..", "examples", "policies")
	code, stdout, stderr := runCLI(t, "list", examples)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	require.Len(t, lines, 9)
	assert.Equal(t, []string{"NAME", "PRIORITY", "MODE", "ACTIONS", "SCHEDULE", "FILE:LINE"}, strings.Fields(lines[0]))
	assert.Equal(t, []string{"tenant-isolation", "1000", "enforce", "replicate,", "block", "-",
		filepath.Join(examples, "f-tenant-isolation.yaml") + ":6"}, strings.Fields(lines[1]))
	assert.Contains(t, lines[7], "0 3 * * *")
	assert.Contains(t, lines[8], "enforce, fallback")

	code, stdout, _ = runCLI(t, "list", "-o", "json", examples)
	require.Equal(t, 0, code)
	var list []struct {
		Name     string   `json:"name"`
		Priority int      `json:"priority"`
		Fallback bool     `json:"fallback"`
		Actions  []string `json:"actions"`
		Schedule string   `json:"schedule"`
		Position struct {
			File string `json:"file"`
			Line int    `json:"line"`
		} `json:"position"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &list))
	require.Len(t, list, 8)
	assert.Equal(t, "require-scan-for-production", list[1].Name)
	assert.Equal(t, []string{"block", "notify"}, list[1].Actions)
	assert.Equal(t, "0 3 * * *", list[6].Schedule)
	assert.True(t, list[7].Fallback)
	assert.Equal(t, 6, list[0].Position.Line)

	code, _, stderr = runCLI(t, "list", filepath.Join("..", "..", "testdata", "lint", "always-matches-bad.yaml"))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "invalid policies")
}

func TestExplainCommand(t *testing.T) {
	examples := filepath.Join("..", "..", "examples", "policies")
	images := filepath.Join("..", "..", "examples", "images")
	explainDir := filepath.Join("..", "..", "testdata", "policytest", "explain")
	tests := []struct {
		name string
		args []string
		code int
		has  []string
	}{
		{name: "tree with sub-expression values",
			args: []string{"explain", "-p", examples, "-i", filepath.Join(images, "tenant.json"), "--target", "tenant-globex", "--now", "2026-11-27T12:00:00Z"},
			has: []string{
				"matched:  tenant-isolation, require-scan-for-production\n",
				"target:   tenant-globex: blocked by tenant-isolation: image of tenant acme may not enter the registry of tenant globex\n",
				"  ✓ tenant-isolation (priority 1000): matched\n      match: has(image.labels.tenant) → true\n",
				"          target.labels.?tenant.orValue(\"\") = \"globex\"\n",
				"  ✗ stale-scan-blocks-production (priority 900): not matched\n",
				"  - unclassified-to-sandbox (priority 0, fallback): skipped: fallback: policy \"tenant-isolation\" matched\n",
			}},
		{name: "missing key hint",
			args: []string{"explain", "-p", explainDir, "-i", filepath.Join(images, "compliance.json")},
			has: []string{
				"  ! team-web (priority 5): error: spec.match: no such key: team\n",
				"hint: policy team-web: match reads a map key the image or target does not have (no such key: team).",
			}},
		{name: "unknown target", args: []string{"explain", "-p", examples, "-i", filepath.Join(images, "tenant.json"), "--target", "nowhere"}, code: 2},
		{name: "bad now", args: []string{"explain", "-p", examples, "-i", filepath.Join(images, "tenant.json"), "--now", "today"}, code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, h := range tc.has {
				assert.Contains(t, stdout, h)
			}
		})
	}
}

func TestExplainCommandJSON(t *testing.T) {
	code, stdout, _ := runCLI(t, "explain", "-o", "json", "-p", filepath.Join("..", "..", "examples", "policies"),
		"-i", filepath.Join("..", "..", "examples", "images", "compliance.json"), "--now", "2026-11-27T12:00:00Z")
	require.Equal(t, 0, code)
	var dec struct {
		Trace []struct {
			Policy     string `json:"policy"`
			Matched    bool   `json:"matched"`
			Conditions []struct {
				Name   string `json:"name"`
				Result any    `json:"result"`
			} `json:"conditions"`
		} `json:"trace"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &dec))
	require.NotEmpty(t, dec.Trace)
	assert.Equal(t, "tenant-isolation", dec.Trace[0].Policy)
	assert.Equal(t, "match", dec.Trace[0].Conditions[0].Name)
	assert.Equal(t, false, dec.Trace[0].Conditions[0].Result)
}
