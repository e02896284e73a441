package policytest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/celpolicy/celpolicy/engine"
)

// Diff is one way the actual decision differs from the expected one.
type Diff struct {
	// Path names what differs, e.g. "targets.eu-prod" or "matched".
	Path string `json:"path"`
	Want string `json:"want"`
	Got  string `json:"got"`
}

func (d Diff) String() string {
	return fmt.Sprintf("%s:\n  want: %s\n  got:  %s", d.Path, d.Want, d.Got)
}

// compare lists the differences between what c expects and dec.
func compare(set *engine.PolicySet, c *Case, dec *engine.Decision) []Diff {
	var diffs []Diff
	add := func(path, want, got string) { diffs = append(diffs, Diff{Path: path, Want: want, Got: got}) }
	e := c.Expect
	var matched []string
	for _, m := range dec.Matched {
		matched = append(matched, m.Policy)
	}
	if e.Matched != nil {
		want := slices.Sorted(slices.Values(*e.Matched))
		got := slices.Sorted(slices.Values(matched))
		if !slices.Equal(want, got) {
			add("matched", list(want), list(got)+setDelta(want, got))
		}
	}
	for _, p := range e.NotMatched {
		if slices.Contains(matched, p) {
			add("notMatched", "policy "+p+" does not match", "it matched")
		}
	}
	if e.Allowed != nil && *e.Allowed != dec.Allowed {
		add("allowed", fmt.Sprint(*e.Allowed), fmt.Sprint(dec.Allowed))
	}
	if e.Targets != nil {
		diffs = append(diffs, compareTargets(set, c, *e.Targets, dec)...)
	}
	if e.Actions != nil {
		diffs = append(diffs, compareActions(*e.Actions, dec.Actions)...)
	}
	diffs = append(diffs, compareErrors(e.Errors, dec.Errors)...)
	return diffs
}

func compareTargets(set *engine.PolicySet, c *Case, want map[string]*TargetExpect, dec *engine.Decision) []Diff {
	var diffs []Diff
	names, inventory := map[string]bool{}, map[string]bool{}
	for _, t := range set.Targets() {
		inventory[t.Name] = true
		if c.Target == "" || t.Name == c.Target {
			names[t.Name] = true
		}
	}
	for n := range want {
		names[n] = true
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	}) {
		path := "targets." + name
		w, got := want[name], dec.Targets[name]
		if w == nil {
			if got != nil {
				diffs = append(diffs, Diff{Path: path, Want: "no verdict (the target is not listed)", Got: verdictString(got)})
			}
			continue
		}
		if !inventory[name] {
			diffs = append(diffs, Diff{Path: path, Want: expectString(w), Got: "no such target: no Registry document has that name"})
			continue
		}
		if c.Target != "" && name != c.Target {
			diffs = append(diffs, Diff{Path: path, Want: w.Verdict, Got: "not evaluated: the case sets target " + c.Target})
			continue
		}
		if !targetMatches(w, got) {
			diffs = append(diffs, Diff{Path: path, Want: expectString(w), Got: verdictString(got)})
		}
	}
	return diffs
}

func targetMatches(w *TargetExpect, got *engine.Verdict) bool {
	if got == nil {
		return w.Verdict == VerdictNone
	}
	if w.Verdict != got.Verdict || (w.Policy != "" && w.Policy != got.Policy) ||
		(w.Destination != "" && w.Destination != got.Destination) ||
		(w.Reason != "" && w.Reason != got.Reason) {
		return false
	}
	return w.reasonRE == nil || w.reasonRE.MatchString(got.Reason)
}

func expectString(w *TargetExpect) string {
	if w.Verdict == VerdictNone {
		return "no verdict"
	}
	s := w.Verdict
	if w.Destination != "" {
		s += " → " + w.Destination
	}
	if w.Reason != "" {
		s += fmt.Sprintf(" (reason %q)", w.Reason)
	}
	if w.ReasonMatches != "" {
		s += fmt.Sprintf(" (reason matching /%s/)", w.ReasonMatches)
	}
	if w.Policy != "" {
		s += " by " + w.Policy
	}
	return s
}

