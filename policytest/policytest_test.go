package policytest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/policytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fixedClock = policytest.WithClock(func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) })

func dir(name string) string { return filepath.Join("..", "testdata", "policytest", name) }

func caseByName(t *testing.T, rep *policytest.Report, name string) *policytest.CaseResult {
	t.Helper()
	for _, s := range rep.Suites {
		for _, f := range s.Files {
			for _, c := range f.Cases {
				if c.Name == name {
					return c
				}
			}
		}
	}
	require.Failf(t, "case not found", "%q", name)
	return nil
}

func TestRunReportsFailingCaseWithDiff(t *testing.T) {
	rep, err := policytest.Run(context.Background(), []string{dir("basic")}, fixedClock)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Passed)
	assert.Equal(t, 1, rep.Failed)

	assert.True(t, caseByName(t, rep, "release goes to prod").Passed)
	assert.True(t, caseByName(t, rep, "reason by regular expression").Passed)

	bad := caseByName(t, rep, "wrong expectations")
	require.False(t, bad.Passed)
	assert.Equal(t, 14, bad.Line)
	want := []policytest.Diff{
		{Path: "matched", Want: "[release-to-prod]", Got: "[block-untrusted, release-to-prod] (unexpected block-untrusted)"},
		{Path: "allowed", Want: "true", Got: "false"},
		{Path: "targets.dev", Want: "no verdict (the target is not listed)", Got: `blocked (reason "untrusted registry quay.io") by block-untrusted`},
		{Path: "targets.prod", Want: "replicate → prod.example.com/mirror/acme/app:v1", Got: `blocked (reason "untrusted registry quay.io") by block-untrusted`},
		{Path: "actions", Want: "notify webhook=https://hooks.example.com/other", Got: "no such action (planned: notify webhook=https://hooks.example.com/untrusted by block-untrusted)"},
		{Path: "actions", Want: "no further action", Got: "notify webhook=https://hooks.example.com/untrusted by block-untrusted"},
	}
	assert.Equal(t, want, bad.Diffs)

	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	text := out.String()
	assert.Contains(t, text, "FAIL  "+dir("basic")+"/basic_test.yaml:14: wrong expectations\n")
	assert.Contains(t, text, "      targets.prod\n        want: replicate → prod.example.com/mirror/acme/app:v1\n")
	assert.True(t, strings.HasSuffix(text, "\n2 passed, 1 failed\n"), text)
}

func TestRunFilter(t *testing.T) {
	rep, err := policytest.Run(context.Background(), []string{dir("basic")}, fixedClock,
		policytest.WithFilter(regexp.MustCompile("^release")))
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Passed)
	assert.Equal(t, 0, rep.Failed)
}

func TestCoverageFlagsVacuousPolicy(t *testing.T) {
	rep, err := policytest.Run(context.Background(), []string{dir("vacuous")}, fixedClock, policytest.WithCoverage())
	require.NoError(t, err)
	require.Equal(t, 0, rep.Failed)
	require.NotNil(t, rep.Coverage)
	byName := map[string]policytest.PolicyCoverage{}
	for _, p := range rep.Coverage.Policies {
		byName[p.Policy] = p
	}
	block := byName["block-untrusted"]
	assert.True(t, block.Vacuous)
	assert.False(t, block.Covered)
	assert.Equal(t, 0, block.Matched)
	assert.Equal(t, 2, block.NotMatched)

	release := byName["release-to-prod"]
	assert.False(t, release.Vacuous)
	assert.True(t, release.Covered)
	assert.Equal(t, 50.0, rep.Coverage.PolicyPercent)

	conds := map[string][2]int{}
	for _, c := range release.Conditions {
		conds[c.Expression] = [2]int{c.True, c.False}
	}
	assert.Equal(t, map[string][2]int{
		`image.tag.startsWith("v") && image.labels.?team.orValue("") != ""`: {1, 1},
		`image.tag.startsWith("v")`:                                         {1, 1},
		`image.labels.?team.orValue("") != ""`:                              {1, 1},
	}, conds)
	for _, c := range release.Conditions {
		assert.Equal(t, 23, c.Pos.Line, c.Expression)
	}

	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "✗ block-untrusted")
	assert.Contains(t, out.String(), "VACUOUS: no case makes it match")
}

