package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/celpolicy/celpolicy/engine"
)

// writeDecision prints a decision for people: a table of targets, then
// actions, conflicts, errors and, when traced, the explanation tree.
func writeDecision(w io.Writer, set *engine.PolicySet, d *engine.Decision, only string) error {
	allowed := "yes"
	if !d.Allowed {
		allowed = "no: blocked at every target"
		if only != "" {
			allowed = "no: blocked at " + only
		}
	}
	fmt.Fprintf(w, "image:    %s\n", d.Image.Reference)
	fmt.Fprintf(w, "allowed:  %s\n", allowed)
	if len(d.Matched) == 0 {
		fmt.Fprintln(w, "matched:  no policy")
	}
	for i, m := range d.Matched {
		label := "matched:  "
		if i > 0 {
			label = "          "
		}
		extra := ""
		if m.Mode == engine.ModeAudit {
			extra = ", audit only"
		}
		if m.Fallback {
			extra += ", fallback"
		}
		fmt.Fprintf(w, "%s%s (priority %d%s)\n", label, m.Policy, m.Priority, extra)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tVERDICT\tPOLICY\tDESTINATION / REASON")
	for _, t := range set.Targets() {
		if only != "" && t.Name != only {
			continue
		}
		v := d.Targets[t.Name]
		if v == nil {
			fmt.Fprintf(tw, "%s\t-\t-\tno policy spoke about this target\n", t.Name)
			continue
		}
		detail := v.Destination
		if v.Verdict == engine.VerdictBlocked {
			detail = v.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, v.Verdict, v.Policy, detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Actions) > 0 {
		fmt.Fprintln(w, "\nactions:")
		for _, a := range d.Actions {
			switch a.Type {
			case engine.ActionNotify:
				fmt.Fprintf(w, "  notify  %s  (policy %s)\n", a.Webhook, a.Policy)
			case engine.ActionDelete:
				fmt.Fprintf(w, "  delete  %s %s  (policy %s)\n", a.Scope, a.Reference, a.Policy)
			}
		}
	}
	if len(d.Audit) > 0 {
		fmt.Fprintln(w, "\naudit (reported, not applied):")
		for _, a := range d.Audit {
			detail := a.Destination + a.Reason
			fmt.Fprintf(w, "  %s would %s %s %s\n", a.Policy, a.Type, a.Target, detail)
		}
	}
	if len(d.Conflicts) > 0 {
		fmt.Fprintln(w, "\nconflicts:")
		for _, c := range d.Conflicts {
			fmt.Fprintf(w, "  %s: %s by %s over %s by %s (%s)\n", c.Target, c.Verdict, c.Policy, c.OtherVerdict, c.Other, c.Rule)
		}
	}
	if len(d.Errors) > 0 {
		fmt.Fprintln(w, "\nerrors:")
		for _, e := range d.Errors {
			at := e.Field
			if e.Target != "" {
				at += " for " + e.Target
			}
			fmt.Fprintf(w, "  %s %s: %s (%s)\n", e.Policy, at, e.Message, e.Effect)
		}
	}
	if len(d.Trace) > 0 {
		fmt.Fprintln(w, "\ntrace:")
		writeTrace(w, d.Trace)
	}
	return nil
}

// writeTrace prints the explanation as a tree: policy, then each
// variable, condition and action selector, then its sub-expressions.
func writeTrace(w io.Writer, trace []engine.PolicyTrace) {
	for _, p := range trace {
		mark, state := "✗", "not matched"
		switch {
		case p.Skipped != "":
			mark, state = "-", "skipped: "+p.Skipped
		case p.Error != "":
			mark, state = "!", "error: "+p.Error
		case p.Matched:
			mark, state = "✓", "matched"
		}
		mode := ""
		if p.Mode == engine.ModeAudit {
			mode = ", audit"
		}
		if p.Fallback {
			mode += ", fallback"
		}
		fmt.Fprintf(w, "  %s %s (priority %d%s): %s\n", mark, p.Policy, p.Priority, mode, state)
		for _, e := range p.Variables {
			writeExprTrace(w, "variables."+e.Name, e)
		}
		for _, e := range p.Conditions {
			writeExprTrace(w, e.Name, e)
		}
		for _, e := range p.Actions {
			name := e.Name
			if e.Target != "" {
				name += " [" + e.Target + "]"
			}
			writeExprTrace(w, name, e)
		}
	}
}

func writeExprTrace(w io.Writer, name string, e engine.ExprTrace) {
	result := "error: " + e.Error
	if e.Error == "" {
		result = renderValue(e.Result)
	}
	msg := ""
	if e.Message != "" {
		msg = "  # " + e.Message
	}
	fmt.Fprintf(w, "      %s: %s → %s%s\n", name, oneLine(e.Expression), result, msg)
	for _, v := range e.Values {
		if oneLine(v.Expression) == oneLine(e.Expression) {
			continue
		}
		fmt.Fprintf(w, "          %s = %s\n", oneLine(v.Expression), renderValue(v.Value))
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func renderValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
