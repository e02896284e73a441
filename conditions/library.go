package conditions

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"github.com/Masterminds/semver/v3"
	"github.com/bmatcuk/doublestar/v4"
)

// Library returns celpolicy's CEL function library:
//
//	<string>.glob(<string>) -> bool         doublestar pattern, as Harbor filters
//	semver(<string>) -> Semver              error when the string is not a version
//	isSemver(<string>) -> bool
//	<Semver> < <= > >= == <Semver>          precedence of semantic versions
//	<Semver>.satisfies(<string>) -> bool    constraint, e.g. ">= 1.2, < 2"
//	<Semver>.compareTo(<Semver>) -> int     -1, 0 or 1
//	<Semver>.major() / .minor() / .patch() -> int
//	<Semver>.prerelease() -> string
//
// Versions are parsed leniently, as Helm does: "v1.2" is 1.2.0.
// Literal patterns, versions and constraints are checked at compile time.
func Library() cel.EnvOption {
	return cel.Lib(&library{constraints: &constraintCache{}})
}

// SemverType is the CEL type of semver() values.
// It is declared with the comparer trait so that CEL's own <, <=, >, >=
// dispatch to Semver.Compare.
var SemverType = cel.ObjectType("celpolicy.Semver", traits.ComparerType)

type library struct {
	constraints *constraintCache
}

func (*library) LibraryName() string { return "celpolicy.dev.lib" }

func (l *library) CompileOptions() []cel.EnvOption {
	sv := SemverType
	// Comparisons are declared only: the standard library's bindings
	// call Semver.Compare through the comparer trait.
	cmp := func(name, id string) cel.EnvOption {
		return cel.Function(name, cel.Overload(id, []*cel.Type{sv, sv}, cel.BoolType))
	}
	return []cel.EnvOption{
		cel.Function("glob", cel.MemberOverload("string_glob_string",
			[]*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(glob))),
		cel.Function("semver", cel.Overload("semver_string",
			[]*cel.Type{cel.StringType}, sv, cel.UnaryBinding(parseSemver))),
		cel.Function("isSemver", cel.Overload("is_semver_string",
			[]*cel.Type{cel.StringType}, cel.BoolType, cel.UnaryBinding(func(v ref.Val) ref.Val {
				_, err := semver.NewVersion(string(v.(types.String)))
				return types.Bool(err == nil)
			}))),
		cmp(operators.Less, "less_semver"),
		cmp(operators.LessEquals, "less_equals_semver"),
		cmp(operators.Greater, "greater_semver"),
		cmp(operators.GreaterEquals, "greater_equals_semver"),
		cel.Function("compareTo", cel.MemberOverload("semver_compare_to_semver",
			[]*cel.Type{sv, sv}, cel.IntType, cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				return a.(Semver).Compare(b)
			}))),
		cel.Function("satisfies", cel.MemberOverload("semver_satisfies_string",
			[]*cel.Type{sv, cel.StringType}, cel.BoolType, cel.BinaryBinding(l.satisfies))),
		cel.Function("major", cel.MemberOverload("semver_major", []*cel.Type{sv}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Int(v.(Semver).Major()) }))),
		cel.Function("minor", cel.MemberOverload("semver_minor", []*cel.Type{sv}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Int(v.(Semver).Minor()) }))),
		cel.Function("patch", cel.MemberOverload("semver_patch", []*cel.Type{sv}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Int(v.(Semver).Patch()) }))),
		cel.Function("prerelease", cel.MemberOverload("semver_prerelease", []*cel.Type{sv}, cel.StringType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(v.(Semver).Prerelease()) }))),
		cel.ASTValidators(literalValidator{}),
	}
}

func (*library) ProgramOptions() []cel.ProgramOption { return nil }

func glob(s, pattern ref.Val) ref.Val {
	ok, err := doublestar.Match(string(pattern.(types.String)), string(s.(types.String)))
	if err != nil {
		return types.NewErr("glob: invalid pattern %q: %v", pattern, err)
	}
	return types.Bool(ok)
}

func parseSemver(v ref.Val) ref.Val {
	s := string(v.(types.String))
	ver, err := semver.NewVersion(s)
	if err != nil {
		return types.NewErr("semver: %q is not a semantic version", s)
	}
	return Semver{ver}
}

