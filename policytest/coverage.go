package policytest

import (
	"fmt"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/parser"
	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/celast"
)

// Coverage says how thoroughly the cases exercise the policies.
type Coverage struct {
	Policies []PolicyCoverage `json:"policies"`
	// PolicyPercent is the share of policies that some case made match
	// and some case made not match.
	PolicyPercent float64 `json:"policyPercent"`
	// ConditionPercent is the share of boolean sub-expressions of
	// variables and conditions seen both true and false.
	ConditionPercent float64 `json:"conditionPercent"`
}

// PolicyCoverage is what the cases did with one policy.
type PolicyCoverage struct {
	Policy string          `json:"policy"`
	Pos    engine.Position `json:"position"`
	// Matched, NotMatched and Skipped count cases: a skipped policy (a
	// fallback after another match, first-match) is not evaluated.
	Matched    int `json:"matched"`
	NotMatched int `json:"notMatched"`
	Skipped    int `json:"skipped"`
	// Covered: some case made the policy match and some made it not match.
	Covered bool `json:"covered"`
	// Vacuous: no case made the policy match, so no case tested what it
	// does.
	Vacuous    bool                `json:"vacuous"`
	Conditions []ConditionCoverage `json:"conditions"`
}

// ConditionCoverage is one boolean sub-expression of a variable or
// condition and how often the cases saw it true and false.
type ConditionCoverage struct {
	// In names the expression: "variables.<name>", "match", "all[0]", ...
	In         string          `json:"in"`
	Expression string          `json:"expression"`
	Pos        engine.Position `json:"position"`
	True       int             `json:"true"`
	False      int             `json:"false"`
}

// Covered: seen both true and false.
func (c ConditionCoverage) Covered() bool { return c.True > 0 && c.False > 0 }

// suiteCoverage accumulates the traces of one suite's cases.
type suiteCoverage struct {
	policies []*PolicyCoverage
	byName   map[string]*PolicyCoverage
	// conds: policy -> expression key -> sub-expression text -> index
	conds map[string]map[string]map[string]int
}

func newSuiteCoverage(set *engine.PolicySet) *suiteCoverage {
	sc := &suiteCoverage{byName: map[string]*PolicyCoverage{}, conds: map[string]map[string]map[string]int{}}
	for _, p := range set.Policies() {
		pc := &PolicyCoverage{Policy: p.Name, Pos: p.Pos}
		sc.policies = append(sc.policies, pc)
		sc.byName[p.Name] = pc
		sc.conds[p.Name] = map[string]map[string]int{}
		for _, x := range set.Expressions(p.Name) {
			if x.Action >= 0 {
				continue // selectors vary by target, not by case
			}
			key := exprKey(x)
			idx := map[string]int{}
			sc.conds[p.Name][key] = idx
			for _, n := range boolNodes(x.Program.AST().NativeRep()) {
				if _, dup := idx[n.text]; dup {
					continue
				}
				idx[n.text] = len(pc.Conditions)
				pc.Conditions = append(pc.Conditions, ConditionCoverage{In: key, Expression: n.text, Pos: x.Expr.PositionAt(n.offset)})
			}
		}
	}
	return sc
}

func exprKey(x engine.CompiledExpr) string {
	switch x.Name {
	case "match":
		return "match"
	case "all", "any", "none":
		return fmt.Sprintf("%s[%d]", x.Name, x.Index)
	}
	return "variables." + x.Name
}

// record adds one traced decision.
func (sc *suiteCoverage) record(trace []engine.PolicyTrace) {
	for _, t := range trace {
		pc := sc.byName[t.Policy]
		if pc == nil {
			continue
		}
		switch {
		case t.Skipped != "":
			pc.Skipped++
		case t.Error != "":
			// An error is neither outcome: the case tested the failure.
		case t.Matched:
			pc.Matched++
		default:
			pc.NotMatched++
		}
		seen := map[string]int{}
		for _, e := range t.Variables {
			sc.values(pc, "variables."+e.Name, e)
		}
		for _, e := range t.Conditions {
			key := e.Name
			if e.Name != "match" {
				key = fmt.Sprintf("%s[%d]", e.Name, seen[e.Name])
				seen[e.Name]++
			}
			sc.values(pc, key, e)
		}
	}
}

func (sc *suiteCoverage) values(pc *PolicyCoverage, key string, e engine.ExprTrace) {
	idx := sc.conds[pc.Policy][key]
	if idx == nil {
		return
	}
	for _, v := range e.Values {
		b, ok := v.Value.(bool)
		i, known := idx[v.Expression]
		if !ok || !known {
			continue
		}
		if b {
			pc.Conditions[i].True++
		} else {
			pc.Conditions[i].False++
		}
	}
}

func (sc *suiteCoverage) result() []PolicyCoverage {
	out := make([]PolicyCoverage, len(sc.policies))
	for i, pc := range sc.policies {
		pc.Covered = pc.Matched > 0 && pc.NotMatched > 0
		pc.Vacuous = pc.Matched == 0
		out[i] = *pc
	}
	return out
}

func (c *Coverage) total() {
	var covered, conds, condsCovered int
	for _, p := range c.Policies {
		if p.Covered {
			covered++
		}
		for _, x := range p.Conditions {
			conds++
			if x.Covered() {
				condsCovered++
			}
		}
	}
	c.PolicyPercent = percent(covered, len(c.Policies))
	c.ConditionPercent = percent(condsCovered, conds)
}

func percent(n, of int) float64 {
	if of == 0 {
		return 100
	}
	return 100 * float64(n) / float64(of)
}

type boolNode struct {
	text   string
	offset int
}

// boolNodes lists the sub-expressions of a checked AST that the engine's
// trace reports (see conditions.Program.Trace) and whose type is bool, in
// source order, as the trace renders them.
func boolNodes(a *ast.AST) []boolNode {
	info := a.SourceInfo()
	var out []boolNode
	add := func(e ast.NavigableExpr) {
		if a.GetType(e.ID()).Kind() != types.BoolKind {
			return
		}
		text, err := parser.Unparse(e, info)
		if err != nil {
			return
		}
		out = append(out, boolNode{text: text, offset: celast.Start(info, e)})
	}
	var walk func(e ast.NavigableExpr)
	walk = func(e ast.NavigableExpr) {
		switch e.Kind() {
		case ast.LiteralKind:
			return
		case ast.IdentKind:
			if n := e.AsIdent(); n == "image" || n == "target" {
				return
			}
		case ast.ComprehensionKind:
			add(e)
			if r, ok := e.AsComprehension().IterRange().(ast.NavigableExpr); ok {
				walk(r)
			}
			return
		}
		if e.Kind() != ast.ListKind && e.Kind() != ast.MapKind {
			add(e)
		}
		for _, c := range e.Children() {
			walk(c)
		}
	}
	walk(ast.NavigateAST(a))
	return out
}
