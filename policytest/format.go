package policytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/celpolicy/celpolicy/conditions"
	"github.com/celpolicy/celpolicy/engine"
	"gopkg.in/yaml.v3"
)

// File is a decoded policy test file.
type File struct {
	Path string `yaml:"-"`
	// Now is the evaluation time of cases that do not set their own.
	Now *time.Time `yaml:"now"`
	// Combining is the algorithm the policies are evaluated with.
	// Default: priority.
	Combining string  `yaml:"combining"`
	Cases     []*Case `yaml:"cases" required:"true"`
}

// Case is one image and the decision expected for it.
type Case struct {
	Name        string `yaml:"name" required:"true"`
	Description string `yaml:"description"`
	// Image is given inline (the fields of an image fixture) or read from
	// ImageFile, a JSON fixture relative to the test file.
	Image     *conditions.Image `yaml:"image"`
	ImageFile string            `yaml:"imageFile"`
	Now       *time.Time        `yaml:"now"`
	// Target restricts the decision to one inventory registry.
	Target string `yaml:"target"`
	Expect Expect `yaml:"expect" required:"true"`
	// Pos is where the case starts in the test file.
	Pos engine.Position
}

// Expect is the expected decision. A field left out is not checked; an
// empty list or mapping expects nothing of that kind.
type Expect struct {
	// Matched are the policies expected to match, audit ones included, in
	// any order.
	Matched *[]string `yaml:"matched"`
	// NotMatched are policies that must not match; the others may.
	NotMatched []string `yaml:"notMatched"`
	// Allowed is the decision's allowed flag.
	Allowed *bool `yaml:"allowed"`
	// Targets is the verdict per target. Every target with a verdict must
	// be listed; "none" expects no verdict.
	Targets *map[string]*TargetExpect `yaml:"targets"`
	// Actions are the notify and delete actions, in any order; every
	// planned action must be listed.
	Actions *[]ActionExpect `yaml:"actions"`
	// Errors are the policy evaluation errors expected. Left out, a case
	// whose evaluation reports an error fails.
	Errors *[]ErrorExpect `yaml:"errors"`
}

// TargetExpect is the verdict expected at one target. In a file it is a
// mapping, or one word: replicate, blocked or none.
type TargetExpect struct {
	Verdict     string `yaml:"verdict" required:"true"`
	Policy      string `yaml:"policy"`
	Destination string `yaml:"destination"`
	// Reason must equal the block reason; ReasonMatches is a regular
	// expression (RE2) the reason must contain a match of.
	Reason        string `yaml:"reason"`
	ReasonMatches string `yaml:"reasonMatches"`
	Pos           engine.Position

	reasonRE *regexp.Regexp
}

// VerdictNone expects a target to have no verdict.
const VerdictNone = "none"

// ActionExpect is a notify or delete action expected. Fields left empty
// match anything.
type ActionExpect struct {
	Type      string `yaml:"type" required:"true"`
	Policy    string `yaml:"policy"`
	Webhook   string `yaml:"webhook"`
	Reference string `yaml:"reference"`
	Scope     string `yaml:"scope"`
	Pos       engine.Position
}

// ErrorExpect is a policy evaluation error expected. Fields left empty
// match anything.
type ErrorExpect struct {
	Policy         string `yaml:"policy" required:"true"`
	Field          string `yaml:"field"`
	Target         string `yaml:"target"`
	MessageMatches string `yaml:"messageMatches"`
	Pos            engine.Position

	messageRE *regexp.Regexp
}

func (te *TargetExpect) decodeNode(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		te.Verdict, te.Pos = n.Value, d.pos(n)
	} else {
		type plain TargetExpect // without decodeNode
		var p plain
		d.decodeStruct(n, reflectValue(&p), path)
		*te = TargetExpect(p)
	}
	switch te.Verdict {
	case engine.VerdictReplicate, engine.VerdictBlocked, VerdictNone, "":
	default:
		d.fail(n, path, "unknown verdict %q (want replicate, blocked or none)", te.Verdict)
	}
	if (te.Reason != "" || te.ReasonMatches != "") && te.Verdict != engine.VerdictBlocked {
		d.fail(n, path, "a reason applies only to the verdict blocked")
	}
	if te.Destination != "" && te.Verdict != engine.VerdictReplicate {
		d.fail(n, path, "a destination applies only to the verdict replicate")
	}
	if te.ReasonMatches != "" {
		re, err := regexp.Compile(te.ReasonMatches)
		if err != nil {
			d.fail(n, path+".reasonMatches", "invalid regular expression: %v", err)
		}
		te.reasonRE = re
	}
}

