package policytest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/celpolicy/celpolicy/engine"
)

type options struct {
	filter   *regexp.Regexp
	coverage bool
	clock    func() time.Time
}

// Option configures Run.
type Option func(*options) error

// WithFilter runs only the cases whose name matches re. Default: all.
func WithFilter(re *regexp.Regexp) Option {
	return func(o *options) error {
		if re == nil {
			return errors.New("filter must not be nil")
		}
		o.filter = re
		return nil
	}
}

// WithCoverage traces every evaluation and fills Report.Coverage.
// Default: off, since tracing is much slower.
func WithCoverage() Option {
	return func(o *options) error { o.coverage = true; return nil }
}

// WithClock sets `now` for cases and files that do not fix it, and
// measures durations. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = now
		return nil
	}
}

// Suite is a set of policies and the test files that test them: a
// directory with everything below it, or one file.
type Suite struct {
	// Policies are passed to engine.Load.
	Policies []string
	Tests    []string
}

// ErrNoTests is returned when the paths hold no test file.
var ErrNoTests = errors.New("no policy test files (*_test.yaml) found")

// Discover finds the suites of paths. A directory is one suite: its
// policies and the test files below it. A test file is tested against
// the policies of its directory; a policy file is tested by its sibling
// <name>_test.yaml.
func Discover(paths ...string) ([]Suite, error) {
	var suites []Suite
	byPolicies := map[string]int{}
	add := func(policies string, tests ...string) {
		i, ok := byPolicies[policies]
		if !ok {
			i = len(suites)
			byPolicies[policies] = i
			suites = append(suites, Suite{Policies: []string{policies}})
		}
		for _, t := range tests {
			if !slices.Contains(suites[i].Tests, t) {
				suites[i].Tests = append(suites[i].Tests, t)
			}
		}
	}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case info.IsDir():
			var tests []string
			err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if !d.IsDir() && IsTestFile(path) {
					tests = append(tests, path)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			add(p, tests...)
		case IsTestFile(p):
			add(filepath.Dir(p), p)
		default:
			ext := filepath.Ext(p)
			test := strings.TrimSuffix(p, ext) + "_test" + ext
			if _, err := os.Stat(test); err == nil {
				add(p, test)
			} else {
				add(p)
			}
		}
	}
	n := 0
	for i := range suites {
		slices.Sort(suites[i].Tests)
		n += len(suites[i].Tests)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoTests, strings.Join(paths, ", "))
	}
	return suites, nil
}

// Run discovers the suites of paths, loads their policies and runs every
// case. Failing cases, broken test files and policies that do not load
// are part of the Report; the error is for paths that hold no tests, a
// bad option or a cancelled ctx.
func Run(ctx context.Context, paths []string, opts ...Option) (*Report, error) {
	o := options{clock: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	suites, err := Discover(paths...)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	if o.coverage {
		rep.Coverage = &Coverage{}
	}
	for _, s := range suites {
		sr, err := runSuite(ctx, s, &o, rep.Coverage)
		if err != nil {
			return nil, err
		}
		rep.Suites = append(rep.Suites, sr)
		for _, f := range sr.Files {
			if len(f.Errors) > 0 {
				rep.Failed++
			}
			for _, c := range f.Cases {
				if c.Passed {
					rep.Passed++
				} else {
					rep.Failed++
				}
			}
		}
	}
	if rep.Coverage != nil {
		rep.Coverage.total()
	}
	return rep, nil
}

func runSuite(ctx context.Context, s Suite, o *options, cov *Coverage) (*SuiteResult, error) {
	sr := &SuiteResult{Policies: s.Policies}
	sets := map[engine.Combining]*engine.PolicySet{}
	var loadErr error
	load := func(c engine.Combining) (*engine.PolicySet, error) {
		if set, ok := sets[c]; ok || loadErr != nil {
			return set, loadErr
		}
		set, err := engine.Load(s.Policies, engine.WithCombining(c), engine.WithClock(o.clock))
		if err != nil {
			loadErr = err
			sr.LoadErrors = errorStrings(err)
			return nil, err
		}
		sets[c] = set
		return set, nil
	}
	var suiteCov *suiteCoverage
	if cov != nil {
		// Coverage is measured over the default set; the policies and
		// their expressions are the same whatever the combining.
		if set, err := load(engine.Priority); err == nil {
			suiteCov = newSuiteCoverage(set)
		}
	}
	for _, path := range s.Tests {
		fr := &FileResult{Path: path, Cases: []*CaseResult{}}
		sr.Files = append(sr.Files, fr)
		f, err := ParseFile(path)
		if err != nil {
			fr.Errors = errorStrings(err)
			continue
		}
		combining := engine.Priority
		if f.Combining != "" {
			combining = engine.Combining(f.Combining)
		}
		for _, c := range f.Cases {
			if o.filter != nil && !o.filter.MatchString(c.Name) {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			start := o.clock()
			cr := &CaseResult{Name: c.Name, File: path, Line: c.Pos.Line}
			set, err := load(combining)
			if err != nil {
				cr.Error = "policies did not load (see above)"
			} else {
				runCase(ctx, set, c, o, cr, suiteCov)
			}
			cr.Passed = cr.Error == "" && len(cr.Diffs) == 0
			cr.Duration = o.clock().Sub(start)
			fr.Cases = append(fr.Cases, cr)
		}
	}
	if suiteCov != nil {
		cov.Policies = append(cov.Policies, suiteCov.result()...)
	}
	return sr, nil
}

func runCase(ctx context.Context, set *engine.PolicySet, c *Case, o *options, cr *CaseResult, cov *suiteCoverage) {
	var opts []engine.EvalOption
	now := o.clock()
	if c.Now != nil {
		now = *c.Now
	}
	opts = append(opts, engine.At(now))
	if c.Target != "" {
		opts = append(opts, engine.ForTarget(c.Target))
	}
	if cov != nil {
		opts = append(opts, engine.WithTrace())
	}
	dec, err := set.Evaluate(ctx, c.Image, opts...)
	if err != nil {
		cr.Error = err.Error()
		return
	}
	cr.Diffs = compare(set, c, dec)
	if cov != nil {
		cov.record(dec.Trace)
	}
}

func errorStrings(err error) []string {
	var list engine.ErrorList
	if errors.As(err, &list) {
		out := make([]string, len(list))
		for i, e := range list {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}
