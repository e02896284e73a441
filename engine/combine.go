package engine

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/celpolicy/celpolicy/conditions"
)

// action evaluates action i of a matched policy p: a verdict candidate
// per selected target, or a planned notify or delete.
func (ev *evaluation) action(p *compiledPolicy, i int, act *conditions.Activation, tr *PolicyTrace) {
	a := &p.actions[i]
	img := act.Image()
	switch a.Type.Value {
	case ActionNotify:
		pa := PlannedAction{Type: ActionNotify, Policy: p.Name, Webhook: a.Webhook.Value}
		ev.plan(p, pa)
		return
	case ActionDelete:
		scope := "tag"
		if a.Scope != nil {
			scope = a.Scope.Value
		}
		ev.plan(p, PlannedAction{Type: ActionDelete, Policy: p.Name, Reference: img.Reference, Scope: scope})
		return
	}
	// The activation is this evaluation's own: the target is bound in
	// place, and unbound once the action is done.
	defer act.BindTarget(nil)
	for _, t := range ev.selected(a) {
		act.BindTarget(t)
		if a.where != nil {
			ok, err := ev.evalBool(a.where, act, tr, tr0{name: a.field.where, target: t.Name, actions: true})
			if err != nil {
				ev.fail(p, a.field.where, t, err, tr)
				continue
			}
			if !ok {
				continue
			}
		}
		v := Verdict{Policy: p.Name}
		switch a.Type.Value {
		case ActionReplicate:
			repo, tag := img.Repository, img.Tag
			var err error
			if a.repository != nil {
				if repo, err = ev.evalString(a.repository, act, tr, tr0{name: a.field.repository, target: t.Name, actions: true}); err != nil {
					ev.fail(p, a.field.repository, t, err, tr)
					continue
				}
			}
			if a.tag != nil {
				if tag, err = ev.evalString(a.tag, act, tr, tr0{name: a.field.tag, target: t.Name, actions: true}); err != nil {
					ev.fail(p, a.field.tag, t, err, tr)
					continue
				}
			}
			v.Verdict = VerdictReplicate
			v.Destination = destination(t.Host, repo, tag, img.Digest)
			v.Platforms = a.Platforms
			v.Referrers = a.Referrers
		case ActionBlock:
			v.Verdict = VerdictBlocked
			v.Reason = p.blockReason
			if a.reason != nil {
				reason, err := ev.evalString(a.reason, act, tr, tr0{name: a.field.reason, target: t.Name, actions: true})
				if err != nil {
					ev.fail(p, a.field.reason, t, err, tr)
					continue
				}
				v.Reason = reason
			}
		}
		if p.Mode == ModeAudit {
			ev.dec.Audit = append(ev.dec.Audit, AuditVerdict{Policy: p.Name, Target: t.Name, Type: a.Type.Value, Verdict: v})
			continue
		}
		ev.candidates = append(ev.candidates, candidate{target: t, policy: p, verdict: v})
	}
}

func (ev *evaluation) plan(p *compiledPolicy, pa PlannedAction) {
	if p.Mode == ModeAudit {
		ev.dec.Audit = append(ev.dec.Audit, AuditVerdict{Policy: p.Name, Type: pa.Type})
		return
	}
	ev.dec.Actions = append(ev.dec.Actions, pa)
}

// selected returns the targets an action's `to` names, in inventory order
// (all of them without `to`), restricted to the target asked about.
func (ev *evaluation) selected(a *compiledAction) []*conditions.Target {
	if a.to == nil {
		return ev.targets
	}
	var out []*conditions.Target
	for _, idx := range a.to {
		t := ev.set.targets[idx]
		if ev.opts.target == "" || t.Name == ev.opts.target {
			out = append(out, t)
		}
	}
	return out
}

func destination(host, repo, tag, digest string) string {
	switch {
	case tag != "":
		return host + "/" + repo + ":" + tag
	case digest != "":
		return host + "/" + repo + "@" + digest
	}
	return host + "/" + repo
}