func TestJUnitParsesWithCounts(t *testing.T) {
	rep, err := policytest.Run(context.Background(), []string{dir("basic"), dir("broken")}, fixedClock)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Failed) // one case, one broken file

	var out bytes.Buffer
	require.NoError(t, rep.WriteJUnit(&out))
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Errors   int      `xml:"errors,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Errors   int    `xml:"errors,attr"`
			Cases    []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Text string `xml:",chardata"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	require.NoError(t, xml.Unmarshal(out.Bytes(), &doc))
	assert.Equal(t, 4, doc.Tests)
	assert.Equal(t, 1, doc.Failures)
	assert.Equal(t, 1, doc.Errors)
	require.Len(t, doc.Suites, 2)
	assert.Equal(t, 3, doc.Suites[0].Tests)
	assert.Equal(t, 1, doc.Suites[0].Failures)
	f := doc.Suites[0].Cases[1].Failure
	require.NotNil(t, f)
	assert.Equal(t, "6 differences between expected and actual decision", f.Message)
	assert.Contains(t, f.Text, "targets.prod\n  want: replicate")
	require.NotNil(t, doc.Suites[1].Cases[0].Error)
	assert.Contains(t, doc.Suites[1].Cases[0].Error.Text, "broken_test.yaml:6:7: cases[0].expect.matchd: unknown field")
}

func TestParseErrorsArePositioned(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown field with suggestion",
			src:  "cases:\n  - name: a\n    image: {reference: x}\n    expct: {}\n",
			want: []string{
				`t_test.yaml:2:5: cases[0].expect: missing required field "expect"`,
				`t_test.yaml:4:5: cases[0].expct: unknown field "expct" (did you mean "expect"?)`,
			},
		},
		{
			name: "wrong types",
			src:  "now: yesterday\ncases:\n  - name: a\n    image: {reference: x, size: big}\n    expect: {allowed: maybe, matched: web}\n",
			want: []string{
				`t_test.yaml:1:6: now: expected an RFC 3339 time such as 2026-11-27T12:00:00Z, got "yesterday"`,
				`t_test.yaml:4:33: cases[0].image.size: expected an integer, got "big"`,
				`t_test.yaml:5:23: cases[0].expect.allowed: expected true or false, got "maybe"`,
				`t_test.yaml:5:39: cases[0].expect.matched: expected a list, got "web"`,
			},
		},
		{
			name: "bad verdict and regular expression",
			src:  "cases:\n  - name: a\n    image: {reference: x}\n    expect:\n      targets:\n        prod: replicated\n        dev: {verdict: blocked, reasonMatches: '('}\n",
			want: []string{
				`t_test.yaml:6:15: cases[0].expect.targets.prod: unknown verdict "replicated" (want replicate, blocked or none)`,
				"t_test.yaml:7:14: cases[0].expect.targets.dev.reasonMatches: invalid regular expression: error parsing regexp: missing closing ): `(`",
			},
		},
		{
			name: "image and imageFile",
			src:  "cases:\n  - name: a\n    expect: {}\n  - name: a\n    image: {reference: x}\n    imageFile: x.json\n    expect: {}\n",
			want: []string{
				`t_test.yaml:2:5: cases[0]: missing image: give image (the fields of an image fixture) or imageFile`,
				`t_test.yaml:4:5: cases[1].name: case "a" is already defined at t_test.yaml:2:5`,
				`t_test.yaml:4:5: cases[1]: give either image or imageFile, not both`,
			},
		},
		{
			name: "invalid YAML",
			src:  "cases:\n  - name: [\n",
			want: []string{`t_test.yaml:2:1: invalid YAML: did not find expected node content`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policytest.Parse("t_test.yaml", []byte(tc.src))
			var list engine.ErrorList
			require.True(t, errors.As(err, &list), "%v", err)
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			assert.ElementsMatch(t, tc.want, got)
		})
	}
}

