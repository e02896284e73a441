package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// IsPolicyFile reports whether a file found in a directory is read as
// policies: YAML files, except *_test.yaml which hold policy tests.
func IsPolicyFile(path string) bool {
	ext := filepath.Ext(path)
	if ext != ".yaml" && ext != ".yml" {
		return false
	}
	return !strings.HasSuffix(strings.TrimSuffix(path, ext), "_test")
}

// ParseFiles reads policy files and directories (recursively, YAML files
// only) and decodes every document. The Bundle holds everything that
// could be decoded; the error, an ErrorList, holds every problem found.
func ParseFiles(paths ...string) (*Bundle, error) {
	var files []string
	var errs ErrorList
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &Error{Pos: Position{File: p}, Msg: fileError(err)})
			continue
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, &Error{Pos: Position{File: path}, Msg: fileError(err)})
				return nil
			}
			if !d.IsDir() && IsPolicyFile(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, &Error{Pos: Position{File: p}, Msg: fileError(err)})
		}
	}
	slices.Sort(files)
	files = slices.Compact(files)
	if len(files) == 0 && len(errs) == 0 {
		errs = append(errs, &Error{Pos: Position{File: strings.Join(paths, ", ")}, Msg: "no policy files (*.yaml, *.yml) found"})
	}
	srcs := make([]namedSource, 0, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, &Error{Pos: Position{File: f}, Msg: fileError(err)})
			continue
		}
		srcs = append(srcs, namedSource{f, data})
	}
	b, err := parseSources(srcs)
	var list ErrorList
	errors.As(err, &list)
	return b, append(errs, list...).err()
}

func fileError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes the policy documents of one file's content.
func Parse(name string, data []byte) (*Bundle, error) {
	return parseSources([]namedSource{{name, data}})
}

type namedSource struct {
	name string
	data []byte
}

func parseSources(srcs []namedSource) (*Bundle, error) {
	b := &Bundle{}
	var errs ErrorList
	h := sha256.New()
	var docs []*document
	for _, s := range srcs {
		b.Files = append(b.Files, s.name)
		// Content only: the same policies read from another directory
		// are the same revision.
		fmt.Fprintf(h, "%d\x00", len(s.data))
		h.Write(s.data)
		docs = append(docs, parseFile(s.name, s.data, &errs)...)
	}
	b.Revision = hex.EncodeToString(h.Sum(nil))[:16]
	for _, d := range docs {
		if d.kind == KindRegistry {
			if r := d.registry(&errs); r != nil {
				b.Registries = append(b.Registries, r)
			}
		}
	}
	inventory := map[string]*Registry{}
	for _, r := range b.Registries {
		if first, dup := inventory[r.Name]; dup {
			errs.add(r.Pos, "metadata.name", "registry %q is already defined at %s", r.Name, first.Pos)
			continue
		}
		inventory[r.Name] = r
	}
	// Policies decode in parallel, each into errors of its own, merged in
	// document order.
	var pdocs []*document
	for _, d := range docs {
		if d.kind == KindPolicy {
			pdocs = append(pdocs, d)
		}
	}
	decoded := make([]struct {
		p    *Policy
		errs ErrorList
	}, len(pdocs))
	parallel(len(pdocs), func(i int) {
		d := pdocs[i]
		d.dec.errs = &decoded[i].errs
		decoded[i].p = d.policy(inventory, &decoded[i].errs)
	})
	names := map[string]*Policy{}
	for i := range decoded {
		errs = append(errs, decoded[i].errs...)
		p := decoded[i].p
		if p == nil {
			continue
		}
		if first, dup := names[p.Name]; dup {
			errs.add(p.Pos, "metadata.name", "policy %q is already defined at %s", p.Name, first.Pos)
			continue
		}
		names[p.Name] = p
		b.Policies = append(b.Policies, p)
	}
	return b, errs.err()
}

