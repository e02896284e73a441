package engine

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/celpolicy/celpolicy/conditions"
)

// Combining says how the verdicts of several matched policies about one
// target combine.
type Combining string

const (
	// Priority (the default): the highest-priority policy that speaks
	// about a target wins; between policies of equal priority, block wins.
	Priority Combining = "priority"
	// DenyOverrides: any block wins.
	DenyOverrides Combining = "deny-overrides"
	// FirstMatch: only the highest-priority matched policy applies.
	FirstMatch Combining = "first-match"
)

// ParseCombining accepts the names used in flags and configuration.
func ParseCombining(s string) (Combining, error) {
	switch c := Combining(s); c {
	case Priority, DenyOverrides, FirstMatch:
		return c, nil
	}
	return "", fmt.Errorf("unknown combining algorithm %q (want priority, deny-overrides or first-match)", s)
}

type options struct {
	combining Combining
	clock     func() time.Time
	env       *conditions.Env
	noIndex   bool
	memo      int
}

// Option configures how a PolicySet is compiled and evaluates.
type Option func(*options) error

// WithCombining sets the combining algorithm. Default: Priority.
func WithCombining(c Combining) Option {
	return func(o *options) error {
		if _, err := ParseCombining(string(c)); err != nil {
			return err
		}
		o.combining = c
		return nil
	}
}

// WithClock sets where `now` comes from when an evaluation does not fix
// it with At. Default: time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clock must not be nil")
		}
		o.clock = now
		return nil
	}
}

// WithEnv sets the CEL environment, e.g. one with other cost limits.
// Default: conditions.NewEnv().
func WithEnv(env *conditions.Env) Option {
	return func(o *options) error {
		if env == nil {
			return errors.New("environment must not be nil")
		}
		o.env = env
		return nil
	}
}

// WithoutIndex evaluates every policy for every image, as a plain loop
// in priority order. Decisions are the same; the index only makes them
// faster. It exists to measure the index and to check it. Default: the
// index narrows the policies evaluated.
func WithoutIndex() Option {
	return func(o *options) error {
		o.noIndex = true
		return nil
	}
}

// PolicySet is a compiled, immutable set of policies and the target
// inventory. It is safe for concurrent use; a reload builds a new one.
type PolicySet struct {
	policies  []*compiledPolicy // priority order: highest first, ties by name
	targets   []*conditions.Target
	byName    map[string]int // target name -> index in targets
	combining Combining
	clock     func() time.Time
	revision  string
	bundle    *Bundle
	index     *policyIndex // nil: evaluate every policy
	evals     sync.Pool    // of *evaluation
	memo      *memo        // nil: no memo (see WithMemo)
}

type compiledPolicy struct {
	*Policy
	vars       []compiledVar
	varIndex   map[string]int
	match      *conditions.Program
	all        []compiledCondition
	anyOf      []compiledCondition
	none       []compiledCondition
	actions    []compiledAction
	hasTargets bool // some action speaks about targets
	// blockReason is the reason of a block without one.
	blockReason string
	// reads is what its expressions read of the image and the clock.
	reads *imageReads
	// terms are the policy's index clauses (see policyClauses); nil when
	// it must always be evaluated.
	terms []clause
}

type compiledVar struct {
	name string
	prg  *conditions.Program
}

type compiledCondition struct {
	message string
	prg     *conditions.Program
}

type compiledAction struct {
	Action
	where, repository, tag, reason *conditions.Program
	// to restricts the targets (indices into PolicySet.targets); nil: all.
	to []int
	// path is "spec.actions[i]"; field holds the paths of its
	// expressions, computed once for errors and traces.
	path  string
	field struct{ where, repository, tag, reason string }
}

