package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/celpolicy/celpolicy/policytest"
	"github.com/spf13/cobra"
)

type testFlags struct {
	output          string
	junit           string
	run             string
	coverage        bool
	coverageMin     float64
	conditionMin    float64
	coverageMinSet  bool
	conditionMinSet bool
}

func newTestCmd() *cobra.Command {
	var f testFlags
	cmd := &cobra.Command{
		Use:   "test PATH...",
		Short: "Run policy tests (*_test.yaml): expected decisions for given images, with coverage",
		Long: `test runs the policy test files (*_test.yaml) found in each PATH against the
policies of that PATH (the other YAML files there). A directory is tested with
every test file below it; a test file with the policies of its directory; a
policy file with its sibling <name>_test.yaml.

Each case gives an image and the decision expected for it: the matched
policies, the verdict per target with destination or reason, the notify and
delete actions. A failing case prints what differs, expected against actual.
The last line is "N passed, N failed". The format is in docs/testing.md.

--coverage reports, per policy, whether some case made it match and some case
made it not match (a policy that no case makes match is vacuously tested), and
per boolean sub-expression of its variables and conditions whether it was
seen both true and false. --coverage-min fails below a share of policies
covered; --condition-coverage-min below a share of sub-expressions.

Exit code 0 when every case passed (and coverage is above its minimum), 1
otherwise.`,
		Example: `  celpolicy test examples/policies
  celpolicy test --coverage --coverage-min 100 examples/policies
  celpolicy test --run 'tenant' --junit report.xml policies/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.coverageMinSet = cmd.Flags().Changed("coverage-min")
			f.conditionMinSet = cmd.Flags().Changed("condition-coverage-min")
			return runTest(cmd.Context(), args, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.junit, "junit", "", "also write a JUnit XML report to this file")
	fl.StringVar(&f.run, "run", "", "run only the cases whose name matches this regular expression")
	fl.BoolVar(&f.coverage, "coverage", false, "report policy and condition coverage")
	fl.Float64Var(&f.coverageMin, "coverage-min", 0, "fail when fewer than this percentage of policies are covered (implies --coverage)")
	fl.Float64Var(&f.conditionMin, "condition-coverage-min", 0, "fail when fewer than this percentage of boolean sub-expressions are covered (implies --coverage)")
	return cmd
}

func runTest(ctx context.Context, paths []string, f testFlags, w io.Writer) error {
	usage := func(format string, args ...any) error {
		return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
	}
	if f.output != "text" && f.output != "json" {
		return usage("-o must be text or json, not %q", f.output)
	}
	var opts []policytest.Option
	if f.run != "" {
		re, err := regexp.Compile(f.run)
		if err != nil {
			return usage("--run: %v", err)
		}
		opts = append(opts, policytest.WithFilter(re))
	}
	for _, m := range []struct {
		name string
		set  bool
		v    float64
	}{{"--coverage-min", f.coverageMinSet, f.coverageMin}, {"--condition-coverage-min", f.conditionMinSet, f.conditionMin}} {
		if m.set && (m.v < 0 || m.v > 100) {
			return usage("%s must be a percentage between 0 and 100, not %g", m.name, m.v)
		}
	}
	if f.coverage || f.coverageMinSet || f.conditionMinSet {
		opts = append(opts, policytest.WithCoverage())
	}
	rep, err := policytest.Run(ctx, paths, opts...)
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if f.output == "json" {
		err = rep.WriteJSON(w)
	} else {
		err = rep.WriteText(w)
	}
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if f.junit != "" {
		if err := writeJUnitFile(f.junit, rep); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
	}
	if rep.Failed > 0 {
		return &exitError{code: exitFailure}
	}
	if c := rep.Coverage; c != nil {
		if f.coverageMinSet && c.PolicyPercent < f.coverageMin {
			return &exitError{code: exitFailure, err: fmt.Errorf("policy coverage %.1f%% is below --coverage-min %g%%", c.PolicyPercent, f.coverageMin)}
		}
		if f.conditionMinSet && c.ConditionPercent < f.conditionMin {
			return &exitError{code: exitFailure, err: fmt.Errorf("condition coverage %.1f%% is below --condition-coverage-min %g%%", c.ConditionPercent, f.conditionMin)}
		}
	}
	return nil
}

func writeJUnitFile(path string, rep *policytest.Report) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	if err := rep.WriteJUnit(out); err != nil {
		out.Close()
		return fmt.Errorf("--junit: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	return nil
}
