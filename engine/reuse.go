package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/celpolicy/celpolicy/conditions"
)

// WithPrevious compiles incrementally: every policy whose content is the
// same as one of prev's (its decoded fields and expression texts, under
// the same environment version and cost limits) reuses prev's compiled
// programs instead of compiling them again; the targets of its actions
// are resolved again against the new inventory. Without WithEnv the set
// uses prev's environment. Default: compile everything.
func WithPrevious(prev *PolicySet) Option {
	return func(o *options) error {
		o.prev = prev
		return nil
	}
}

// changedTerms compares two sets of policies in evaluation order: when
// they are the same policies in the same order, it returns the positions
// whose index terms changed, and true when there are few enough to
// update the previous index rather than build it again.
func changedTerms(prev, next []*compiledPolicy) (map[int][]clause, bool) {
	if len(prev) != len(next) {
		return nil, false
	}
	changed := map[int][]clause{}
	for i, p := range prev {
		n := next[i]
		if p.Name != n.Name {
			return nil, false
		}
		if !sameClauses(p.terms, n.terms) {
			if len(changed) == maxIndexUpdate {
				return nil, false
			}
			changed[i] = n.terms
		}
	}
	return changed, true
}

func sameClauses(a, b []clause) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] { // a reused policy shares its terms
		return true
	}
	return slices.EqualFunc(a, b, func(c, d clause) bool { return slices.Equal(c, d) })
}

// reusePolicy returns old's programs for p, which has the same content:
// p's own positions, and action targets in this set's inventory.
func (s *PolicySet) reusePolicy(old *compiledPolicy, p *Policy) *compiledPolicy {
	cp := *old
	cp.Policy = p
	cp.actions = slices.Clone(old.actions)
	for i := range cp.actions {
		cp.actions[i].Action = p.Actions[i]
		cp.actions[i].to = s.targetIndices(p.Actions[i].To)
	}
	if c := p.Conditions; c != nil {
		cp.all, cp.anyOf, cp.none = slices.Clone(old.all), slices.Clone(old.anyOf), slices.Clone(old.none)
		for i := range cp.all {
			cp.all[i].message = c.All[i].Message
		}
		for i := range cp.anyOf {
			cp.anyOf[i].message = c.Any[i].Message
		}
		for i := range cp.none {
			cp.none[i].message = c.None[i].Message
		}
	}
	return &cp
}

// envFingerprint is what of an environment compiled programs depend on.
func envFingerprint(env *conditions.Env) string {
	return fmt.Sprintf("%s\x00%d\x00%d", conditions.EnvironmentVersion, env.StaticCostLimit(), env.RuntimeCostLimit())
}

// policyHash identifies a policy's content: every decoded field but
// positions, with the environment it is compiled in. Inventory names in
// `to` are part of it; their indices are resolved per set.
func policyHash(p *Policy, env string) [sha256.Size]byte {
	buf := make([]byte, 0, 1024)
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	num := func(v int) { buf = binary.AppendVarint(buf, int64(v)) }
	flag := func(b bool) { buf = append(buf, boolByte(b)) }
	text := func(t *Text) {
		flag(t != nil)
		if t != nil {
			str(t.Value)
		}
	}
	expr := func(x *Expr) {
		flag(x != nil)
		if x != nil {
			str(x.Text)
		}
	}
	strs := func(ss []string) {
		num(len(ss))
		for _, s := range ss {
			str(s)
		}
	}
	str(env)
	str(p.Name)
	str(p.Description)
	num(len(p.Labels))
	if len(p.Labels) > 0 {
		for _, k := range slices.Sorted(maps.Keys(p.Labels)) {
			str(k)
			str(p.Labels[k])
		}
	}
	num(p.Priority)
	str(string(p.Mode))
	flag(p.Fallback)
	str(string(p.Failure))
	num(len(p.Variables))
	for _, v := range p.Variables {
		str(v.Name.Value)
		str(v.Expression.Text)
	}
	expr(p.Match)
	flag(p.Conditions != nil)
	if c := p.Conditions; c != nil {
		for _, list := range [][]Condition{c.All, c.Any, c.None} {
			num(len(list))
			for _, cond := range list {
				str(cond.Expression.Text)
				str(cond.Message)
			}
		}
	}
	num(len(p.Actions))
	for _, a := range p.Actions {
		str(a.Type.Value)
		expr(a.Where)
		num(len(a.To))
		for _, t := range a.To {
			str(t.Value)
		}
		expr(a.Repository)
		expr(a.Tag)
		expr(a.Reason)
		text(a.Webhook)
		strs(a.Platforms)
		flag(a.Referrers)
		text(a.Scope)
	}
	text(p.Schedule)
	num(len(p.Sources))
	for _, src := range p.Sources {
		str(src.Registry.Value)
		strs(src.Repositories)
		strs(src.Tags)
	}
	return sha256.Sum256(buf)
}
