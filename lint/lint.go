package lint

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"github.com/celpolicy/celpolicy/engine"
)

// Severity says whether a finding fails `celpolicy lint`.
type Severity string

const (
	// SeverityError findings are almost certainly bugs: lint exits 1.
	SeverityError Severity = "error"
	// SeverityWarning findings deserve a look: lint exits 0 unless
	// --strict.
	SeverityWarning Severity = "warning"
)

// Rule identifiers.
const (
	RuleNeverMatches      = "never-matches"
	RuleAlwaysMatches     = "always-matches"
	RuleUnreachable       = "unreachable"
	RuleConflictingAction = "conflicting-actions"
	RuleUnguardedMapKey   = "unguarded-map-key"
	RuleInvalidPattern    = "invalid-pattern"
	RuleWhereSelectsNone  = "where-selects-nothing"
)

// Rule describes one check.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
}

var rules = []Rule{
	{RuleNeverMatches, SeverityError, "a policy's condition is false for every image after constant folding"},
	{RuleAlwaysMatches, SeverityWarning, "a policy's condition is true for every image, and it is not a fallback"},
	{RuleUnreachable, SeverityError, "a policy is never evaluated: a higher-priority policy that always matches shadows it (first-match), or it is a fallback and an enforce policy always matches"},
	{RuleConflictingAction, SeverityWarning, "two enforce policies of equal priority may match the same image and one replicates where the other blocks"},
	{RuleUnguardedMapKey, SeverityWarning, "a map key is read without has() or in guarding it; a missing key is an evaluation error"},
	{RuleInvalidPattern, SeverityError, "a regular expression, glob pattern or semver constraint built from literals does not compile"},
	{RuleWhereSelectsNone, SeverityWarning, "an action's where selector is false for every registry of the inventory"},
}

// Rules returns every rule lint applies.
func Rules() []Rule { return slices.Clone(rules) }

func severity(rule string) Severity {
	for _, r := range rules {
		if r.ID == rule {
			return r.Severity
		}
	}
	return SeverityWarning
}

// Finding is one problem lint found.
type Finding struct {
	Pos      engine.Position `json:"position"`
	Rule     string          `json:"rule"`
	Severity Severity        `json:"severity"`
	Policy   string          `json:"policy,omitempty"`
	Message  string          `json:"message"`
}

// String renders the finding as file:line:col: rule-id: message.
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s", f.Pos, f.Rule, f.Message)
}

// Lint checks every policy of set and returns the findings in file
// order. The combining algorithm of set decides what is unreachable.
func Lint(set *engine.PolicySet) []Finding {
	l := &linter{set: set}
	l.analyse()
	l.constants()
	for _, pa := range l.policies {
		l.mapKeys(pa)
		l.patterns(pa)
		l.wheres(pa)
	}
	l.conflicts()
	slices.SortStableFunc(l.findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column), cmp.Compare(a.Rule, b.Rule))
	})
	return l.findings
}

type linter struct {
	set      *engine.PolicySet
	policies []*policyInfo
	findings []Finding
}

// policyInfo is what the rules need to know about one policy.
type policyInfo struct {
	*engine.Policy
	exprs []engine.CompiledExpr
	// vars maps a variable's qualified name to its expression.
	vars map[string]engine.CompiledExpr
	// constant is the folded value of the policy's condition: "true",
	// "false" or "" when it depends on the image.
	constant string
	// targets[i] are the targets action i may speak about.
	targets [][]string
}

func (l *linter) report(pos engine.Position, policy, rule, format string, args ...any) {
	l.findings = append(l.findings, Finding{Pos: pos, Rule: rule, Severity: severity(rule), Policy: policy,
		Message: fmt.Sprintf(format, args...)})
}

func (l *linter) analyse() {
	for _, p := range l.set.Policies() {
		pa := &policyInfo{Policy: p, exprs: l.set.Expressions(p.Name), vars: map[string]engine.CompiledExpr{}}
		for _, x := range pa.exprs {
			if strings.HasPrefix(x.Field, "spec.variables") {
				pa.vars["variables."+x.Name] = x
			}
		}
		pa.targets = l.actionTargets(pa)
		l.policies = append(l.policies, pa)
	}
}

// condition returns the policy's image-scope expressions that decide
// whether it matches.
func (pa *policyInfo) condition() []engine.CompiledExpr {
	var out []engine.CompiledExpr
	for _, x := range pa.exprs {
		switch x.Name {
		case "match", "all", "any", "none":
			if x.Action < 0 {
				out = append(out, x)
			}
		}
	}
	return out
}

// conditionPos is where a policy-level finding points: its match, or
// its first condition, or its name.
func (pa *policyInfo) conditionPos() engine.Position {
	if c := pa.condition(); len(c) > 0 {
		return c[0].Expr.Pos
	}
	return pa.Pos
}

// checked returns the native checked AST of a compiled expression.
func checked(x engine.CompiledExpr) *ast.AST { return x.Program.AST().NativeRep() }

// env returns the CEL environment x was compiled in.
func env(x engine.CompiledExpr) *cel.Env { return x.Program.CELEnv() }
