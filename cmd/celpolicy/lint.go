package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/lint"
	"github.com/spf13/cobra"
)

type lintFlags struct {
	output    string
	strict    bool
	combining string
}

func newLintCmd() *cobra.Command {
	var f lintFlags
	cmd := &cobra.Command{
		Use:   "lint PATH...",
		Short: "Find policies that are valid but likely wrong: constant, shadowed, contradictory, unguarded",
		Long: `lint loads the policies like validate and then looks for mistakes that compile:
conditions that are constant after folding, policies that are never evaluated,
equal-priority policies that replicate and block the same images, map keys read
without has() or in, patterns built from literals that do not compile, and
where selectors that select no registry of the inventory. Each finding is
printed as

  file:line:col: rule-id: message

The rules and their severities are in docs/lint.md. Exit code 1 when a
finding is an error (or, with --strict, a warning) or the policies are
invalid; 0 otherwise.`,
		Example: `  celpolicy lint examples/policies
  celpolicy lint --strict --combining first-match policies/
  celpolicy lint -o json policies/ > findings.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLint(args, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&f.strict, "strict", false, "exit 1 on warnings too")
	fl.StringVar(&f.combining, "combining", string(engine.Priority), "combining algorithm the policies run with: priority, deny-overrides or first-match")
	return cmd
}

func runLint(paths []string, f lintFlags, w io.Writer) error {
	if f.output != "text" && f.output != "json" {
		return &exitError{code: exitUsage, err: fmt.Errorf("-o must be text or json, not %q", f.output)}
	}
	combining, err := engine.ParseCombining(f.combining)
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("--combining: %v", err)}
	}
	set, err := engine.Load(paths, engine.WithCombining(combining))
	if err != nil {
		return loadError(err)
	}
	findings := lint.Lint(set)
	errs, warns := 0, 0
	for _, fd := range findings {
		if fd.Severity == lint.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	if f.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if findings == nil {
			findings = []lint.Finding{}
		}
		err = enc.Encode(map[string]any{"findings": findings, "errors": errs, "warnings": warns})
	} else {
		for _, fd := range findings {
			fmt.Fprintln(w, fd)
		}
		_, err = fmt.Fprintf(w, "%d errors, %d warnings in %d policies\n", errs, warns, len(set.Policies()))
	}
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	if errs > 0 || (f.strict && warns > 0) {
		return &exitError{code: exitFailure}
	}
	return nil
}
