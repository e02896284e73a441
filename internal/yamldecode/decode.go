package yamldecode

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with the input.
type Problem struct {
	Node *yaml.Node // where: Line and Column
	Path string     // the field, e.g. "spec.actions[1].to"
	Msg  string
}

// Decoder decodes one document. Set its hooks, then call Decode.
type Decoder struct {
	// Custom decodes values of these types itself (positioned strings,
	// values with a short form); it may call back into the Decoder.
	Custom map[reflect.Type]func(d *Decoder, n *yaml.Node, v reflect.Value, path string)
	// Ignore reports keys to skip without a word, e.g. "x-" extensions.
	Ignore func(key string) bool
	// PosType and Pos fill a struct field named Pos of type PosType with
	// where the struct was written (its key, when it has one).
	PosType reflect.Type
	Pos     func(n *yaml.Node) reflect.Value
	// Problems found so far.
	Problems []Problem

	// key is the mapping key whose value is being decoded, if any: a
	// struct's missing fields are reported there ("spec:"), where a
	// reader looks for them.
	key *yaml.Node
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
	nodePtrType  = reflect.TypeFor[*yaml.Node]()
)

// Fail records a problem at n.
func (d *Decoder) Fail(n *yaml.Node, path, format string, args ...any) {
	d.Problems = append(d.Problems, Problem{Node: n, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Describe names what a node holds, for messages: "a list", "null",
// or the quoted scalar.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if IsNull(n) {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// IsNull reports whether n is an explicit or empty null.
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// Resolve follows aliases to the node they stand for.
func Resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// Join appends a field to a path.
func Join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// Decode fills v from n, reporting every mismatch under path.
func (d *Decoder) Decode(n *yaml.Node, v reflect.Value, path string) {
	n = Resolve(n)
	t := v.Type()
	if custom, ok := d.Custom[t]; ok {
		custom(d, n, v, path)
		return
	}
	switch t {
	case nodePtrType:
		v.Set(reflect.ValueOf(n))
		return
	case timeType:
		tm, err := time.Parse(time.RFC3339Nano, n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.Fail(n, path, "expected an RFC 3339 time such as 2026-11-27T12:00:00Z, got %s", Describe(n))
			return
		}
		v.Set(reflect.ValueOf(tm))
		return
	case durationType:
		dur, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.Fail(n, path, "expected a duration such as 90m or 2160h, got %s", Describe(n))
			return
		}
		v.Set(reflect.ValueOf(dur))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if IsNull(n) {
			return
		}
		p := reflect.New(t.Elem())
		d.Decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.DecodeStruct(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || IsNull(n) {
			d.Fail(n, path, "expected a string, got %s", Describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.Fail(n, path, "expected an integer, got %s", Describe(n))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.Fail(n, path, "expected true or false, got %s", Describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Slice:
		if IsNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.Fail(n, path, "expected a list, got %s", Describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.key = nil
			d.Decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	default:
		panic(fmt.Sprintf("yamldecode: cannot decode into %s", t))
	}
}

func (d *Decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if IsNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.Fail(n, path, "expected a mapping, got %s", Describe(n))
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	for _, kv := range d.pairs(n, path) {
		if kv.key.Kind != yaml.ScalarNode {
			d.Fail(kv.key, path, "expected a string key, got %s", Describe(kv.key))
			continue
		}
		elem := reflect.New(t.Elem()).Elem()
		if t.Elem().Kind() == reflect.String {
			// Label values such as `true` or `1` are strings to CEL.
			val := Resolve(kv.val)
			if val.Kind != yaml.ScalarNode || IsNull(val) {
				d.Fail(val, Join(path, kv.key.Value), "expected a string, got %s", Describe(val))
				continue
			}
			elem.SetString(val.Value)
		} else {
			d.key = kv.key
			d.Decode(kv.val, elem, Join(path, kv.key.Value))
		}
		m.SetMapIndex(reflect.ValueOf(kv.key.Value), elem)
	}
	v.Set(m)
}

type keyValue struct{ key, val *yaml.Node }

// pairs returns a mapping's entries with merge keys (<<: *base)
// expanded; the mapping's own entries override merged ones. Duplicate
// own keys are reported.
func (d *Decoder) pairs(n *yaml.Node, path string) []keyValue {
	// A small mapping without merge keys, the common case, finds its
	// duplicates by scanning what it has; others keep a set.
	var seen map[string]bool
	if len(n.Content) > 32 || slices.ContainsFunc(n.Content, func(k *yaml.Node) bool { return k.Tag == "!!merge" }) {
		seen = map[string]bool{}
	}
	taken := func(key string, in []keyValue) bool {
		if seen != nil {
			return seen[key]
		}
		return slices.ContainsFunc(in, func(kv keyValue) bool { return kv.key.Value == key })
	}
	var merged []keyValue
	own := make([]keyValue, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			val = Resolve(val)
			srcs := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				srcs = val.Content
			}
			for _, s := range srcs {
				if s = Resolve(s); s.Kind != yaml.MappingNode {
					d.Fail(s, path, "a merge key (<<) needs a mapping, got %s", Describe(s))
					continue
				}
				merged = append(merged, d.pairs(s, path)...)
			}
			continue
		}
		if taken(k.Value, own) {
			d.Fail(k, Join(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		if seen != nil {
			seen[k.Value] = true
		}
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

// FieldName is a struct field's name in YAML: its yaml tag, else its
// json tag, without options; "" or "-" for none.
func FieldName(f reflect.StructField) string {
	for _, key := range []string{"yaml", "json"} {
		if tag, ok := f.Tag.Lookup(key); ok {
			name, _, _ := strings.Cut(tag, ",")
			return name
		}
	}
	return ""
}

// DecodeStruct fills the struct v from the mapping n, without looking
// for a Custom decoder of v's type (so that one can call it).
func (d *Decoder) DecodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.Fail(n, path, "expected a mapping, got %s", Describe(n))
		return
	}
	at := n
	if d.key != nil {
		at = d.key
	}
	info := structInfoOf(v.Type(), d.PosType)
	if info.pos >= 0 {
		v.Field(info.pos).Set(d.Pos(at))
	}
	var seenBuf [16]bool
	seen := seenBuf[:0]
	if len(info.names) > len(seenBuf) {
		seen = make([]bool, len(info.names))
	}
	seen = seen[:len(info.names)]
	for _, kv := range d.pairs(n, path) {
		if d.Ignore != nil && d.Ignore(kv.key.Value) {
			continue
		}
		fieldPath := Join(path, kv.key.Value)
		k, ok := info.byName[kv.key.Value]
		if !ok {
			d.Fail(kv.key, fieldPath, "unknown field %q%s", kv.key.Value, suggest(kv.key.Value, info.names))
			continue
		}
		seen[k] = true
		d.key = kv.key
		d.Decode(kv.val, v.Field(info.index[k]), fieldPath)
	}
	for k, name := range info.names {
		if info.required[k] && !seen[k] {
			d.Fail(at, Join(path, name), "missing required field %q", name)
		}
	}
}

// structInfo is what DecodeStruct reads of a struct type, once per type.
type structInfo struct {
	names    []string       // YAML names of the decoded fields, in order
	index    []int          // their field indices
	required []bool         // whether each is required
	byName   map[string]int // name -> position in names
	pos      int            // the Pos field's index, or -1
}

type structKey struct{ t, pos reflect.Type }

var structInfos sync.Map // structKey -> *structInfo

func structInfoOf(t, posType reflect.Type) *structInfo {
	key := structKey{t, posType}
	if v, ok := structInfos.Load(key); ok {
		return v.(*structInfo)
	}
	info := &structInfo{byName: map[string]int{}, pos: -1}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "Pos" && posType != nil && f.Type == posType {
			info.pos = i
			continue
		}
		name := FieldName(f)
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		info.byName[name] = len(info.names)
		info.names = append(info.names, name)
		info.index = append(info.index, i)
		info.required = append(info.required, f.Tag.Get("required") == "true")
	}
	v, _ := structInfos.LoadOrStore(key, info)
	return v.(*structInfo)
}

// suggest names the closest known field, for typos such as "priorty".
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

// DecodeUnder decodes n, the value of the mapping key key, into v: a
// struct's missing fields are then reported at key.
func (d *Decoder) DecodeUnder(key, n *yaml.Node, v reflect.Value, path string) {
	d.key = key
	d.Decode(n, v, path)
}