func verdictString(v *engine.Verdict) string {
	if v == nil {
		return "no verdict"
	}
	s := v.Verdict
	if v.Destination != "" {
		s += " → " + v.Destination
	}
	if v.Reason != "" {
		s += fmt.Sprintf(" (reason %q)", v.Reason)
	}
	return s + " by " + v.Policy
}

func compareActions(want []ActionExpect, got []engine.PlannedAction) []Diff {
	used := make([]bool, len(got))
	var diffs []Diff
	for _, w := range want {
		found := false
		for i, a := range got {
			if used[i] || a.Type != w.Type || !optEq(w.Policy, a.Policy) || !optEq(w.Webhook, a.Webhook) ||
				!optEq(w.Reference, a.Reference) || !optEq(w.Scope, a.Scope) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			diffs = append(diffs, Diff{Path: "actions", Want: actionExpectString(w), Got: "no such action" + actionsSuffix(got)})
		}
	}
	for i, a := range got {
		if !used[i] {
			diffs = append(diffs, Diff{Path: "actions", Want: "no further action", Got: actionString(a)})
		}
	}
	return diffs
}

func optEq(want, got string) bool { return want == "" || want == got }

func actionExpectString(a ActionExpect) string {
	return actionString(engine.PlannedAction{Type: a.Type, Policy: a.Policy, Webhook: a.Webhook, Reference: a.Reference, Scope: a.Scope})
}

func actionString(a engine.PlannedAction) string {
	s := a.Type
	for _, f := range []struct{ k, v string }{{"webhook", a.Webhook}, {"scope", a.Scope}, {"reference", a.Reference}} {
		if f.v != "" {
			s += " " + f.k + "=" + f.v
		}
	}
	if a.Policy != "" {
		s += " by " + a.Policy
	}
	return s
}

func actionsSuffix(got []engine.PlannedAction) string {
	if len(got) == 0 {
		return " (no actions planned)"
	}
	parts := make([]string, len(got))
	for i, a := range got {
		parts[i] = actionString(a)
	}
	return " (planned: " + strings.Join(parts, "; ") + ")"
}

func compareErrors(want *[]ErrorExpect, got []engine.PolicyError) []Diff {
	if want == nil {
		var diffs []Diff
		for _, e := range got {
			diffs = append(diffs, Diff{Path: "errors", Want: "no evaluation error", Got: errorString(e)})
		}
		return diffs
	}
	used := make([]bool, len(got))
	var diffs []Diff
	for _, w := range *want {
		found := false
		for i, e := range got {
			if used[i] || w.Policy != e.Policy || !optEq(w.Field, e.Field) || !optEq(w.Target, e.Target) ||
				(w.messageRE != nil && !w.messageRE.MatchString(e.Message)) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			desc := "an error of policy " + w.Policy
			if w.Field != "" {
				desc += " in " + w.Field
			}
			if w.MessageMatches != "" {
				desc += fmt.Sprintf(" matching /%s/", w.MessageMatches)
			}
			diffs = append(diffs, Diff{Path: "errors", Want: desc, Got: "no such error"})
		}
	}
	for i, e := range got {
		if !used[i] {
			diffs = append(diffs, Diff{Path: "errors", Want: "no further error", Got: errorString(e)})
		}
	}
	return diffs
}

func errorString(e engine.PolicyError) string {
	at := e.Field
	if e.Target != "" {
		at += " for " + e.Target
	}
	return fmt.Sprintf("%s %s: %s (%s)", e.Policy, at, e.Message, e.Effect)
}

func list(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// setDelta says what is missing from got and what is unexpected in it.
func setDelta(want, got []string) string {
	var missing, extra []string
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "unexpected "+strings.Join(extra, ", "))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
