package engine

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	prev      *PolicySet
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
	env       *conditions.Env
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
	shared := &programCache{}
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
	if !o.noIndex {
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
	if o.memo > 0 {
		m, err := newMemo(o.memo, s.revision, s.policies)
		if err != nil {
			return nil, err
		}
		s.memo = m
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

// parallel calls fn(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// programCache shares the program of an expression text among the
// policies of one compilation: policies generated from a template repeat
// the same where, repository and reason expressions. Programs are
// immutable; errors are not cached, so each policy reports its own.
//
// It also plans programs without cost tracking where that is safe (see
// conditions.Program.Untracked); the evaluator plans their tracked twin
// for images beyond the cost estimate's bounds.
type programCache struct {
	m sync.Map // programKey -> *conditions.Program
}

type programKey struct {
	env   *conditions.Env
	scope conditions.Scope
	want  string
	text  string
}

func (c *programCache) compile(env *conditions.Env, text string, scope conditions.Scope, want *cel.Type) (*conditions.Program, error) {
	k := programKey{env: env, scope: scope, text: text}
	if want != nil {
		k.want = want.String()
	}
	if p, ok := c.m.Load(k); ok {
		return p.(*conditions.Program), nil
	}
	p, err := env.Compile(text, scope, want)
	if err != nil {
		return nil, err
	}
	if p.CostEstimate() <= env.RuntimeCostLimit()/2 {
		if u, err := p.Untracked(); err == nil {
			p = u
		}
	}
	actual, _ := c.m.LoadOrStore(k, p)
	return actual.(*conditions.Program), nil
}
