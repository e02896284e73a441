package engine

import (
	"cmp"
	"slices"
	"time"

	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
	"github.com/celpolicy/celpolicy/conditions"
)

// imageReads is what a policy's expressions read of the image and of
// the clock: the memo keys a decision by exactly that.
type imageReads struct {
	fields fieldSet // image fields read as a whole
	// keys of labels and annotations read one by one (a map read as a
	// whole is in fields), sorted.
	keys []fieldKey
	// ages and nows are the literal thresholds image.age and now are
	// compared with: a decision depends only on which side of each the
	// image's age and now fall.
	ages []time.Duration
	nows []time.Time
	// clock: age or now is read otherwise; the decision depends on now
	// itself.
	clock bool
}

// fieldSet is a set of image fields, one bit each.
type fieldSet uint32

const (
	readAll fieldSet = 1 << iota // the image as a whole
	readMediaType
	readSource
	readSize
	readCreated
	readAge
	readLayers
	readPlatforms
	readReferrers
	readLabels
	readAnnotations
	readOther // registry, repository, tag, digest, reference: always keyed
)

func fieldBit(name string) fieldSet {
	switch name {
	case "mediaType":
		return readMediaType
	case "source":
		return readSource
	case "size":
		return readSize
	case "created":
		return readCreated
	case "age":
		return readAge
	case "layers":
		return readLayers
	case "platforms":
		return readPlatforms
	case "referrers":
		return readReferrers
	case "labels":
		return readLabels
	case "annotations":
		return readAnnotations
	}
	return readOther
}

// has reports whether any of bits is read, or the whole image.
func (f fieldSet) has(bits fieldSet) bool { return f&(bits|readAll) != 0 }

func newImageReads() *imageReads { return &imageReads{} }

// policyReads collects what every expression of a compiled policy reads.
func policyReads(cp *compiledPolicy) *imageReads {
	r := newImageReads()
	for _, v := range cp.vars {
		r.walk(expr(v.prg))
	}
	for _, prg := range cp.programs() {
		r.walk(expr(prg))
	}
	r.normalize()
	return r
}

