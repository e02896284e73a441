package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check policy files: YAML, fields, names, cron schedules and every CEL expression",
		Long: `validate reads policy files and directories (every *.yaml and *.yml below a
directory, except *_test.yaml) and compiles every expression exactly as eval and
serve would. Each problem is printed as

  file:line:col: field: message

and all problems of all files are reported together. Exit code 0 when every
file is valid, 1 otherwise.`,
		Example: `  celpolicy validate examples/policies
  celpolicy validate -o json policies/ > problems.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o must be text or json, not %q", output)}
			}
			return runValidate(args, output, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runValidate(paths []string, output string, w io.Writer) error {
	set, err := engine.Load(paths)
	var list engine.ErrorList
	if err != nil && !errors.As(err, &list) {
		return &exitError{code: exitFailure, err: err}
	}
	if output == "json" {
		if list == nil {
			list = engine.ErrorList{}
		}
		if err := writeJSON(w, map[string]any{"valid": len(list) == 0, "errors": list}); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
	} else if len(list) > 0 {
		for _, e := range list {
			fmt.Fprintln(w, e)
		}
	} else {
		fmt.Fprintf(w, "%d policies and %d registries in %d files are valid\n",
			len(set.Policies()), len(set.Targets()), len(set.Bundle().Files))
	}
	if len(list) > 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("%d problems found", len(list))}
	}
	return nil
}
