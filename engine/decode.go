package engine

import (
	"reflect"

	"github.com/celpolicy/celpolicy/internal/yamldecode"
	"gopkg.in/yaml.v3"
)

// Policy files are decoded in two steps: yaml.v3 parses a document into
// a yaml.Node tree, which yamldecode walks strictly into the raw types
// below, reporting every problem with its line and column.

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

// decoder decodes one file's documents with yamldecode, turning its
// problems into positioned Errors and reading engine's positioned
// strings (Text, Expr).
type decoder struct {
	src  *sourceFile
	errs *ErrorList
	// line is the 0-based file line the decoded YAML text starts at.
	line int
	yd   *yamldecode.Decoder // made on first use
}

var positionType = reflect.TypeFor[Position]()

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.src.name, Line: d.line + n.Line, Column: n.Column}
}

// decode fills v from n; key, when not nil, is the mapping key n is the
// value of, where missing fields are reported.
func (d *decoder) decode(key, n *yaml.Node, v reflect.Value, path string) {
	if d.yd == nil {
		d.yd = d.newYAMLDecoder()
	}
	yd := d.yd
	yd.Problems = yd.Problems[:0]
	yd.DecodeUnder(key, n, v, path)
	for _, p := range yd.Problems {
		d.errs.add(d.pos(p.Node), p.Path, "%s", p.Msg)
	}
}

// newYAMLDecoder returns the yamldecode.Decoder of d's documents, with
// engine's positioned strings.
func (d *decoder) newYAMLDecoder() *yamldecode.Decoder {
	return &yamldecode.Decoder{
		Custom: map[reflect.Type]func(*yamldecode.Decoder, *yaml.Node, reflect.Value, string){
			reflect.TypeFor[Text](): func(yd *yamldecode.Decoder, n *yaml.Node, v reflect.Value, path string) {
				if n.Kind != yaml.ScalarNode || yamldecode.IsNull(n) {
					yd.Fail(n, path, "expected a string, got %s", yamldecode.Describe(n))
					return
				}
				v.Set(reflect.ValueOf(Text{Value: n.Value, Pos: d.pos(n)}))
			},
			reflect.TypeFor[Expr](): func(yd *yamldecode.Decoder, n *yaml.Node, v reflect.Value, path string) {
				if n.Kind != yaml.ScalarNode || yamldecode.IsNull(n) {
					yd.Fail(n, path, "expected a string, got %s", yamldecode.Describe(n))
					return
				}
				v.Set(reflect.ValueOf(Expr{Text: n.Value, Pos: d.pos(n), src: d.src, style: n.Style}))
			},
		},
		PosType: positionType,
		Pos:     func(n *yaml.Node) reflect.Value { return reflect.ValueOf(d.pos(n)) },
	}
}
