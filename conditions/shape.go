package conditions

import (
	varint "encoding/binary"
	"regexp/syntax"
	"slices"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	exprpb "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
)

// Shapes shares the parsing and type-checking of expressions that differ
// only in the values of simple literals, as thousands of policies
// generated from one template do. Pass it to Env.Compile with WithShapes.
//
// The shape of an expression is its text with each simple literal left
// out: a quoted string ('…' or "…", not raw, bytes or triple-quoted) whose
// escapes are only \\ \" \' \n \t \r, and a decimal int without sign or
// suffix. Expressions of a shape are compiled in full, per CEL
// environment (Env, scope and declared variables), until one compiles;
// later ones get a copy of its checked expression with their own literal
// values and source positions, which then is validated as a full compile
// would: its literals are checked where the environment's AST validators
// read them (regex, glob, version and constraint literals; see
// literalChecks), or all validators run on it.
//
// Sharing does not happen, and the expression is compiled in full, when
// it is not ASCII, when its shape has no simple literal, when the
// expression that compiled first has a simple literal inside a macro's
// loop (exists, all, map, filter) or one that CEL does not read as one
// literal node (a negative number, for one), or when a validator rejects
// the copy: the full compile then reports cel-go's own error and
// position. Copies with string literals of the same lengths share a cost
// estimate; the expected type and the program stay per expression.
//
// A Shapes holds one checked expression per shape: make one for a batch
// of compiles and drop it after. It is safe for concurrent use; two
// goroutines that meet a new shape at once may both compile it in full.
type Shapes struct {
	m     sync.Map     // shapeKey -> *template, nil when the shape cannot be shared
	costs sync.Map     // costKey -> cost.CostEstimate
	full  atomic.Int64 // full compiles, for tests
}

// NewShapes returns an empty cache of expression shapes.
func NewShapes() *Shapes { return &Shapes{} }

// WithShapes makes Compile share parsing and type-checking with the
// expressions of the same shape compiled before with s (see Shapes).
// Default: every expression is parsed and type-checked on its own.
func WithShapes(s *Shapes) CompileOption {
	return func(o *compileOptions) { o.shapes = s }
}

type shapeKey struct {
	env *cel.Env
	key string
}

// compile returns the checked expression of text in env, as env.Compile
// does, from the template of its shape when there is one.
//
// The cost key of a copy is where its cost estimate is kept (see
// estimateCost); nil for a full compile.
func (s *Shapes) compile(env *cel.Env, text string) (*cel.Ast, *cel.Issues, *instance) {
	if s == nil {
		a, iss := env.Compile(text)
		return a, iss, nil
	}
	key, holes, ok := shapeOf(text)
	if !ok || len(text) > maxExpressionSize {
		a, iss := s.compileFull(env, text)
		return a, iss, nil
	}
	k := shapeKey{env: env, key: key}
	if v, found := s.m.Load(k); found {
		if t := v.(*template); t != nil {
			if a, regexes := t.instantiate(env, text, holes); a != nil {
				return a, nil, &instance{cost: newCostKey(t, holes), regexes: regexes}
			}
		}
		a, iss := s.compileFull(env, text)
		return a, iss, nil
	}
	a, iss := s.compileFull(env, text)
	if iss.Err() == nil {
		s.m.LoadOrStore(k, newTemplate(env, a, holes))
	}
	return a, iss, nil
}

// An instance is what a copy's compile learnt that the rest of Compile
// can reuse: where its cost estimate is kept, and its regex literals,
// parsed when they were checked.
type instance struct {
	cost    *costKey
	regexes map[string]*syntax.Regexp
}

// regex returns the parsed pattern, or nil.
func (in *instance) regex(pattern string) *syntax.Regexp {
	if in == nil {
		return nil
	}
	return in.regexes[pattern]
}

