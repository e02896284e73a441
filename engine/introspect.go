package engine

import (
	"fmt"

	"github.com/celpolicy/celpolicy/conditions"
)

// CompiledExpr is one compiled expression of a policy, for tools that
// inspect programs rather than evaluate policies: lint and test coverage.
type CompiledExpr struct {
	// Field is the document path, e.g. "spec.match",
	// "spec.conditions.all[1].expression", "spec.actions[0].where".
	Field string
	// Name is how the trace names the expression: a variable's name,
	// "match", "all", "any" or "none", or "spec.actions[0].where".
	Name string
	// Index is the position among expressions of the same Name (the
	// second "all" condition has Index 1).
	Index int
	// Action is the index of the action for where, repository, tag and
	// reason; -1 otherwise.
	Action  int
	Expr    *Expr
	Program *conditions.Program
}

// Expressions returns every compiled expression of the named policy in
// evaluation order: variables, match or conditions (all, any, none), then
// each action's where, repository, tag and reason. It returns nil for an
// unknown policy.
func (s *PolicySet) Expressions(policy string) []CompiledExpr {
	var cp *compiledPolicy
	for _, p := range s.policies {
		if p.Name == policy {
			cp = p
		}
	}
	if cp == nil {
		return nil
	}
	var out []CompiledExpr
	for i, v := range cp.vars {
		out = append(out, CompiledExpr{Field: fmt.Sprintf("spec.variables[%d].expression", i), Name: v.name,
			Action: -1, Expr: &cp.Variables[i].Expression, Program: v.prg})
	}
	if cp.match != nil {
		out = append(out, CompiledExpr{Field: "spec.match", Name: "match", Action: -1, Expr: cp.Match, Program: cp.match})
	}
	if c := cp.Conditions; c != nil {
		for _, group := range []struct {
			name string
			src  []Condition
			prgs []compiledCondition
		}{{"all", c.All, cp.all}, {"any", c.Any, cp.anyOf}, {"none", c.None, cp.none}} {
			for i, cc := range group.prgs {
				out = append(out, CompiledExpr{Field: fmt.Sprintf("spec.conditions.%s[%d].expression", group.name, i),
					Name: group.name, Index: i, Action: -1, Expr: &group.src[i].Expression, Program: cc.prg})
			}
		}
	}
	for i, a := range cp.actions {
		for _, f := range []struct {
			name string
			x    *Expr
			prg  *conditions.Program
		}{{"where", a.Where, a.where}, {"repository", a.Repository, a.repository}, {"tag", a.Tag, a.tag}, {"reason", a.Reason, a.reason}} {
			if f.prg == nil {
				continue
			}
			field := fmt.Sprintf("spec.actions[%d].%s", i, f.name)
			out = append(out, CompiledExpr{Field: field, Name: field, Action: i, Expr: f.x, Program: f.prg})
		}
	}
	return out
}
