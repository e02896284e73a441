package main

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLintCommand(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "lint")
	reg := filepath.Join(dir, "registries.yaml")
	tests := []struct {
		name      string
		args      []string
		code      int
		stdoutHas string
		stderrHas string
	}{
		{name: "examples are clean", args: []string{"lint", filepath.Join("..", "..", "examples", "policies")},
			code: 0, stdoutHas: "0 errors, 0 warnings in 8 policies"},
		{name: "errors fail", args: []string{"lint", reg, filepath.Join(dir, "never-matches-bad.yaml")}, code: 1,
			stdoutHas: filepath.Join(dir, "never-matches-bad.yaml") + ":6:10: never-matches: policy \"never\" never matches"},
		{name: "warnings pass", args: []string{"lint", reg, filepath.Join(dir, "where-selects-nothing-bad.yaml")}, code: 0,
			stdoutHas: "0 errors, 2 warnings"},
		{name: "warnings fail with --strict", args: []string{"lint", "--strict", reg, filepath.Join(dir, "where-selects-nothing-bad.yaml")}, code: 1},
		{name: "combining", args: []string{"lint", "--combining", "first-match", reg, filepath.Join(dir, "unreachable-bad.yaml")}, code: 1,
			stdoutHas: "unreachable: policy \"shadowed\" is never evaluated under first-match"},
		{name: "invalid policies", args: []string{"lint", filepath.Join(dir, "always-matches-bad.yaml")}, code: 1,
			stderrHas: "invalid policies"},
		{name: "bad output", args: []string{"lint", "-o", "yaml", reg}, code: 2, stderrHas: "-o must be text or json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			assert.Contains(t, stdout, tc.stdoutHas)
			assert.Contains(t, stderr, tc.stderrHas)
		})
	}
}

func TestLintCommandJSON(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "lint")
	code, stdout, _ := runCLI(t, "lint", "-o", "json", filepath.Join(dir, "registries.yaml"), filepath.Join(dir, "invalid-pattern-bad.yaml"))
	assert.Equal(t, 1, code)
	var out struct {
		Findings []struct {
			Rule     string `json:"rule"`
			Severity string `json:"severity"`
			Position struct {
				Line, Column int
			} `json:"position"`
		} `json:"findings"`
		Errors int `json:"errors"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	assert.Equal(t, 2, out.Errors)
	require.Len(t, out.Findings, 2)
	assert.Equal(t, "invalid-pattern", out.Findings[0].Rule)
	assert.Equal(t, "error", out.Findings[0].Severity)
	assert.Equal(t, 6, out.Findings[0].Position.Line)
}