// A costKey names the cost estimate of the copies of one template whose
// string literals have the same lengths. cel-go's cost model, and
// celpolicy's estimator, read a literal's size and never its value, and a
// copy's tree and types are its template's: copies with equal keys have
// equal estimates (the differential test checks it on random literals).
type costKey struct {
	t    *template
	lens string
}

func newCostKey(t *template, holes []hole) *costKey {
	b := make([]byte, 0, 3*len(holes))
	for _, h := range holes {
		if !h.isInt {
			b = varint.AppendUvarint(b, uint64(len(h.str)))
		}
	}
	return &costKey{t: t, lens: string(b)}
}

// estimateCost returns the cost estimate of k, computing it with est the
// first time.
func (s *Shapes) estimateCost(in *instance, est func() (cost.CostEstimate, error)) (cost.CostEstimate, error) {
	if s == nil || in == nil {
		return est()
	}
	k := in.cost
	if v, ok := s.costs.Load(*k); ok {
		return v.(cost.CostEstimate), nil
	}
	e, err := est()
	if err == nil {
		s.costs.Store(*k, e)
	}
	return e, err
}

func (s *Shapes) compileFull(env *cel.Env, text string) (*cel.Ast, *cel.Issues) {
	s.full.Add(1)
	return env.Compile(text)
}

// maxExpressionSize is cel-go's default limit on the code points of an
// expression: a longer copy must fail as a full compile would.
const maxExpressionSize = 100_000

// A template is the checked expression of the first expression of a
// shape, and where its holes are. It is read only.
type template struct {
	checked *ast.AST
	holes   []templateHole
	// onPath holds the IDs of the nodes that have a hole's literal in
	// their subtree: the nodes a copy builds anew around its literals.
	onPath map[int64]bool
	// validators and their configuration are the environment's, as
	// env.Check runs them.
	validators []cel.ASTValidator
	config     cel.ValidatorConfig
	// checks, when not nil, stand for the validators (see literalChecks):
	// copies then run them on their holes instead.
	checks map[int64]literalCheck
}

type templateHole struct {
	id         int64
	start, end int32
}

// newTemplate returns the template of a's shape, or nil when a copy of a
// with other literal values could differ from a full compile of its text
// by more than those values and the source positions.
func newTemplate(env *cel.Env, a *cel.Ast, holes []hole) *template {
	native := a.NativeRep()
	info := native.SourceInfo()
	if len(info.MacroCalls()) > 0 {
		// A macro expansion may copy a literal to several nodes. Without
		// macro call tracking (the default) the checks below catch it:
		// two literals at one offset, or a hole inside a comprehension.
		return nil
	}
	literals := map[int32][]ast.NavigableExpr{} // by start offset
	for _, lit := range ast.MatchDescendants(ast.NavigateAST(native), ast.KindMatcher(ast.LiteralKind)) {
		if r, ok := info.GetOffsetRange(lit.ID()); ok {
			literals[r.Start] = append(literals[r.Start], lit)
		}
	}
	t := &template{checked: native, onPath: map[int64]bool{}}
	used := map[int64]bool{}
	for _, h := range holes {
		start, end := int32(h.start), int32(h.end)
		at := literals[start]
		if len(at) != 1 {
			return nil
		}
		lit := at[0]
		var want any = types.String(h.str)
		if h.isInt {
			want = types.Int(h.num)
		}
		if r, _ := info.GetOffsetRange(lit.ID()); r.Stop != end || lit.AsLiteral() != want || used[lit.ID()] {
			return nil
		}
		used[lit.ID()] = true
		t.holes = append(t.holes, templateHole{id: lit.ID(), start: start, end: end})
	}
	// A copy moves every position by the length changes of the holes
	// before it; that is exact only if no other node's span holds a hole
	// or starts or stops inside one.
	for id, r := range info.OffsetRanges() {
		if used[id] {
			continue
		}
		for _, h := range t.holes {
			if r.Start <= h.start && h.start < r.Stop ||
				h.start < r.Start && r.Start < h.end ||
				h.start < r.Stop && r.Stop < h.end {
				return nil
			}
		}
	}
	if !t.markPath(native.Expr(), used) {
		return nil
	}
	t.validators = env.Validators()
	t.config = validatorConfig(t.validators)
	names := make([]string, len(t.validators))
	for i, v := range t.validators {
		names[i] = v.Name()
	}
	if checks, ok := literalChecks(native, names, used); ok {
		t.checks = checks
	}
	return t
}

