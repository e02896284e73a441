package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/spf13/cobra"
)

func newListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list PATH...",
		Short: "List the policies in evaluation order: priority, mode, actions, schedule and where each is defined",
		Long: `list loads policy files and directories like validate and prints one line per
policy, in the order they are evaluated (highest priority first, ties by name):
its name, priority, mode (enforce or audit, and fallback), action types, cron
schedule and file:line. -o json prints the same as a list of objects.

Exit code 0 when the policies load, 1 otherwise.`,
		Example: `  celpolicy list examples/policies
  celpolicy list -o json policies/ | jq '.[] | select(.schedule != "")'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("-o must be text or json, not %q", output)}
			}
			return runList(args, output, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// listedPolicy is one line of `celpolicy list`.
type listedPolicy struct {
	Name          string               `json:"name"`
	Description   string               `json:"description,omitempty"`
	Priority      int                  `json:"priority"`
	Mode          engine.Mode          `json:"mode"`
	Fallback      bool                 `json:"fallback"`
	FailurePolicy engine.FailurePolicy `json:"failurePolicy"`
	Actions       []string             `json:"actions"`
	Schedule      string               `json:"schedule,omitempty"`
	Position      engine.Position      `json:"position"`
}

func runList(paths []string, output string, w io.Writer) error {
	set, err := engine.Load(paths)
	if err != nil {
		return loadError(err)
	}
	var list []listedPolicy
	for _, p := range set.Policies() {
		lp := listedPolicy{Name: p.Name, Description: p.Description, Priority: p.Priority, Mode: p.Mode,
			Fallback: p.Fallback, FailurePolicy: p.Failure, Actions: []string{}, Position: p.Pos}
		for _, a := range p.Actions {
			if !slices.Contains(lp.Actions, a.Type.Value) {
				lp.Actions = append(lp.Actions, a.Type.Value)
			}
		}
		if p.Schedule != nil {
			lp.Schedule = p.Schedule.Value
		}
		list = append(list, lp)
	}
	if output == "json" {
		if list == nil {
			list = []listedPolicy{}
		}
		if err := writeJSON(w, list); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPRIORITY\tMODE\tACTIONS\tSCHEDULE\tFILE:LINE")
	for _, p := range list {
		mode := string(p.Mode)
		if p.Fallback {
			mode += ", fallback"
		}
		schedule := p.Schedule
		if schedule == "" {
			schedule = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s:%d\n", p.Name, p.Priority, mode, strings.Join(p.Actions, ", "),
			schedule, p.Position.File, p.Position.Line)
	}
	if err := tw.Flush(); err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	return nil
}
