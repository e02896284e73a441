package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"github.com/celpolicy/celpolicy/conditions"
)

type evalOptions struct {
	now    time.Time
	target string
	trace  bool
}

// EvalOption adjusts one evaluation.
type EvalOption func(*evalOptions)

// At fixes `now` for the evaluation (tests, `--now`). Default: the set's
// clock.
func At(now time.Time) EvalOption { return func(o *evalOptions) { o.now = now } }

// ForTarget restricts the decision to one target of the inventory.
func ForTarget(name string) EvalOption { return func(o *evalOptions) { o.target = name } }

// WithTrace fills Decision.Trace with the result and sub-expression
// values of every condition, variable and selector. It is much slower;
// without it tracing costs nothing.
func WithTrace() EvalOption { return func(o *evalOptions) { o.trace = true } }

// UnknownTargetError is returned when ForTarget names no registry of the
// inventory.
type UnknownTargetError struct{ Name string }

func (e *UnknownTargetError) Error() string {
	return fmt.Sprintf("unknown target %q: no Registry document has that name", e.Name)
}

// Evaluate decides what to do with img at every target. Policy errors
// are part of the Decision; the error is for a cancelled ctx or a bad
// option. img should be normalized (see conditions.Image.Normalize).
func (s *PolicySet) Evaluate(ctx context.Context, img *conditions.Image, opts ...EvalOption) (*Decision, error) {
	// Evaluations are pooled with their activation, options and scratch
	// slices: a decision then allocates little more than what it returns.
	ev, _ := s.evals.Get().(*evaluation)
	if ev == nil {
		ev = &evaluation{act: &conditions.Activation{}}
	}
	done := func() { ev.reset(); s.evals.Put(ev) }
	o := &ev.opts
	for _, opt := range opts {
		opt(o)
	}
	if err := ctx.Err(); err != nil {
		done()
		return nil, err
	}
	if o.now.IsZero() {
		o.now = s.clock()
	}
	targets := s.targets
	if o.target != "" {
		i, ok := s.byName[o.target]
		if !ok {
			err := &UnknownTargetError{Name: o.target}
			done()
			return nil, err
		}
		targets = s.targets[i : i+1]
	}
	var key *memoKey
	if s.memo != nil && !o.trace {
		var d *Decision
		if d, key = s.memo.lookup(img, o); d != nil {
			done()
			return d, nil
		}
	}
	ev.set, ev.ctx, ev.targets = s, ctx, targets
	ev.bounded = img.WithinCostBoundsFor(s.parts)
	ev.act.Rebind(img, o.now)
	// Fields are set one by one: the block is new and zero, and copying a
	// whole Decision in would cost a write barrier per word under GC.
	ev.block = &decisionBlock{}
	d := &ev.block.d
	d.Image = ImageRef{Reference: img.Reference, Digest: img.Digest}
	d.Revision = s.revision
	d.Matched, d.Targets = ev.block.matched[:0], map[string]*Verdict{}
	d.Actions, d.Conflicts, d.Errors = []PlannedAction{}, []Conflict{}, []PolicyError{}
	d.Audit, d.Trace = []AuditVerdict{}, []PolicyTrace{}
	ev.dec = d
	err := ev.run(img)
	dec := ev.dec
	done()
	if key != nil {
		// A decision cut short by a cancelled ctx may hold its errors.
		s.memo.remember(key, dec, err == nil && ctx.Err() == nil)
	}
	if err != nil {
		return nil, err
	}
	return dec, nil
}

// reset drops what an evaluation refers to before it is pooled.
//
// The scratch slices are truncated, not cleared: what their old entries
// refer to (policy names, destinations of the last decision) stays alive
// at most until the next decision overwrites it or the pool drops the
// evaluation at a GC, and clearing them cost a write barrier per word.
func (ev *evaluation) reset() {
	ev.candidates, ev.errBlocks = ev.candidates[:0], ev.errBlocks[:0]
	ev.set, ev.ctx, ev.targets, ev.dec, ev.block, ev.spoken = nil, nil, nil, nil, nil, nil
	ev.opts, ev.bounded = evalOptions{}, false
	if cap(ev.cands) > 4096 {
		ev.cands = nil
	}
}

type evaluation struct {
	set     *PolicySet
	ctx     context.Context
	opts    evalOptions
	targets []*conditions.Target
	act     *conditions.Activation
	dec     *Decision
	block   *decisionBlock

	candidates []candidate
	errBlocks  []candidate
	// cands is the index's candidates buffer, kept with the evaluation.
	cands []int32
	// spoken is the first enforce policy that matched or failed closed.
	spoken *compiledPolicy
	// bounded: the image is within the cost estimate's bounds, so
	// programs run without cost tracking.
	bounded bool
}

// decisionBlock is a Decision allocated with room for its first matched
// policies and verdicts: a typical decision then allocates once for all
// three instead of once per entry.
type decisionBlock struct {
	d        Decision
	matched  [1]MatchedPolicy
	verdicts [1]Verdict
	used     int
}