func (l *library) satisfies(v, constraint ref.Val) ref.Val {
	c, err := l.constraints.get(string(constraint.(types.String)))
	if err != nil {
		return types.NewErr("satisfies: invalid constraint %q: %v", constraint, err)
	}
	return types.Bool(c.Check(v.(Semver).Version))
}

// constraintCache keeps parsed constraints: parsing one costs more than
// checking it, and policies repeat the same few literals.
type constraintCache struct {
	m sync.Map // string -> *semver.Constraints
	n atomic.Int64
}

// maxCachedConstraints bounds the cache for constraints computed from
// image data, which could otherwise grow it without end.
const maxCachedConstraints = 4096

func (c *constraintCache) get(s string) (*semver.Constraints, error) {
	if v, ok := c.m.Load(s); ok {
		return v.(*semver.Constraints), nil
	}
	parsed, err := semver.NewConstraint(s)
	if err != nil {
		return nil, err
	}
	if c.n.Load() < maxCachedConstraints {
		if _, loaded := c.m.LoadOrStore(s, parsed); !loaded {
			c.n.Add(1)
		}
	}
	return parsed, nil
}

// Semver is the CEL value of a semantic version.
type Semver struct{ *semver.Version }

// ConvertToNative implements ref.Val.
func (v Semver) ConvertToNative(typeDesc reflect.Type) (any, error) {
	switch typeDesc {
	case reflect.TypeFor[*semver.Version]():
		return v.Version, nil
	case reflect.TypeFor[string](), reflect.TypeFor[any]():
		return v.Original(), nil
	}
	return nil, fmt.Errorf("type conversion error from semver to %v", typeDesc)
}

// ConvertToType implements ref.Val.
func (v Semver) ConvertToType(typeVal ref.Type) ref.Val {
	switch typeVal {
	case SemverType:
		return v
	case types.StringType:
		return types.String(v.Original())
	case types.TypeType:
		return SemverType
	}
	return types.NewErr("type conversion error from %s to %s", SemverType, typeVal)
}

// Equal implements ref.Val: versions are equal when they have the same
// precedence and metadata.
func (v Semver) Equal(other ref.Val) ref.Val {
	o, ok := other.(Semver)
	if !ok {
		return types.False
	}
	return types.Bool(v.Version.Equal(o.Version) && v.Metadata() == o.Metadata())
}

// Compare implements traits.Comparer: -1, 0 or 1 by version precedence.
func (v Semver) Compare(other ref.Val) ref.Val {
	o, ok := other.(Semver)
	if !ok {
		return types.MaybeNoSuchOverloadErr(other)
	}
	return types.Int(v.Version.Compare(o.Version))
}

// Type implements ref.Val.
func (Semver) Type() ref.Type { return SemverType }

// Value implements ref.Val.
func (v Semver) Value() any { return v.Version }

// literalValidator rejects, at compile time, literal glob patterns,
// versions and constraints that could never work at run time.
type literalValidator struct{}

func (literalValidator) Name() string { return "celpolicy.validator.literals" }

func (literalValidator) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	root := ast.NavigateAST(a)
	for _, call := range ast.MatchDescendants(root, ast.KindMatcher(ast.CallKind)) {
		c := call.AsCall()
		args := c.Args()
		if len(args) != 1 || args[0].Kind() != ast.LiteralKind {
			continue
		}
		lit, ok := args[0].AsLiteral().(types.String)
		if !ok {
			continue
		}
		s := string(lit)
		switch c.FunctionName() {
		case "glob":
			if c.IsMemberFunction() && !doublestar.ValidatePattern(s) {
				iss.ReportErrorAtID(args[0].ID(), "invalid glob pattern %q", s)
			}
		case "semver":
			if !c.IsMemberFunction() {
				if _, err := semver.NewVersion(s); err != nil {
					iss.ReportErrorAtID(args[0].ID(), "%q is not a semantic version", s)
				}
			}
		case "satisfies":
			if _, err := semver.NewConstraint(s); err != nil {
				iss.ReportErrorAtID(args[0].ID(), "invalid semver constraint %q: %v", s, err)
			}
		}
	}
}