// document is one YAML document whose header decoded.
type document struct {
	dec  *decoder
	kind string
	raw  rawDoc
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func parseFile(name string, data []byte, errs *ErrorList) []*document {
	src := newSourceFile(name, data)
	chunks := splitDocuments(data, fileChunks())
	if len(chunks) == 1 {
		docs, _ := parseChunk(src, chunks[0], errs)
		return docs
	}
	// Documents are independent (anchors and tags are per document), so
	// runs of them parse in parallel. A syntax error ends a file; its
	// message can depend on what follows the run it is in, so such a
	// file is parsed again as one.
	parsed := make([]struct {
		docs     []*document
		errs     ErrorList
		syntaxOK bool
	}, len(chunks))
	parallel(len(chunks), func(i int) {
		parsed[i].docs, parsed[i].syntaxOK = parseChunk(src, chunks[i], &parsed[i].errs)
	})
	for _, p := range parsed {
		if !p.syntaxOK {
			docs, _ := parseChunk(src, docChunk{data: data}, errs)
			return docs
		}
	}
	var docs []*document
	for _, p := range parsed {
		*errs = append(*errs, p.errs...)
		for _, d := range p.docs {
			d.dec.errs = errs
		}
		docs = append(docs, p.docs...)
	}
	return docs
}

// fileChunks is how many runs of documents a large file is parsed in.
var fileChunks = func() int { return 4 * runtime.GOMAXPROCS(0) }

// A docChunk is a run of whole YAML documents of a file, starting at
// 0-based line line of it.
type docChunk struct {
	data []byte
	line int
}

// splitDocuments cuts data into at most n runs of whole documents, at
// document start markers: a line that is "---" or starts with "--- ".
// YAML forbids such a line inside any scalar, so a cut there never splits
// a document. A file with directives (%YAML, %TAG) stays whole.
func splitDocuments(data []byte, n int) []docChunk {
	whole := []docChunk{{data: data}}
	if n <= 1 || len(data) < 64<<10 || bytes.HasPrefix(data, []byte("%")) || bytes.Contains(data, []byte("\n%")) {
		return whole
	}
	var starts []int // byte offsets of document start lines
	for off := 0; off < len(data); {
		lineEnd := bytes.IndexByte(data[off:], '\n')
		if lineEnd < 0 {
			lineEnd = len(data) - off
		}
		line := data[off : off+lineEnd]
		line = bytes.TrimSuffix(line, []byte("\r"))
		if off > 0 && (string(line) == "---" || bytes.HasPrefix(line, []byte("--- "))) {
			starts = append(starts, off)
		}
		off += lineEnd + 1
	}
	if len(starts) < n {
		return whole
	}
	out := make([]docChunk, 0, n)
	from, line := 0, 0
	target := len(data) / n
	for _, st := range starts {
		if st-from < target {
			continue
		}
		out = append(out, docChunk{data: data[from:st], line: line})
		line += bytes.Count(data[from:st], []byte("\n"))
		from = st
	}
	return append(out, docChunk{data: data[from:], line: line})
}

// parseChunk decodes the documents of one run; syntaxOK is false when a
// YAML syntax error stopped it.
func parseChunk(src *sourceFile, c docChunk, errs *ErrorList) (docs []*document, syntaxOK bool) {
	name := src.name
	dec := yaml.NewDecoder(bytes.NewReader(c.data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			// yaml.v3 stops at a syntax error and gives only its line; point
			// at the line's first character.
			pos := Position{File: name, Line: 1, Column: 1}
			msg := err.Error()
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				pos.Line, _ = strconv.Atoi(m[1])
				pos.Line += c.line
				msg = m[2]
				if pos.Line-1 < len(src.lines) {
					l := src.lines[pos.Line-1]
					pos.Column = len(l) - len(strings.TrimLeft(l, " \t")) + 1
				}
			}
			errs.add(pos, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
			return docs, false
		}
		if len(n.Content) == 0 {
			continue // an empty document, e.g. after a trailing ---
		}
		root := n.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		d := &document{dec: &decoder{src: src, errs: errs, line: c.line}}
		before := len(*errs)
		d.dec.decode(nil, root, reflectValue(&d.raw), "")
		for i := 0; root.Kind == yaml.MappingNode && i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "spec" {
				d.raw.SpecKey = root.Content[i]
			}
		}
		if len(*errs) > before && (d.raw.Kind.Value == "" || d.raw.Metadata.Name.Value == "" || d.raw.Spec == nil) {
			continue
		}
		if d.raw.APIVersion.Value != APIVersion && d.raw.APIVersion.Pos.Line > 0 {
			errs.add(d.raw.APIVersion.Pos, "apiVersion", "unsupported apiVersion %q (this version of celpolicy reads %s)", d.raw.APIVersion.Value, APIVersion)
		}
		switch d.raw.Kind.Value {
		case KindPolicy, KindRegistry:
			d.kind = d.raw.Kind.Value
		default:
			errs.add(d.raw.Kind.Pos, "kind", "unknown kind %q (want %s or %s)", d.raw.Kind.Value, KindPolicy, KindRegistry)
			continue
		}
		if !validName(d.raw.Metadata.Name.Value) {
			errs.add(d.raw.Metadata.Name.Pos, "metadata.name", "invalid name %q: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters", d.raw.Metadata.Name.Value)
		}
		docs = append(docs, d)
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)

func validName(s string) bool { return len(s) <= 253 && nameRE.MatchString(s) }