// verdict returns a stable copy of v for Decision.Targets.
func (ev *evaluation) verdict(v Verdict) *Verdict {
	b := ev.block
	if b.used < len(b.verdicts) {
		b.verdicts[b.used] = v
		b.used++
		return &b.verdicts[b.used-1]
	}
	// Not &v: taking the parameter's address would move it to the heap
	// on every call, the common one included.
	nv := new(Verdict)
	*nv = v
	return nv
}

// prog returns the program to evaluate: p itself for an image within the
// cost estimate's bounds, else its twin with cost tracking.
func (ev *evaluation) prog(p *conditions.Program) *conditions.Program {
	if ev.bounded {
		return p
	}
	f, ok := ev.set.tracked.Load(p)
	if !ok {
		f, _ = ev.set.tracked.LoadOrStore(p, sync.OnceValue(func() *conditions.Program {
			if t, err := p.Tracked(); err == nil {
				return t
			}
			return p
		}))
	}
	return f.(func() *conditions.Program)()
}

type candidate struct {
	target  *conditions.Target
	policy  *compiledPolicy
	verdict Verdict
}

func (ev *evaluation) run(img *conditions.Image) error {
	// The index leaves out policies that cannot match img and cannot fail
	// on it. A trace explains every policy, so it evaluates them all; an
	// image beyond the cost estimate's bounds could make any policy fail.
	policies := ev.set.policies
	n, cands := len(policies), []int32(nil)
	if ix := ev.set.index; ix != nil && !ev.opts.trace && ev.bounded {
		ev.cands = ix.candidates(img, ev.cands)
		cands = ev.cands
		n = len(cands)
	}
	var fallbacks []*compiledPolicy
	for k := range n {
		p := policies[k]
		if cands != nil {
			p = policies[cands[k]]
		}
		if err := ev.ctx.Err(); err != nil {
			return err
		}
		if p.Fallback {
			fallbacks = append(fallbacks, p)
			continue
		}
		if ev.set.combining == FirstMatch && p.Mode == ModeEnforce && ev.spoken != nil {
			ev.skip(p, fmt.Sprintf("first-match: policy %q already matched", ev.spoken.Name))
			continue
		}
		ev.policy(p)
	}
	for _, p := range fallbacks {
		if err := ev.ctx.Err(); err != nil {
			return err
		}
		if ev.spoken != nil {
			ev.skip(p, fmt.Sprintf("fallback: policy %q matched", ev.spoken.Name))
			continue
		}
		ev.policy(p)
	}
	ev.combine()
	ev.allowed()
	return nil
}

func (ev *evaluation) skip(p *compiledPolicy, why string) {
	if ev.opts.trace {
		ev.dec.Trace = append(ev.dec.Trace, PolicyTrace{Policy: p.Name, Priority: p.Priority, Mode: p.Mode,
			Fallback: p.Fallback, Skipped: why})
	}
}

// policy evaluates one policy and records what it contributes.
func (ev *evaluation) policy(p *compiledPolicy) {
	var tr *PolicyTrace
	if ev.opts.trace {
		tr = &PolicyTrace{Policy: p.Name, Priority: p.Priority, Mode: p.Mode, Fallback: p.Fallback}
		defer func() { ev.dec.Trace = append(ev.dec.Trace, *tr) }()
	}
	act := ev.act
	var vars *varState
	if len(p.vars) > 0 {
		vars = &varState{ev: ev, p: p, vals: make([]ref.Val, len(p.vars)), trace: tr}
		act = act.WithVariables(vars)
		vars.act = act
		if tr != nil {
			for _, v := range p.vars {
				vars.Variable(v.name)
			}
		}
	}
	matched, field, err := ev.matches(p, act, tr)
	if err != nil {
		ev.fail(p, field, nil, err, tr)
		return
	}
	if tr != nil {
		tr.Matched = matched
	}
	if !matched {
		return
	}
	ev.dec.Matched = append(ev.dec.Matched, MatchedPolicy{Policy: p.Name, Priority: p.Priority, Mode: p.Mode, Fallback: p.Fallback})
	if p.Mode == ModeEnforce && ev.spoken == nil {
		ev.spoken = p
	}
	for i := range p.actions {
		ev.action(p, i, act, tr)
	}
}

// fail records a policy error and applies its failurePolicy.
func (ev *evaluation) fail(p *compiledPolicy, field string, target *conditions.Target, err error, tr *PolicyTrace) {
	pe := PolicyError{Policy: p.Name, Field: field, Message: err.Error(), Effect: "ignored"}
	if target != nil {
		pe.Target = target.Name
	}
	if p.Mode == ModeEnforce && p.Failure == FailClosed {
		pe.Effect = VerdictBlocked
		if ev.spoken == nil {
			ev.spoken = p
		}
		reason := fmt.Sprintf("policy %q failed to evaluate %s: %v", p.Name, field, err)
		if target != nil {
			ev.errBlocks = append(ev.errBlocks, candidate{target: target, policy: p, verdict: Verdict{Verdict: VerdictBlocked, Policy: p.Name, Reason: reason}})
		} else {
			for _, t := range ev.targets {
				ev.errBlocks = append(ev.errBlocks, candidate{target: t, policy: p, verdict: Verdict{Verdict: VerdictBlocked, Policy: p.Name, Reason: reason}})
			}
		}
	}
	ev.dec.Errors = append(ev.dec.Errors, pe)
	if tr != nil && tr.Error == "" {
		tr.Error = fmt.Sprintf("%s: %v", field, err)
	}
}

