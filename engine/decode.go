package engine

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The decoder walks yaml.Node trees into the raw document types below.
// yaml.v3's own strict decoding reports only a line, and only the first
// problem; policy authors need every problem with its column.

type rawDoc struct {
	APIVersion Text        `yaml:"apiVersion" required:"true"`
	Kind       Text        `yaml:"kind" required:"true"`
	Metadata   rawMetadata `yaml:"metadata" required:"true"`
	Spec       *yaml.Node  `yaml:"spec" required:"true"`
	SpecKey    *yaml.Node  `yaml:"-"` // the "spec" key, to position errors
}

type rawMetadata struct {
	Name        Text              `yaml:"name" required:"true"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type rawPolicySpec struct {
	Priority      *int           `yaml:"priority"`
	Mode          *Text          `yaml:"mode"`
	Fallback      bool           `yaml:"fallback"`
	FailurePolicy *Text          `yaml:"failurePolicy"`
	Variables     []rawVariable  `yaml:"variables"`
	Match         *Expr          `yaml:"match"`
	Conditions    *rawConditions `yaml:"conditions"`
	Actions       []rawAction    `yaml:"actions" required:"true"`
	Schedule      *Text          `yaml:"schedule"`
	Sources       []rawSource    `yaml:"sources"`
	Pos           Position       `yaml:"-"`
}

type rawVariable struct {
	Name       Text `yaml:"name" required:"true"`
	Expression Expr `yaml:"expression" required:"true"`
}

type rawConditions struct {
	All  []rawCondition `yaml:"all"`
	Any  []rawCondition `yaml:"any"`
	None []rawCondition `yaml:"none"`
	Pos  Position       `yaml:"-"`
}

type rawCondition struct {
	Expression Expr   `yaml:"expression" required:"true"`
	Message    string `yaml:"message"`
}

type rawAction struct {
	Type       Text     `yaml:"type" required:"true"`
	Where      *Expr    `yaml:"where"`
	To         []Text   `yaml:"to"`
	Repository *Expr    `yaml:"repository"`
	Tag        *Expr    `yaml:"tag"`
	Reason     *Expr    `yaml:"reason"`
	Webhook    *Text    `yaml:"webhook"`
	Platforms  []string `yaml:"platforms"`
	Referrers  bool     `yaml:"referrers"`
	Scope      *Text    `yaml:"scope"`
	Pos        Position `yaml:"-"`
}

type rawSource struct {
	Registry     Text     `yaml:"registry" required:"true"`
	Repositories []string `yaml:"repositories"`
	Tags         []string `yaml:"tags"`
}

type rawRegistrySpec struct {
	Host     Text   `yaml:"host" required:"true"`
	Insecure bool   `yaml:"insecure"`
	CAFile   string `yaml:"caFile"`
}

type decoder struct {
	src  *sourceFile
	errs *ErrorList
	// key is the mapping key whose value is being decoded, if any: a
	// struct's missing fields are reported there ("spec:"), where a
	// reader looks for them.
	key *yaml.Node
}

var (
	textType     = reflect.TypeFor[Text]()
	exprType     = reflect.TypeFor[Expr]()
	nodePtrType  = reflect.TypeFor[*yaml.Node]()
	positionType = reflect.TypeFor[Position]()
)

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.src.name, Line: n.Line, Column: n.Column}
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.add(d.pos(n), path, format, args...)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// decode fills v from n, reporting every mismatch under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	t := v.Type()
	switch t {
	case nodePtrType:
		v.Set(reflect.ValueOf(n))
		return
	case textType, exprType:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.fail(n, path, "expected a string, got %s", kindName(n))
			return
		}
		text := Text{Value: n.Value, Pos: d.pos(n)}
		if t == textType {
			v.Set(reflect.ValueOf(text))
		} else {
			v.Set(reflect.ValueOf(Expr{Text: text.Value, Pos: text.Pos, src: d.src, style: n.Style}))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.fail(n, path, "expected a string, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		i, err := strconv.Atoi(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || err != nil {
			d.fail(n, path, "expected an integer, got %s", kindName(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || err != nil {
			d.fail(n, path, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.key = nil
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				d.fail(k, path, "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			for val.Kind == yaml.AliasNode {
				val = val.Alias
			}
			if val.Kind != yaml.ScalarNode {
				d.fail(val, path+"."+k.Value, "expected a string, got %s", kindName(val))
				continue
			}
			m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
		}
		v.Set(m)
	default:
		panic(fmt.Sprintf("engine: cannot decode into %s", t))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	at := n
	if d.key != nil {
		at = d.key
	}
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == positionType && f.Name == "Pos" {
			v.Field(i).Set(reflect.ValueOf(d.pos(at)))
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = i
		names = append(names, tag)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fieldPath := join(path, k.Value)
		idx, ok := fields[k.Value]
		if !ok {
			d.fail(k, fieldPath, "unknown field %q%s", k.Value, suggest(k.Value, names))
			continue
		}
		if seen[k.Value] {
			d.fail(k, fieldPath, "duplicate field %q", k.Value)
			continue
		}
		seen[k.Value] = true
		d.key = k
		d.decode(val, v.Field(idx), fieldPath)
	}
	for _, name := range names {
		f, _ := t.FieldByName(t.Field(fields[name]).Name)
		if f.Tag.Get("required") == "true" && !seen[name] {
			d.fail(at, join(path, name), "missing required field %q", name)
		}
	}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// suggest names the closest known field, for typos such as "priorty".
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	sorted := slices.Clone(known)
	slices.Sort(sorted)
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
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
