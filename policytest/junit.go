package policytest

import (
	"encoding/xml"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// The JUnit XML schema as Jenkins, GitLab and GitHub test reporters read
// it: a testsuite per test file, a testcase per case.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure"`
	Error     *junitProblem `xml:"error"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML. A case whose decision
// differs is a failure; a case that could not run and a test file that
// does not decode are errors.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "celpolicy test"}
	var total time.Duration
	for _, s := range r.Suites {
		for _, f := range s.Files {
			js := junitSuite{Name: f.Path}
			class := strings.TrimSuffix(filepath.Base(f.Path), filepath.Ext(f.Path))
			var suiteTime time.Duration
			if len(f.Errors) > 0 {
				js.Cases = append(js.Cases, junitCase{Name: "decode " + filepath.Base(f.Path), Classname: class, File: f.Path, Time: seconds(0),
					Error: &junitProblem{Message: "invalid test file", Type: "decode", Text: strings.Join(f.Errors, "\n")}})
				js.Errors++
			}
			for _, c := range f.Cases {
				jc := junitCase{Name: c.Name, Classname: class, File: c.File, Line: c.Line, Time: seconds(c.Duration)}
				suiteTime += c.Duration
				switch {
				case c.Error != "":
					jc.Error = &junitProblem{Message: c.Error, Type: "error", Text: c.Error}
					js.Errors++
				case !c.Passed:
					var b strings.Builder
					for _, d := range c.Diffs {
						fmt.Fprintf(&b, "%s\n  want: %s\n  got:  %s\n", d.Path, d.Want, d.Got)
					}
					jc.Failure = &junitProblem{Message: fmt.Sprintf("%d differences between expected and actual decision", len(c.Diffs)),
						Type: "mismatch", Text: b.String()}
					js.Failures++
				}
				js.Cases = append(js.Cases, jc)
			}
			if len(js.Cases) == 0 {
				continue // every case filtered out
			}
			js.Tests = len(js.Cases)
			js.Time = seconds(suiteTime)
			total += suiteTime
			out.Tests += js.Tests
			out.Failures += js.Failures
			out.Errors += js.Errors
			out.Suites = append(out.Suites, js)
		}
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