func (ev *evaluation) matches(p *compiledPolicy, act *conditions.Activation, tr *PolicyTrace) (bool, string, error) {
	if p.match != nil {
		ok, err := ev.evalBool(p.match, act, tr, tr0{name: "match"})
		return ok, "spec.match", err
	}
	matched := true
	for i, c := range p.all {
		ok, err := ev.evalBool(c.prg, act, tr, tr0{name: "all", message: c.message})
		if err != nil {
			return false, fmt.Sprintf("spec.conditions.all[%d]", i), err
		}
		if !ok {
			matched = false
			if tr == nil {
				return false, "", nil
			}
		}
	}
	if len(p.anyOf) > 0 {
		found := false
		for i, c := range p.anyOf {
			ok, err := ev.evalBool(c.prg, act, tr, tr0{name: "any", message: c.message})
			if err != nil {
				return false, fmt.Sprintf("spec.conditions.any[%d]", i), err
			}
			if ok {
				found = true
				if tr == nil {
					break
				}
			}
		}
		matched = matched && found
	}
	for i, c := range p.none {
		if !matched && tr == nil {
			break
		}
		ok, err := ev.evalBool(c.prg, act, tr, tr0{name: "none", message: c.message})
		if err != nil {
			return false, fmt.Sprintf("spec.conditions.none[%d]", i), err
		}
		if ok {
			matched = false
		}
	}
	return matched, "", nil
}

// tr0 names an expression for the trace.
type tr0 struct {
	name, message, target string
	actions               bool
}

func (ev *evaluation) eval(prg *conditions.Program, act *conditions.Activation, tr *PolicyTrace, n tr0) (ref.Val, error) {
	if tr == nil {
		return ev.prog(prg).Eval(ev.ctx, act)
	}
	val, subs, err := prg.Trace(ev.ctx, act)
	et := ExprTrace{Name: n.name, Target: n.target, Expression: prg.Text(), Message: n.message}
	if err != nil {
		et.Error = err.Error()
	} else {
		et.Result = conditions.ToJSON(val)
	}
	for _, s := range subs {
		et.Values = append(et.Values, SubValue{Expression: s.Expression, Value: s.Value})
	}
	if n.actions {
		tr.Actions = append(tr.Actions, et)
	} else {
		tr.Conditions = append(tr.Conditions, et)
	}
	return val, err
}

func (ev *evaluation) evalBool(prg *conditions.Program, act *conditions.Activation, tr *PolicyTrace, n tr0) (bool, error) {
	if tr == nil {
		return ev.prog(prg).EvalBool(ev.ctx, act)
	}
	val, err := ev.eval(prg, act, tr, n)
	if err != nil {
		return false, err
	}
	b, ok := val.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression returned %s, not bool", val.Type().TypeName())
	}
	return bool(b), nil
}

func (ev *evaluation) evalString(prg *conditions.Program, act *conditions.Activation, tr *PolicyTrace, n tr0) (string, error) {
	if tr == nil {
		return ev.prog(prg).EvalString(ev.ctx, act)
	}
	val, err := ev.eval(prg, act, tr, n)
	if err != nil {
		return "", err
	}
	s, ok := val.(types.String)
	if !ok {
		return "", fmt.Errorf("expression returned %s, not string", val.Type().TypeName())
	}
	return string(s), nil
}

// varState computes a policy's variables lazily, each at most once per
// evaluation.
type varState struct {
	ev    *evaluation
	p     *compiledPolicy
	act   *conditions.Activation
	vals  []ref.Val
	trace *PolicyTrace
}

func (v *varState) Variable(name string) (ref.Val, bool) {
	i, ok := v.p.varIndex[name]
	if !ok {
		return nil, false
	}
	if v.vals[i] != nil {
		return v.vals[i], true
	}
	cv := v.p.vars[i]
	var val ref.Val
	var err error
	if v.trace != nil {
		var subs []conditions.SubValue
		val, subs, err = cv.prg.Trace(v.ev.ctx, v.act)
		et := ExprTrace{Name: cv.name, Expression: cv.prg.Text()}
		if err != nil {
			et.Error = err.Error()
		} else {
			et.Result = conditions.ToJSON(val)
		}
		for _, s := range subs {
			et.Values = append(et.Values, SubValue{Expression: s.Expression, Value: s.Value})
		}
		v.trace.Variables = append(v.trace.Variables, et)
	} else {
		val, err = v.ev.prog(cv.prg).Eval(v.ev.ctx, v.act)
	}
	if err != nil {
		val = types.NewErr("variables.%s: %v", cv.name, err)
	}
	v.vals[i] = val
	return val, true
}
