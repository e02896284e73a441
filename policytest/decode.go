package policytest

import (
	"reflect"
	"slices"
	"strings"

	"github.com/celpolicy/celpolicy/engine"
	"github.com/celpolicy/celpolicy/internal/yamldecode"
	"gopkg.in/yaml.v3"
)

// decoder decodes a test file strictly with yamldecode: every problem is
// reported with file:line:col. Target and error expectations have short
// forms of their own (decodeNode).
type decoder struct {
	file string
	yd   *yamldecode.Decoder
	// errs are problems found after decoding (duplicate names, images).
	errs engine.ErrorList
}

// extensionPrefix marks keys the decoder ignores, as in Compose files:
// a place to define YAML anchors (x-base: &base {...}) for cases to merge.
const extensionPrefix = "x-"

func newDecoder(file string) *decoder {
	d := &decoder{file: file}
	d.yd = &yamldecode.Decoder{
		Custom: map[reflect.Type]func(*yamldecode.Decoder, *yaml.Node, reflect.Value, string){
			reflect.TypeFor[TargetExpect](): func(_ *yamldecode.Decoder, n *yaml.Node, v reflect.Value, path string) {
				v.Addr().Interface().(*TargetExpect).decodeNode(d, n, path)
			},
			reflect.TypeFor[ErrorExpect](): func(_ *yamldecode.Decoder, n *yaml.Node, v reflect.Value, path string) {
				v.Addr().Interface().(*ErrorExpect).decodeNode(d, n, path)
			},
		},
		Ignore:  func(key string) bool { return strings.HasPrefix(key, extensionPrefix) },
		PosType: reflect.TypeFor[engine.Position](),
		Pos:     func(n *yaml.Node) reflect.Value { return reflect.ValueOf(d.pos(n)) },
	}
	return d
}

func (d *decoder) pos(n *yaml.Node) engine.Position {
	return engine.Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.yd.Fail(n, path, format, args...)
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) { d.yd.Decode(n, v, path) }

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	d.yd.DecodeStruct(n, v, path)
}

// errors returns every problem, in file order.
func (d *decoder) errors() engine.ErrorList {
	out := slices.Clone(d.errs)
	for _, p := range d.yd.Problems {
		out = append(out, &engine.Error{Pos: d.pos(p.Node), Field: p.Path, Msg: p.Msg})
	}
	slices.SortStableFunc(out, func(a, b *engine.Error) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Column - b.Pos.Column
	})
	return out
}

func isNull(n *yaml.Node) bool { return yamldecode.IsNull(n) }

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