func TestParseInlineImage(t *testing.T) {
	f, err := policytest.Parse("t_test.yaml", []byte(`
now: 2026-11-27T12:00:00Z
cases:
  - name: full image
    now: 2026-11-28T00:00:00Z
    target: prod
    image:
      reference: nginx
      labels: {gdpr: true, n: 1}
      created: 2026-11-01T00:00:00Z
      size: 12
      platforms: [linux/amd64]
      referrers: [{artifactType: application/spdx+json, digest: "sha256:00"}]
    expect:
      targets: {prod: none}
`))
	require.NoError(t, err)
	require.Len(t, f.Cases, 1)
	c := f.Cases[0]
	assert.Equal(t, "docker.io/library/nginx:latest", c.Image.Reference)
	assert.Equal(t, map[string]string{"gdpr": "true", "n": "1"}, c.Image.Labels)
	assert.Equal(t, int64(12), c.Image.Size)
	assert.Equal(t, "application/spdx+json", c.Image.Referrers[0].ArtifactType)
	assert.Equal(t, time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC), *c.Now)
	require.NotNil(t, c.Expect.Targets)
	assert.Equal(t, policytest.VerdictNone, (*c.Expect.Targets)["prod"].Verdict)
	assert.Nil(t, c.Expect.Matched)
}

func TestRunWithoutTests(t *testing.T) {
	_, err := policytest.Run(context.Background(), []string{filepath.Join("..", "examples", "images")})
	assert.ErrorIs(t, err, policytest.ErrNoTests)
}

func TestDiscover(t *testing.T) {
	suites, err := policytest.Discover(filepath.Join(dir("basic"), "policies.yaml"), filepath.Join(dir("vacuous"), "vacuous_test.yaml"))
	require.NoError(t, err)
	require.Len(t, suites, 2)
	assert.Equal(t, []string{filepath.Join(dir("basic"), "policies.yaml")}, suites[0].Policies)
	assert.Empty(t, suites[0].Tests) // no policies_test.yaml beside it
	assert.Equal(t, []string{dir("vacuous")}, suites[1].Policies)
	assert.Equal(t, []string{filepath.Join(dir("vacuous"), "vacuous_test.yaml")}, suites[1].Tests)
}

func TestRunWithPoliciesThatDoNotLoad(t *testing.T) {
	rep, err := policytest.Run(context.Background(), []string{dir("badpolicies")}, fixedClock)
	require.NoError(t, err)
	assert.Equal(t, 0, rep.Passed)
	assert.Equal(t, 1, rep.Failed)
	require.Len(t, rep.Suites, 1)
	require.NotEmpty(t, rep.Suites[0].LoadErrors)
	assert.Contains(t, rep.Suites[0].LoadErrors[0], "policies.yaml:6:")
	assert.Equal(t, "policies did not load (see above)", caseByName(t, rep, "anything").Error)

	var out bytes.Buffer
	require.NoError(t, rep.WriteText(&out))
	assert.Contains(t, out.String(), "error: policies did not load (see above)")
	assert.True(t, strings.HasSuffix(out.String(), "\n0 passed, 1 failed\n"))
}

func TestRunUnknownTargetExpectation(t *testing.T) {
	dirOnly := t.TempDir()
	data, err := os.ReadFile(filepath.Join(dir("basic"), "policies.yaml"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dirOnly, "policies.yaml"), data, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dirOnly, "x_test.yaml"), []byte(`
cases:
  - name: typo in a target name
    image: {reference: "docker.io/acme/app:1.0"}
    expect:
      targets: {prodd: none, prod: none}
  - name: unknown target of a case
    image: {reference: "docker.io/acme/app:1.0"}
    target: nowhere
    expect: {}
`), 0o644))
	rep, err := policytest.Run(context.Background(), []string{dirOnly}, fixedClock)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Failed)
	assert.Equal(t, []policytest.Diff{{Path: "targets.prodd", Want: "no verdict", Got: "no such target: no Registry document has that name"}},
		caseByName(t, rep, "typo in a target name").Diffs)
	assert.Contains(t, caseByName(t, rep, "unknown target of a case").Error, `unknown target "nowhere"`)
}