// combine turns the candidates into one verdict per target. Candidates
// arrive in policy order: highest priority first, ties by name.
func (ev *evaluation) combine() {
	cs := ev.candidates
	if len(cs) > 1 {
		// Group by target in order of first appearance, keeping policy
		// order within a target, without a map per decision.
		var buf [16]int
		seen := buf[:0]
		if n := len(ev.set.targets); n > len(buf) {
			seen = make([]int, 0, n)
		}
		seen = seen[:len(ev.set.targets)]
		for i := range seen {
			seen[i] = 0
		}
		rank := 0
		for _, c := range cs {
			if t := ev.set.byName[c.target.Name]; seen[t] == 0 {
				rank++
				seen[t] = rank
			}
		}
		slices.SortStableFunc(cs, func(a, b candidate) int {
			return cmp.Compare(seen[ev.set.byName[a.target.Name]], seen[ev.set.byName[b.target.Name]])
		})
	}
	for start := 0; start < len(cs); {
		end := start + 1
		for end < len(cs) && cs[end].target == cs[start].target {
			end++
		}
		ev.decide(cs[start:end])
		start = end
	}
	// A policy that failed closed blocks whatever the others said.
	for _, b := range ev.errBlocks {
		name := b.target.Name
		if prev := ev.dec.Targets[name]; prev != nil && prev.Verdict == VerdictReplicate {
			ev.dec.Conflicts = append(ev.dec.Conflicts, Conflict{Target: name,
				Policy: b.policy.Name, Verdict: VerdictBlocked, Other: prev.Policy, OtherVerdict: prev.Verdict,
				Rule: "failurePolicy fail: an evaluation error blocks the image"})
		}
		if prev := ev.dec.Targets[name]; prev == nil || prev.Verdict != VerdictBlocked || prev.Policy != b.policy.Name {
			ev.dec.Targets[name] = ev.verdict(b.verdict)
		}
	}
}

// decide records the verdict of one target from its candidates.
func (ev *evaluation) decide(cs []candidate) {
	name := cs[0].target.Name
	win := ev.winner(cs)
	v := ev.verdict(win.verdict)
	ev.dec.Targets[name] = v
	for _, c := range cs {
		if c.verdict.Verdict == v.Verdict && c.verdict.Destination == v.Destination {
			continue
		}
		ev.dec.Conflicts = append(ev.dec.Conflicts, Conflict{Target: name,
			Policy: win.policy.Name, Verdict: v.Verdict, Other: c.policy.Name, OtherVerdict: c.verdict.Verdict,
			Rule: ev.rule(win, c)})
	}
}

func (ev *evaluation) winner(cs []candidate) candidate {
	first := cs[0]
	for _, c := range cs {
		if c.verdict.Verdict != VerdictBlocked {
			continue
		}
		switch {
		case ev.set.combining == DenyOverrides,
			c.policy.Priority == first.policy.Priority:
			return c
		}
	}
	return first
}

func (ev *evaluation) rule(win, other candidate) string {
	switch {
	case win.policy == other.policy:
		return "within one policy, block wins"
	case ev.set.combining == DenyOverrides && win.verdict.Verdict == VerdictBlocked:
		return "deny-overrides: any block wins"
	case win.policy.Priority > other.policy.Priority:
		return fmt.Sprintf("priority: %d beats %d", win.policy.Priority, other.policy.Priority)
	case win.verdict.Verdict == VerdictBlocked && other.verdict.Verdict != VerdictBlocked:
		return "equal priority: block wins"
	}
	return "equal priority: first by name wins"
}

func (ev *evaluation) allowed() {
	d := ev.dec
	if ev.opts.target != "" {
		v := d.Targets[ev.opts.target]
		d.Allowed = v == nil || v.Verdict != VerdictBlocked
		return
	}
	d.Allowed = true
	if len(ev.targets) == 0 {
		return
	}
	for _, t := range ev.targets {
		if v := d.Targets[t.Name]; v == nil || v.Verdict != VerdictBlocked {
			return
		}
	}
	d.Allowed = false
}
