package policytest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the outcome of a test run.
type Report struct {
	Suites []*SuiteResult `json:"suites"`
	// Passed and Failed count cases; a test file that does not decode
	// counts as one failure.
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	// Coverage is filled by WithCoverage.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// SuiteResult is one set of policies and its test files.
type SuiteResult struct {
	Policies []string `json:"policies"`
	// LoadErrors are the problems of policies that did not load; every
	// case of the suite then fails.
	LoadErrors []string      `json:"loadErrors,omitempty"`
	Files      []*FileResult `json:"files"`
}

// FileResult is one test file.
type FileResult struct {
	Path string `json:"path"`
	// Errors are the problems of a file that did not decode, as
	// file:line:col: field: message.
	Errors []string      `json:"errors,omitempty"`
	Cases  []*CaseResult `json:"cases"`
}

// CaseResult is one case.
type CaseResult struct {
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Passed   bool          `json:"passed"`
	Duration time.Duration `json:"durationNs"`
	// Diffs are the differences between expected and actual decision.
	Diffs []Diff `json:"diffs,omitempty"`
	// Error is why the case could not run (an unknown target, policies
	// that did not load).
	Error string `json:"error,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people: a line per case, the
// differences of failing ones, coverage when measured, and the closing
// line "N passed, N failed".
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	for _, s := range r.Suites {
		for _, e := range s.LoadErrors {
			ew.printf("%s\n", e)
		}
		for _, f := range s.Files {
			for _, e := range f.Errors {
				ew.printf("%s\n", e)
			}
			if len(f.Errors) > 0 {
				ew.printf("FAIL  %s: the test file is invalid\n", f.Path)
			}
			for _, c := range f.Cases {
				if c.Passed {
					ew.printf("PASS  %s:%d: %s\n", c.File, c.Line, c.Name)
					continue
				}
				ew.printf("FAIL  %s:%d: %s\n", c.File, c.Line, c.Name)
				if c.Error != "" {
					ew.printf("      error: %s\n", c.Error)
				}
				for _, d := range c.Diffs {
					ew.printf("      %s\n        want: %s\n        got:  %s\n", d.Path, d.Want, d.Got)
				}
			}
		}
	}
	if r.Coverage != nil {
		r.Coverage.writeText(ew)
	}
	ew.printf("%d passed, %d failed\n", r.Passed, r.Failed)
	return ew.err
}

func (c *Coverage) writeText(ew *errWriter) {
	covered, conds, condsCovered := 0, 0, 0
	for _, p := range c.Policies {
		if p.Covered {
			covered++
		}
		for _, x := range p.Conditions {
			conds++
			if x.Covered() {
				condsCovered++
			}
		}
	}
	ew.printf("\ncoverage: %d/%d policies (%.1f%%) matched and not matched; %d/%d conditions (%.1f%%) seen true and false\n",
		covered, len(c.Policies), c.PolicyPercent, condsCovered, conds, c.ConditionPercent)
	for _, p := range c.Policies {
		mark, note := "✓", ""
		switch {
		case p.Vacuous:
			mark, note = "✗", "  VACUOUS: no case makes it match"
		case !p.Covered:
			mark, note = "✗", "  no case makes it not match"
		}
		ew.printf("  %s %s (%s): matched %d, not matched %d", mark, p.Policy, p.Pos, p.Matched, p.NotMatched)
		if p.Skipped > 0 {
			ew.printf(", skipped %d", p.Skipped)
		}
		ew.printf("%s\n", note)
		for _, x := range p.Conditions {
			m := "✓"
			if !x.Covered() {
				m = "✗"
			}
			ew.printf("      %s %s: %s  true %d, false %d\n", m, x.In, oneLine(x.Expression), x.True, x.False)
		}
	}
	ew.printf("\n")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