// markPath records in t.onPath the nodes of e's subtree that have a hole
// in theirs, and reports false when one of them is a comprehension: only
// macros make those, and copy does not handle them.
func (t *template) markPath(e ast.Expr, holes map[int64]bool) bool {
	var children []ast.Expr
	switch e.Kind() {
	case ast.SelectKind:
		children = []ast.Expr{e.AsSelect().Operand()}
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			children = append(children, c.Target())
		}
		children = append(children, c.Args()...)
	case ast.ListKind:
		children = e.AsList().Elements()
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			children = append(children, en.AsMapEntry().Key(), en.AsMapEntry().Value())
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			children = append(children, f.AsStructField().Value())
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		children = []ast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()}
	}
	below := holes[e.ID()]
	for _, c := range children {
		if !t.markPath(c, holes) {
			return false
		}
		below = below || t.onPath[c.ID()]
	}
	if below {
		if e.Kind() == ast.ComprehensionKind {
			return false
		}
		t.onPath[e.ID()] = true
	}
	return true
}

// instantiate returns the checked expression of text, whose holes are
// at the template's, or nil when it must be compiled in full.
//
// cel-go makes a *cel.Ast only from a protobuf. Converting the whole
// checked expression costs as much as the rest of an instance, so the
// protobuf is just a root node: the copy of the template's tree, its
// types and references and the moved positions are set on the native
// AST that the *cel.Ast holds, with the setters cel-go's optimizers use.
func (t *template) instantiate(env *cel.Env, text string, holes []hole) (*cel.Ast, map[string]*syntax.Regexp) {
	if len(holes) != len(t.holes) {
		return nil, nil
	}
	values := make(map[int64]ref.Val, len(holes))
	for i, h := range holes {
		if h.isInt {
			values[t.holes[i].id] = types.Int(h.num)
		} else {
			values[t.holes[i].id] = types.String(h.str)
		}
	}
	src := common.NewTextSource(text)
	tinfo := t.checked.SourceInfo()
	root := t.checked.Expr()
	a, err := cel.CheckedExprToAstWithSource(&exprpb.CheckedExpr{
		Expr: &exprpb.Expr{Id: root.ID()},
		SourceInfo: &exprpb.SourceInfo{
			SyntaxVersion: tinfo.SyntaxVersion(),
			Location:      tinfo.Description(),
			LineOffsets:   src.LineOffsets(),
		},
	}, src)
	if err != nil {
		return nil, nil
	}
	native := a.NativeRep()
	native.Expr().SetKindCase(t.copyExpr(ast.NewExprFactory(), root, values))
	// Literals of the same kind have the same type and no reference, so
	// the copy shares the template's type and reference maps instead of
	// copying them (a third of a copy's allocations). Checked ASTs are
	// read only: cel-go's optimizers copy before they change one, and
	// celpolicy never changes one.
	*native = *ast.NewCheckedAST(native, t.checked.TypeMap(), t.checked.ReferenceMap())
	info := native.SourceInfo()
	for _, ext := range tinfo.Extensions() {
		info.AddExtension(ext)
	}
	shift := func(off int32) int32 {
		moved := off
		for i, h := range t.holes {
			if h.start < off {
				moved += int32(holes[i].end-holes[i].start) - (h.end - h.start)
			}
		}
		return moved
	}
	for id, r := range tinfo.OffsetRanges() {
		info.SetOffsetRange(id, ast.OffsetRange{Start: shift(r.Start), Stop: shift(r.Stop)})
	}
	var regexes map[string]*syntax.Regexp
	if t.checks != nil {
		for id, v := range values {
			re, ok := t.checks[id].check(v)
			if !ok {
				return nil, nil
			}
			if re != nil {
				if regexes == nil {
					regexes = map[string]*syntax.Regexp{}
				}
				regexes[string(v.(types.String))] = re
			}
		}
	} else if len(t.validators) > 0 {
		iss := cel.NewIssuesWithSourceInfo(common.NewErrors(src), info)
		for _, v := range t.validators {
			v.Validate(env, t.config, native, iss)
		}
		if iss.Err() != nil {
			return nil, nil
		}
	}
	return a, regexes
}