func (ee *ErrorExpect) decodeNode(d *decoder, n *yaml.Node, path string) {
	type plain ErrorExpect
	var p plain
	d.decodeStruct(n, reflectValue(&p), path)
	*ee = ErrorExpect(p)
	if ee.MessageMatches != "" {
		re, err := regexp.Compile(ee.MessageMatches)
		if err != nil {
			d.fail(n, path+".messageMatches", "invalid regular expression: %v", err)
		}
		ee.messageRE = re
	}
}

// IsTestFile reports whether path names a policy test file: *_test.yaml
// or *_test.yml.
func IsTestFile(path string) bool {
	ext := filepath.Ext(path)
	return (ext == ".yaml" || ext == ".yml") && strings.HasSuffix(strings.TrimSuffix(path, ext), "_test")
}

// ParseFile reads and decodes a test file, and reads the image files its
// cases name. The error is an engine.ErrorList of every problem, with
// file:line:col.
func ParseFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, engine.ErrorList{{Pos: engine.Position{File: path}, Msg: err.Error()}}
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes a test file's content; name is the file's path, used in
// errors and to resolve imageFile paths.
func Parse(name string, data []byte) (*File, error) {
	d := newDecoder(name)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		pos := engine.Position{File: name, Line: 1, Column: 1}
		msg := err.Error()
		if errors.Is(err, io.EOF) {
			msg = "empty test file: want a mapping with cases"
		} else if m := yamlLine.FindStringSubmatch(msg); m != nil {
			pos.Line, _ = strconv.Atoi(m[1])
			msg = "invalid YAML: " + m[2]
		}
		return nil, engine.ErrorList{{Pos: pos, Msg: msg}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, engine.ErrorList{{Pos: engine.Position{File: name, Line: extra.Line, Column: extra.Column},
			Msg: "a test file holds one YAML document; put every case under cases"}}
	}
	f := &File{Path: name}
	d.decode(root.Content[0], reflectValue(f), "")
	f.Path = name
	if f.Combining != "" {
		if _, err := engine.ParseCombining(f.Combining); err != nil {
			d.errs = append(d.errs, &engine.Error{Pos: d.pos(root.Content[0]), Field: "combining", Msg: err.Error()})
		}
	}
	names := map[string]engine.Position{}
	for i, c := range f.Cases {
		path := fmt.Sprintf("cases[%d]", i)
		if c == nil {
			continue
		}
		if first, dup := names[c.Name]; dup && c.Name != "" {
			d.errs = append(d.errs, &engine.Error{Pos: c.Pos, Field: path + ".name", Msg: fmt.Sprintf("case %q is already defined at %s", c.Name, first)})
		}
		names[c.Name] = c.Pos
		switch {
		case c.Image != nil && c.ImageFile != "":
			d.errs = append(d.errs, &engine.Error{Pos: c.Pos, Field: path, Msg: "give either image or imageFile, not both"})
		case c.Image == nil && c.ImageFile == "":
			d.errs = append(d.errs, &engine.Error{Pos: c.Pos, Field: path, Msg: "missing image: give image (the fields of an image fixture) or imageFile"})
		case c.Image != nil:
			if err := c.Image.Normalize(); err != nil {
				d.errs = append(d.errs, &engine.Error{Pos: c.Pos, Field: path + ".image", Msg: err.Error()})
			}
		default:
			file := c.ImageFile
			if !filepath.IsAbs(file) {
				file = filepath.Join(filepath.Dir(name), file)
			}
			img, err := readImage(file)
			if err != nil {
				d.errs = append(d.errs, &engine.Error{Pos: c.Pos, Field: path + ".imageFile", Msg: err.Error()})
			}
			c.Image = img
		}
		if c.Now == nil {
			c.Now = f.Now
		}
	}
	if errs := d.errors(); len(errs) > 0 {
		return nil, errs
	}
	return f, nil
}

func readImage(path string) (*conditions.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	return conditions.DecodeImageJSON(path, data)
}
