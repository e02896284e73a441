package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runCLI runs the command line and returns its exit code and outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestTestCommand(t *testing.T) {
	basic := filepath.Join("..", "..", "testdata", "policytest", "basic")
	vacuous := filepath.Join("..", "..", "testdata", "policytest", "vacuous")
	examples := filepath.Join("..", "..", "examples", "policies")
	tests := []struct {
		name      string
		args      []string
		code      int
		last      string
		stderrHas string
		stdoutHas string
	}{
		{name: "examples pass with full policy coverage", args: []string{"test", "--coverage-min", "100", examples},
			code: 0, last: "26 passed, 0 failed", stdoutHas: "coverage: 8/8 policies (100.0%)"},
		{name: "a failing case", args: []string{"test", basic}, code: 1, last: "2 passed, 1 failed",
			stdoutHas: "FAIL  " + basic + "/basic_test.yaml:14: wrong expectations"},
		{name: "filtered", args: []string{"test", "--run", "regular", basic}, code: 0, last: "1 passed, 0 failed"},
		{name: "below coverage minimum", args: []string{"test", "--coverage-min", "75", vacuous}, code: 1,
			last: "2 passed, 0 failed", stderrHas: "policy coverage 50.0% is below --coverage-min 75%"},
		{name: "condition coverage minimum", args: []string{"test", "--condition-coverage-min", "80", vacuous}, code: 1,
			stderrHas: "condition coverage"},
		{name: "no tests", args: []string{"test", filepath.Join("..", "..", "examples", "images")}, code: 1,
			stderrHas: "no policy test files"},
		{name: "bad output", args: []string{"test", "-o", "xml", basic}, code: 2, stderrHas: "-o must be text or json"},
		{name: "bad regexp", args: []string{"test", "--run", "(", basic}, code: 2, stderrHas: "--run"},
		{name: "bad percentage", args: []string{"test", "--coverage-min", "120", basic}, code: 2, stderrHas: "between 0 and 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			if tc.last != "" {
				assert.Equal(t, tc.last, lastLine(stdout))
			}
			assert.Contains(t, stdout, tc.stdoutHas)
			assert.Contains(t, stderr, tc.stderrHas)
		})
	}
}

func TestTestCommandJSONAndJUnit(t *testing.T) {
	basic := filepath.Join("..", "..", "testdata", "policytest", "basic")
	junit := filepath.Join(t.TempDir(), "report.xml")
	code, stdout, _ := runCLI(t, "test", "-o", "json", "--junit", junit, basic)
	assert.Equal(t, 1, code)
	var rep struct {
		Passed, Failed int
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &rep))
	assert.Equal(t, 2, rep.Passed)
	assert.Equal(t, 1, rep.Failed)

	data, err := os.ReadFile(junit)
	require.NoError(t, err)
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	require.NoError(t, xml.Unmarshal(data, &doc))
	assert.Equal(t, 3, doc.Tests)
	assert.Equal(t, 1, doc.Failures)
}