// programs returns the policy's compiled expressions other than its
// variables: match, conditions and the actions' expressions.
func (cp *compiledPolicy) programs() []*conditions.Program {
	var out []*conditions.Program
	if cp.match != nil {
		out = append(out, cp.match)
	}
	for _, cs := range [][]compiledCondition{cp.all, cp.anyOf, cp.none} {
		for _, c := range cs {
			out = append(out, c.prg)
		}
	}
	for _, a := range cp.actions {
		for _, p := range []*conditions.Program{a.where, a.repository, a.tag, a.reason} {
			if p != nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// setReads is what a set's policies read, together.
func setReads(policies []*compiledPolicy) *imageReads {
	r := newImageReads()
	for _, p := range policies {
		r.merge(p.reads)
	}
	r.normalize()
	return r
}

// mapKeys returns the label and annotation keys read one by one.
func (r *imageReads) mapKeys() (labels, annotations []string) {
	for _, k := range r.keys {
		switch k.field {
		case "labels":
			labels = append(labels, k.key)
		case "annotations":
			annotations = append(annotations, k.key)
		}
	}
	return labels, annotations
}

// parts is what r reads of an image, as
// conditions.Image.WithinCostBoundsFor wants it.
func (r *imageReads) parts() *conditions.ImageParts {
	parts := &conditions.ImageParts{
		Labels:      r.fields.has(readLabels),
		Annotations: r.fields.has(readAnnotations),
		Layers:      r.fields.has(readLayers),
		Platforms:   r.fields.has(readPlatforms),
		Referrers:   r.fields.has(readReferrers),
	}
	parts.LabelKeys, parts.AnnotationKeys = r.mapKeys()
	return parts
}

// merge adds o to r.
func (r *imageReads) merge(o *imageReads) {
	r.fields |= o.fields
	r.keys = append(r.keys, o.keys...)
	r.ages = append(r.ages, o.ages...)
	r.nows = append(r.nows, o.nows...)
	r.clock = r.clock || o.clock
}

// normalize sorts and dedupes keys and thresholds, and drops keys of
// maps read as a whole.
func (r *imageReads) normalize() {
	slices.Sort(r.ages)
	r.ages = slices.Clip(slices.Compact(r.ages))
	slices.SortFunc(r.nows, func(a, b time.Time) int { return a.Compare(b) })
	r.nows = slices.Clip(slices.CompactFunc(r.nows, time.Time.Equal))
	r.keys = slices.DeleteFunc(r.keys, func(k fieldKey) bool { return r.fields.has(fieldBit(k.field)) })
	slices.SortFunc(r.keys, func(a, b fieldKey) int { return cmp.Or(cmp.Compare(a.field, b.field), cmp.Compare(a.key, b.key)) })
	r.keys = slices.Clip(slices.Compact(r.keys))
}

func (r *imageReads) walk(e ast.Expr) {
	switch e.Kind() {
	case ast.IdentKind:
		switch e.AsIdent() {
		case "image":
			r.fields, r.clock = r.fields|readAll, true
		case "now":
			r.clock = true
		}
	case ast.SelectKind:
		s := e.AsSelect()
		if isImage(s.Operand()) {
			r.fields |= fieldBit(s.FieldName())
			if s.FieldName() == "age" {
				r.clock = true
			}
			return
		}
		if m, ok := mapField(s.Operand()); ok {
			r.keys = append(r.keys, fieldKey{m, s.FieldName()})
			return
		}
		r.walk(s.Operand())
	case ast.CallKind:
		if r.call(e.AsCall()) {
			return
		}
		c := e.AsCall()
		if c.IsMemberFunction() {
			r.walk(c.Target())
		}
		for _, a := range c.Args() {
			r.walk(a)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		for _, v := range []string{c.IterVar(), c.IterVar2(), c.AccuVar()} {
			if v == "image" || v == "now" {
				// A shadowing loop variable: assume everything is read.
				r.fields, r.clock = r.fields|readAll, true
			}
		}
		for _, x := range []ast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
			r.walk(x)
		}
	case ast.ListKind:
		for _, x := range e.AsList().Elements() {
			r.walk(x)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			r.walk(me.Key())
			r.walk(me.Value())
		}
	case ast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			r.walk(f.AsStructField().Value())
		}
	}
}

// call records the calls whose reads are narrower than their parts: a
// map entry by literal key, a time compared with a literal. It reports
// whether it did.
func (r *imageReads) call(c ast.CallExpr) bool {
	args := c.Args()
	if len(args) != 2 {
		return false
	}
	switch fn := c.FunctionName(); fn {
	case operators.Index, operators.OptIndex, operators.OptSelect:
		if m, ok := mapField(args[0]); ok {
			if k, ok := stringLiteral(args[1]); ok {
				r.keys = append(r.keys, fieldKey{m, k})
				return true
			}
		}
	case operators.In:
		if m, ok := mapField(args[1]); ok {
			if k, ok := stringLiteral(args[0]); ok {
				r.keys = append(r.keys, fieldKey{m, k})
				return true
			}
		}
	case operators.Less, operators.LessEquals, operators.Greater, operators.GreaterEquals,
		operators.Equals, operators.NotEquals:
		for _, s := range [2][2]ast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if isImageField(s[0], "age") {
				if d, ok := durationLiteral(s[1]); ok {
					r.fields |= readAge
					r.ages = append(r.ages, d)
					return true
				}
			}
			if s[0].Kind() == ast.IdentKind && s[0].AsIdent() == "now" {
				if t, ok := timestampLiteral(s[1]); ok {
					r.nows = append(r.nows, t)
					return true
				}
			}
		}
	}
	return false
}

func isImageField(e ast.Expr, name string) bool {
	return e.Kind() == ast.SelectKind && !e.AsSelect().IsTestOnly() && isImage(e.AsSelect().Operand()) &&
		e.AsSelect().FieldName() == name
}

func durationLiteral(e ast.Expr) (time.Duration, bool) {
	s, ok := conversionLiteral(e, overloads.TypeConvertDuration)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

func timestampLiteral(e ast.Expr) (time.Time, bool) {
	s, ok := conversionLiteral(e, overloads.TypeConvertTimestamp)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// conversionLiteral returns s of fn("s").
func conversionLiteral(e ast.Expr, fn string) (string, bool) {
	if e.Kind() != ast.CallKind {
		return "", false
	}
	c := e.AsCall()
	if c.FunctionName() != fn || c.IsMemberFunction() || len(c.Args()) != 1 {
		return "", false
	}
	return stringLiteral(c.Args()[0])
}
