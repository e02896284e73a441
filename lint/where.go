package lint

import (
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
)

// actionTargets returns, per action, the targets it may speak about:
// those its `to` names (all without `to`) for which its where selector
// is not false. The selector is evaluated with the target known and the
// image, now and variables unknown, so that a selector that depends on
// the image counts as selecting.
func (l *linter) actionTargets(pa *policyInfo) [][]string {
	out := make([][]string, len(pa.Actions))
	wheres := map[int]engine.CompiledExpr{}
	for _, x := range pa.exprs {
		if x.Action >= 0 && strings.HasSuffix(x.Field, ".where") {
			wheres[x.Action] = x
		}
	}
	for i, a := range pa.Actions {
		if a.Type.Value != engine.ActionReplicate && a.Type.Value != engine.ActionBlock {
			continue
		}
		for _, t := range l.set.Targets() {
			if len(a.To) > 0 && !slices.ContainsFunc(a.To, func(x engine.Text) bool { return x.Value == t.Name }) {
				continue
			}
			if w, ok := wheres[i]; ok && selects(w, t) == "false" {
				continue
			}
			out[i] = append(out[i], t.Name)
		}
	}
	return out
}

// selects evaluates a where selector for one target: "true", "false", or
// "" when the result depends on the image or fails.
func selects(x engine.CompiledExpr, t conditions.Target) string {
	e := env(x)
	prg, err := e.Program(x.Program.AST(), cel.EvalOptions(cel.OptPartialEval))
	if err != nil {
		return ""
	}
	act, err := e.PartialVars(map[string]any{"target": &t})
	if err != nil {
		return ""
	}
	val, _, err := prg.Eval(act)
	if err != nil {
		return ""
	}
	if b, ok := val.(types.Bool); ok {
		return fmt.Sprint(bool(b))
	}
	return ""
}

// wheres reports selectors that select no registry of the inventory.
func (l *linter) wheres(pa *policyInfo) {
	for _, x := range pa.exprs {
		if x.Action < 0 || !strings.HasSuffix(x.Field, ".where") {
			continue
		}
		a := pa.Actions[x.Action]
		if len(pa.targets[x.Action]) > 0 || (a.Type.Value != engine.ActionReplicate && a.Type.Value != engine.ActionBlock) {
			continue
		}
		scope := "any registry of the inventory"
		if len(a.To) > 0 {
			names := make([]string, len(a.To))
			for i, t := range a.To {
				names[i] = t.Value
			}
			scope = "any of the registries in to (" + strings.Join(names, ", ") + ")"
		}
		if len(l.set.Targets()) == 0 {
			scope = "any registry: the inventory is empty (no Registry documents are loaded)"
		}
		l.report(x.Expr.Pos, pa.Name, RuleWhereSelectsNone,
			"%s of policy %q does not select %s, so the %s action never applies; check the label names and values against the Registry documents",
			x.Field, pa.Name, scope, a.Type.Value)
	}
}
