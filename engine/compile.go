package engine

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"github.com/celpolicy/celpolicy/conditions"
)

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
	env       *conditions.Env
	// parts is what the policies read of an image: an image is within
	// the cost estimate's bounds when those parts are.
	parts *conditions.ImageParts
	// tracked holds, planned on first use, the program with cost
	// tracking of each program evaluated for an image beyond the cost
	// estimate's bounds (*conditions.Program -> func() *conditions.Program).
	tracked sync.Map
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
	// hash identifies what the policy was compiled from (policyHash).
	hash [sha256.Size]byte
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

// Compile compiles every expression of b once, policies in parallel on
// up to GOMAXPROCS cores. Problems are reported together in an
// ErrorList with file positions.
func Compile(b *Bundle, opts ...Option) (*PolicySet, error) {
	o := options{combining: Priority, clock: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.env == nil && o.prev != nil {
		o.env = o.prev.env
	}
	if o.env == nil {
		env, err := conditions.NewEnv()
		if err != nil {
			return nil, err
		}
		o.env = env
	}
	s := &PolicySet{combining: o.combining, clock: o.clock, revision: b.Revision, bundle: b,
		byName: map[string]int{}, env: o.env}
	regs := slices.Clone(b.Registries)
	slices.SortFunc(regs, func(a, b *Registry) int { return cmp.Compare(a.Name, b.Name) })
	for _, r := range regs {
		s.byName[r.Name] = len(s.targets)
		s.targets = append(s.targets, &conditions.Target{Name: r.Name, Host: r.Host, Labels: r.Labels})
	}
	var reuse map[[sha256.Size]byte]*compiledPolicy
	if o.prev != nil {
		reuse = make(map[[sha256.Size]byte]*compiledPolicy, len(o.prev.policies))
		for _, p := range o.prev.policies {
			reuse[p.hash] = p
		}
	}
	envKey := envFingerprint(o.env)
	// The shapes hold a checked expression each: they live for this
	// compile only.
	shared := &programCache{shapes: conditions.NewShapes()}
	compiled := make([]*compiledPolicy, len(b.Policies))
	perPolicy := make([]ErrorList, len(b.Policies))
	parallel(len(b.Policies), func(i int) {
		p := b.Policies[i]
		h := policyHash(p, envKey)
		if old := reuse[h]; old != nil {
			compiled[i] = s.reusePolicy(old, p)
			return
		}
		if cp := s.compilePolicy(o.env, p, &perPolicy[i], shared); cp != nil {
			cp.hash = h
			compiled[i] = cp
		}
	})
	var errs ErrorList
	for i, cp := range compiled {
		errs = append(errs, perPolicy[i]...)
		if cp != nil {
			s.policies = append(s.policies, cp)
		}
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	slices.SortFunc(s.policies, func(a, b *compiledPolicy) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.Name, b.Name))
	})
	if !o.noIndex && len(s.policies) >= minIndexed {
		// The index depends only on the policies' terms in evaluation
		// order: a reload that changed no indexed predicate keeps it, one
		// that changed a few updates a copy.
		prev := o.prev
		changed, ok := map[int][]clause(nil), false
		if prev != nil && prev.index != nil {
			changed, ok = changedTerms(prev.policies, s.policies)
		}
		switch {
		case ok && len(changed) == 0:
			s.index = prev.index
		case ok:
			s.index = prev.index.update(changed)
		default:
			terms := make([][]clause, len(s.policies))
			for i, p := range s.policies {
				terms[i] = p.terms
			}
			s.index = buildIndex(terms)
		}
	}
	reads := setReads(s.policies)
	s.parts = reads.parts()
	if o.memo > 0 {
		m, err := newMemo(o.memo, s.revision, reads)
		if err != nil {
			return nil, err
		}
		s.memo = m
	}
	// The index and the memo have read the checked expressions; planned
	// programs do not need them, and they weigh as much. Explain, lint
	// and coverage check the text again when they ask.
	for _, cp := range s.policies {
		for _, prg := range cp.programs() {
			prg.ReleaseAST()
		}
		for _, v := range cp.vars {
			v.prg.ReleaseAST()
		}
	}
	return s, nil
}

func (s *PolicySet) compilePolicy(env *conditions.Env, p *Policy, errs *ErrorList, shared *programCache) *compiledPolicy {
	before := len(*errs)
	cp := &compiledPolicy{Policy: p, varIndex: map[string]int{}, blockReason: fmt.Sprintf("blocked by policy %q", p.Name)}
	var broken []string // variables that did not compile
	compile := func(e *conditions.Env, x *Expr, field string, scope conditions.Scope, want *cel.Type) *conditions.Program {
		if x == nil {
			return nil
		}
		prg, err := shared.compile(e, x.Text, scope, want)
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
		next, err := shared.withVariable(cur, conditions.Variable{Name: v.Name.Value, Type: typ})
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
		ca.to = s.targetIndices(a.To)
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

// minIndexed is the fewest policies a set indexes: below it, looking up
// the candidates costs more than evaluating every policy (measured with
// benchmarks/ OnePolicy and Decide/standard/N=1).
const minIndexed = 4

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

// targetIndices returns the inventory indices of an action's `to`; nil
// without `to`.
func (s *PolicySet) targetIndices(to []Text) []int {
	var out []int
	for _, t := range to {
		if idx, ok := s.byName[t.Value]; ok {
			out = append(out, idx)
		}
	}
	return out
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