// Load parses policy files and directories and compiles them. The error
// is an ErrorList with every problem of every file, decoding and CEL
// alike; on error no PolicySet is returned.
func Load(paths []string, opts ...Option) (*PolicySet, error) {
	b, perr := ParseFiles(paths...)
	set, cerr := Compile(b, opts...)
	var errs ErrorList
	for _, err := range []error{perr, cerr} {
		var l ErrorList
		if errors.As(err, &l) {
			errs = append(errs, l...)
		} else if err != nil {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return set, nil
}

// Compile compiles every expression of b once. Problems are reported
// together in an ErrorList with file positions.
func Compile(b *Bundle, opts ...Option) (*PolicySet, error) {
	o := options{combining: Priority, clock: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.env == nil {
		env, err := conditions.NewEnv()
		if err != nil {
			return nil, err
		}
		o.env = env
	}
	s := &PolicySet{combining: o.combining, clock: o.clock, revision: b.Revision, bundle: b,
		byName: map[string]int{}}
	regs := slices.Clone(b.Registries)
	slices.SortFunc(regs, func(a, b *Registry) int { return cmp.Compare(a.Name, b.Name) })
	for _, r := range regs {
		s.byName[r.Name] = len(s.targets)
		s.targets = append(s.targets, &conditions.Target{Name: r.Name, Host: r.Host, Labels: r.Labels})
	}
	var errs ErrorList
	for _, p := range b.Policies {
		if cp := s.compilePolicy(o.env, p, &errs); cp != nil {
			s.policies = append(s.policies, cp)
		}
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	slices.SortFunc(s.policies, func(a, b *compiledPolicy) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.Name, b.Name))
	})
	if !o.noIndex {
		terms := make([][]clause, len(s.policies))
		for i, p := range s.policies {
			terms[i] = p.terms
		}
		s.index = buildIndex(terms)
	}
	if o.memo > 0 {
		m, err := newMemo(o.memo, s.revision, s.policies)
		if err != nil {
			return nil, err
		}
		s.memo = m
	}
	return s, nil
}

func (s *PolicySet) compilePolicy(env *conditions.Env, p *Policy, errs *ErrorList) *compiledPolicy {
	before := len(*errs)
	cp := &compiledPolicy{Policy: p, varIndex: map[string]int{}, blockReason: fmt.Sprintf("blocked by policy %q", p.Name)}
	var broken []string // variables that did not compile
	compile := func(e *conditions.Env, x *Expr, field string, scope conditions.Scope, want *cel.Type) *conditions.Program {
		if x == nil {
			return nil
		}
		prg, err := e.Compile(x.Text, scope, want)
		if err != nil && usesAny(x.Text, broken) {
			// The broken variable is reported; errors that follow from
			// its unknown type would only hide it.
			return nil
		}
		if err != nil {
			var ce *conditions.CompileError
			if !errors.As(err, &ce) {
				errs.add(x.Pos, field, "%v", err)
				return nil
			}
			for _, is := range ce.Issues {
				*errs = append(*errs, &Error{Pos: x.PositionAt(is.Offset), Name: p.Name, Field: field, Msg: is.Message})
			}
		}
		return prg
	}
	cur := env
	for i, v := range p.Variables {
		field := fmt.Sprintf("spec.variables[%d].expression", i)
		prg := compile(cur, &v.Expression, field, conditions.ImageScope, nil)
		typ := cel.DynType
		if prg != nil {
			typ = prg.OutputType()
		} else {
			broken = append(broken, v.Name.Value)
		}
		next, err := cur.WithVariables(conditions.Variable{Name: v.Name.Value, Type: typ})
		if err != nil {
			errs.add(v.Name.Pos, fmt.Sprintf("spec.variables[%d].name", i), "%v", err)
			continue
		}
		cur = next
		cp.varIndex[v.Name.Value] = len(cp.vars)
		cp.vars = append(cp.vars, compiledVar{name: v.Name.Value, prg: prg})
	}
	cp.match = compile(cur, p.Match, "spec.match", conditions.ImageScope, cel.BoolType)
	if c := p.Conditions; c != nil {
		conds := func(list []Condition, kind string) []compiledCondition {
			out := make([]compiledCondition, len(list))
			for i, cond := range list {
				out[i] = compiledCondition{message: cond.Message,
					prg: compile(cur, &cond.Expression, fmt.Sprintf("spec.conditions.%s[%d].expression", kind, i), conditions.ImageScope, cel.BoolType)}
			}
			return out
		}
		cp.all, cp.anyOf, cp.none = conds(c.All, "all"), conds(c.Any, "any"), conds(c.None, "none")
	}
	for i, a := range p.Actions {
		path := fmt.Sprintf("spec.actions[%d]", i)
		ca := compiledAction{Action: a,
			where:      compile(cur, a.Where, path+".where", conditions.TargetScope, cel.BoolType),
			repository: compile(cur, a.Repository, path+".repository", conditions.TargetScope, cel.StringType),
			tag:        compile(cur, a.Tag, path+".tag", conditions.TargetScope, cel.StringType),
			reason:     compile(cur, a.Reason, path+".reason", conditions.TargetScope, cel.StringType),
		}
		ca.path = path
		ca.field.where, ca.field.repository, ca.field.tag, ca.field.reason = path+".where", path+".repository", path+".tag", path+".reason"
		if len(a.To) > 0 {
			for _, t := range a.To {
				if idx, ok := s.byName[t.Value]; ok {
					ca.to = append(ca.to, idx)
				}
			}
		}
		if a.Type.Value == ActionReplicate || a.Type.Value == ActionBlock {
			cp.hasTargets = true
		}
		cp.actions = append(cp.actions, ca)
	}
	if len(*errs) > before {
		return nil
	}
	cp.reads = policyReads(cp)
	if indexable(cp, env.RuntimeCostLimit()) {
		cp.terms = policyClauses(cp)
	}
	return cp
}

// indexable reports whether the index may leave the policy out: only
// when none of its image expressions can reach the runtime cost limit on
// an image within the estimate's bounds (see Image.WithinCostBounds),
// with a margin for what the estimate cannot see.
func indexable(cp *compiledPolicy, runtimeLimit uint64) bool {
	limit := runtimeLimit / 2
	for _, v := range cp.vars {
		if v.prg.CostEstimate() > limit {
			return false
		}
	}
	if cp.match != nil && cp.match.CostEstimate() > limit {
		return false
	}
	for _, cs := range [][]compiledCondition{cp.all, cp.anyOf, cp.none} {
		for _, c := range cs {
			if c.prg.CostEstimate() > limit {
				return false
			}
		}
	}
	return true
}

// Revision identifies the content the set was compiled from.
func (s *PolicySet) Revision() string { return s.revision }

// Combining returns the set's combining algorithm.
func (s *PolicySet) Combining() Combining { return s.combining }

// Policies returns the policies in evaluation order.
func (s *PolicySet) Policies() []*Policy {
	out := make([]*Policy, len(s.policies))
	for i, p := range s.policies {
		out[i] = p.Policy
	}
	return out
}

// Targets returns the inventory, sorted by name.
func (s *PolicySet) Targets() []conditions.Target {
	out := make([]conditions.Target, len(s.targets))
	for i, t := range s.targets {
		out[i] = *t
	}
	return out
}

// Bundle returns what the set was compiled from.
func (s *PolicySet) Bundle() *Bundle { return s.bundle }

// usesAny reports whether expr mentions variables.<name> for any name.
func usesAny(expr string, names []string) bool {
	for _, n := range names {
		ref := conditions.VariablePrefix + n
		for i := strings.Index(expr, ref); i >= 0; {
			end := i + len(ref)
			if end == len(expr) || !isIdentByte(expr[end]) {
				return true
			}
			next := strings.Index(expr[end:], ref)
			if next < 0 {
				break
			}
			i = end + next
		}
	}
	return false
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