// copyExpr returns a deep copy of e with the literals in values replaced.
func (t *template) copyExpr(fac ast.ExprFactory, e ast.Expr, values map[int64]ref.Val) ast.Expr {
	id := e.ID()
	if v, ok := values[id]; ok {
		return fac.NewLiteral(id, v)
	}
	if !t.onPath[id] {
		return fac.CopyExpr(e)
	}
	switch e.Kind() {
	case ast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return fac.NewPresenceTest(id, t.copyExpr(fac, s.Operand(), values), s.FieldName())
		}
		return fac.NewSelect(id, t.copyExpr(fac, s.Operand(), values), s.FieldName())
	case ast.CallKind:
		c := e.AsCall()
		args := make([]ast.Expr, len(c.Args()))
		for i, arg := range c.Args() {
			args[i] = t.copyExpr(fac, arg, values)
		}
		if c.IsMemberFunction() {
			return fac.NewMemberCall(id, c.FunctionName(), t.copyExpr(fac, c.Target(), values), args...)
		}
		return fac.NewCall(id, c.FunctionName(), args...)
	case ast.ListKind:
		l := e.AsList()
		elems := make([]ast.Expr, len(l.Elements()))
		for i, el := range l.Elements() {
			elems[i] = t.copyExpr(fac, el, values)
		}
		return fac.NewList(id, elems, slices.Clone(l.OptionalIndices()))
	case ast.MapKind:
		entries := make([]ast.EntryExpr, len(e.AsMap().Entries()))
		for i, en := range e.AsMap().Entries() {
			m := en.AsMapEntry()
			entries[i] = fac.NewMapEntry(en.ID(), t.copyExpr(fac, m.Key(), values), t.copyExpr(fac, m.Value(), values), m.IsOptional())
		}
		return fac.NewMap(id, entries)
	case ast.StructKind:
		s := e.AsStruct()
		fields := make([]ast.EntryExpr, len(s.Fields()))
		for i, f := range s.Fields() {
			sf := f.AsStructField()
			fields[i] = fac.NewStructField(f.ID(), sf.Name(), t.copyExpr(fac, sf.Value(), values), sf.IsOptional())
		}
		return fac.NewStruct(id, s.TypeName(), fields)
	}
	return fac.CopyExpr(e) // not reached: markPath refuses comprehensions
}

// validatorConfig is the configuration env.Check gives the validators.
func validatorConfig(validators []cel.ASTValidator) cel.ValidatorConfig {
	c := mapValidatorConfig{cel.HomogeneousAggregateLiteralExemptFunctions: []string{}}
	for _, v := range validators {
		if cv, ok := v.(cel.ASTValidatorConfigurer); ok {
			_ = cv.Configure(c) // env.Check ignores these errors too
		}
	}
	return c
}

type mapValidatorConfig map[string]any

func (c mapValidatorConfig) GetOrDefault(name string, value any) any {
	if v, ok := c[name]; ok {
		return v
	}
	return value
}

func (c mapValidatorConfig) Set(name string, value any) error {
	c[name] = value
	return nil
}
