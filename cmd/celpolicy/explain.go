package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/spf13/cobra"
)

type explainFlags struct {
	policies  []string
	imageFile string
	target    string
	now       string
	output    string
	combining string
}

func newExplainCmd() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain --policies PATH --image-file FILE|-",
		Short: "Show why each policy did or did not match an image: conditions and the values of their parts",
		Long: `explain evaluates the policies against one image, like eval, and prints the
trace as a tree: each policy in evaluation order (✓ matched, ✗ not matched,
- skipped, ! failed), under it each variable, condition and action selector
with its result, and under those the value of every sub-expression.

An evaluation error such as a missing map key is shown where it happened,
with a hint at the optional form (image.labels.?key.orValue("")).

-o json prints the decision with its trace, as eval -o json --explain does.`,
		Example: `  celpolicy explain --policies examples/policies --image-file examples/images/tenant.json
  celpolicy explain -p examples/policies -i examples/images/dev-tag.json --target eu-prod --now 2026-11-27T12:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExplain(cmd.Context(), f, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&f.policies, "policies", "p", nil, "policy file or directory (repeatable, or comma-separated)")
	fl.StringVarP(&f.imageFile, "image-file", "i", "", "image JSON file, or - for standard input")
	fl.StringVarP(&f.target, "target", "t", "", "explain the decision for this inventory registry only")
	fl.StringVar(&f.now, "now", "", "evaluation time, RFC 3339 (default: the current time)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.StringVar(&f.combining, "combining", string(engine.Priority), "combining algorithm: priority, deny-overrides or first-match")
	_ = cmd.MarkFlagRequired("policies")
	_ = cmd.MarkFlagRequired("image-file")
	return cmd
}

func runExplain(ctx context.Context, f explainFlags, stdin io.Reader, w io.Writer) error {
	_, dec, err := decide(ctx, evalFlags{policies: f.policies, imageFile: f.imageFile, target: f.target,
		now: f.now, output: f.output, combining: f.combining, explain: true}, stdin)
	if err != nil {
		return err
	}
	if f.output == "json" {
		if err := writeJSON(w, dec); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		return nil
	}
	writeExplanation(w, dec, f.target)
	return nil
}

// writeExplanation prints the decision in brief and the trace tree.
func writeExplanation(w io.Writer, d *engine.Decision, target string) {
	fmt.Fprintf(w, "image:    %s\n", d.Image.Reference)
	var matched []string
	for _, m := range d.Matched {
		matched = append(matched, m.Policy)
	}
	if len(matched) == 0 {
		matched = []string{"no policy"}
	}
	fmt.Fprintf(w, "matched:  %s\n", strings.Join(matched, ", "))
	if target != "" {
		verdict := "no policy spoke about this target"
		switch v := d.Targets[target]; {
		case v == nil:
		case v.Verdict == engine.VerdictBlocked:
			verdict = fmt.Sprintf("blocked by %s: %s", v.Policy, v.Reason)
		default:
			verdict = fmt.Sprintf("%s by %s → %s", v.Verdict, v.Policy, v.Destination)
		}
		fmt.Fprintf(w, "target:   %s: %s\n", target, verdict)
	}
	fmt.Fprintln(w, "\nwhy:")
	writeTrace(w, d.Trace)
	for _, h := range traceHints(d.Trace) {
		fmt.Fprintln(w, "\nhint:", h)
	}
}

// traceHints explains evaluation errors a policy author meets most: a
// map key that is not there.
func traceHints(trace []engine.PolicyTrace) []string {
	var hints []string
	for _, p := range trace {
		for _, group := range [][]engine.ExprTrace{p.Variables, p.Conditions, p.Actions} {
			for _, e := range group {
				if !strings.Contains(e.Error, "no such key") {
					continue
				}
				hints = append(hints, fmt.Sprintf("policy %s: %s reads a map key the image or target does not have (%s). "+
					"Read optional keys with has(m.key) && ..., m.?key.orValue(\"\"), or m[?\"key.with.dots\"].orValue(\"\"); "+
					"celpolicy lint reports such reads (rule unguarded-map-key).", p.Policy, e.Name, e.Error))
			}
		}
	}
	return hints
}
