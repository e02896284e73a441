package policytest

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/celpolicy/celpolicy/engine"
	"gopkg.in/yaml.v3"
)

// decoder fills Go values from yaml.Node trees strictly: unknown fields,
// wrong types, duplicate keys and missing required fields are errors
// with file:line:col. yaml.v3's own KnownFields reports only a line and
// only the first problem.
type decoder struct {
	file string
	errs engine.ErrorList
}

// nodeDecoder is implemented by types with a form of their own, such as
// a target expectation written as a single word.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string)
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	positionType = reflect.TypeFor[engine.Position]()
	nodeDecType  = reflect.TypeFor[nodeDecoder]()
)

func (d *decoder) pos(n *yaml.Node) engine.Position {
	return engine.Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &engine.Error{Pos: d.pos(n), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// decode fills v from n, reporting every mismatch under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	t := v.Type()
	if v.CanAddr() && reflect.PointerTo(t).Implements(nodeDecType) {
		v.Addr().Interface().(nodeDecoder).decodeNode(d, n, path)
		return
	}
	switch t {
	case timeType:
		tm, err := time.Parse(time.RFC3339Nano, n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "expected an RFC 3339 time such as 2026-11-27T12:00:00Z, got %s", describe(n))
			return
		}
		v.Set(reflect.ValueOf(tm))
		return
	case durationType:
		dur, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.fail(n, path, "expected a duration such as 90m or 2160h, got %s", describe(n))
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.fail(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.fail(n, path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Slice:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		m := reflect.MakeMap(t)
		for _, kv := range d.pairs(n, path) {
			if kv.key.Kind != yaml.ScalarNode {
				d.fail(kv.key, path, "expected a string key, got %s", describe(kv.key))
				continue
			}
			elem := reflect.New(t.Elem()).Elem()
			if t.Elem().Kind() == reflect.String {
				// Label values such as `true` or `1` are strings to CEL.
				if val := resolve(kv.val); val.Kind != yaml.ScalarNode || isNull(val) {
					d.fail(val, path+"."+kv.key.Value, "expected a string, got %s", describe(val))
					continue
				} else {
					elem.SetString(val.Value)
				}
			} else {
				d.decode(kv.val, elem, path+"."+kv.key.Value)
			}
			m.SetMapIndex(reflect.ValueOf(kv.key.Value), elem)
		}
		v.Set(m)
	default:
		panic(fmt.Sprintf("policytest: cannot decode into %s", t))
	}
}

type keyValue struct{ key, val *yaml.Node }

// pairs returns a mapping's entries with YAML merge keys (<<: *base)
// expanded; the mapping's own entries override merged ones. Duplicate
// own keys are reported.
func (d *decoder) pairs(n *yaml.Node, path string) []keyValue {
	var merged, own []keyValue
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			val = resolve(val)
			srcs := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				srcs = val.Content
			}
			for _, s := range srcs {
				if s = resolve(s); s.Kind != yaml.MappingNode {
					d.fail(s, path, "a merge key (<<) needs a mapping, got %s", describe(s))
					continue
				}
				merged = append(merged, d.pairs(s, path)...)
			}
			continue
		}
		if seen[k.Value] {
			d.fail(k, join(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		own = append(own, keyValue{k, val})
	}
	out := own
	for _, m := range merged {
		if !seen[m.key.Value] {
			seen[m.key.Value] = true
			out = append(out, m)
		}
	}
	return out
}

// fieldName is a struct field's name in test files: its yaml tag, else
// its json tag (conditions.Image and friends), without options.
func fieldName(f reflect.StructField) string {
	for _, key := range []string{"yaml", "json"} {
		if tag, ok := f.Tag.Lookup(key); ok {
			name, _, _ := strings.Cut(tag, ",")
			return name
		}
	}
	return ""
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == positionType && f.Name == "Pos" {
			v.Field(i).Set(reflect.ValueOf(d.pos(n)))
			continue
		}
		name := fieldName(f)
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]bool{}
	for _, kv := range d.pairs(n, path) {
		if strings.HasPrefix(kv.key.Value, extensionPrefix) {
			continue
		}
		fieldPath := join(path, kv.key.Value)
		idx, ok := fields[kv.key.Value]
		if !ok {
			d.fail(kv.key, fieldPath, "unknown field %q%s", kv.key.Value, suggest(kv.key.Value, names))
			continue
		}
		seen[kv.key.Value] = true
		d.decode(kv.val, v.Field(idx), fieldPath)
	}
	for _, name := range names {
		if t.Field(fields[name]).Tag.Get("required") == "true" && !seen[name] {
			d.fail(n, join(path, name), "missing required field %q", name)
		}
	}
}

// extensionPrefix marks keys the decoder ignores, as in Compose files:
// a place to define YAML anchors (x-base: &base {...}) for cases to merge.
const extensionPrefix = "x-"

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// suggest names the closest known field, for typos such as "matchd".
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	sorted := slices.Clone(known)
	slices.Sort(sorted)
	return " (known fields: " + strings.Join(sorted, ", ") + ")"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
